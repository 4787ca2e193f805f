# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Instruction data: from a JSON file to a fine-tuned, judged model
#
# A pretrained language model continues text. An *instruction-tuned* model follows requests:
# "Translate the word into Spanish: dog" gets "perro", not three more paragraphs of whatever the
# model's pretraining text looked like. This chapter takes a small GPT-2 model through the whole
# of instruction fine-tuning, following chapter 7 of Sebastian Raschka's *Build a Large Language
# Model (From Scratch)*:
#
# 1. **data**: instruction records (`instruction`, `input`, `output`) in a JSON file, validated;
# 2. **prompt styles**: the same record as an Alpaca prompt, a Phi-3 prompt and a chat `messages` list;
# 3. **splits**: train, test and validation sets, reproducibly;
# 4. **dataset and collate**: pre-tokenized examples, batches padded with the end-of-text token,
#    and *targets* in which every padding token but the first is `-100` (ignored by the loss);
# 5. **training**: a plain PyTorch loop with the training and validation loss measured as it goes;
# 6. **scoring**: each answer on the test set scored 0-100 against the reference, by a judge
#    LLM over an OpenAI-compatible API (or, offline, by a reference-based stand-in).
#
# The words that later chapters use are all here: *prompt*, *response*, *padding*, *labels*
# or *targets*, *-100*, *masking*, *validation loss*, *judge*.
#
# **On a T4.** On a free Colab T4 (15 GB) the `hub` profile needs about 10 GiB of GPU memory at its
# fullest and about 13 minutes (estimated from the real models' shapes and its `hub` settings by
# `llmtut.t4_plan`; nothing was measured on a GPU). The `tiny` profile runs on a CPU.

# %%
# Colab only: install llmtut, the book's package (it brings transformers, trl, peft, ...).
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "llmtut @ git+https://github.com/llmtut/llmtut"], check=True)

# %%
import contextlib
import gc
import hashlib
import inspect
import json
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch.utils.data import DataLoader

from llmtut import formats, instructions, judge, loop, profiles
from llmtut.generation import generate_answers
from llmtut.formats import format_alpaca, format_phi3, to_messages
from llmtut.instructions import InstructionDataset, collate
from llmtut.report import record
from llmtut.serve import served

# %% [markdown]
# The chapter's parameters. `PROFILE = "hub"` fine-tunes `gpt2-medium` (355M parameters) on the
# 1100-entry instruction file of the source and scores its answers with a judge LLM, `JUDGE_MODEL`,
# that the chapter serves itself once the answers exist, or that you serve elsewhere and name in
# `JUDGE_BASE_URL` (see the scoring section). `PROFILE = "tiny"` runs offline on a
# small GPT-2 that `llmtut` pretrains on the tiny world's prose, and on instructions that the tiny
# world generates. papermill overrides these values (`-p PROFILE tiny`).

# %% tags=["parameters"]
PROFILE = profiles.default_profile()  # "hub" or "tiny"
SEED = 123
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
NUM_EPOCHS = None  # None: the profile's default below
N_TRAIN = None  # train on the first this many training records (None: all of them)
N_SCORED = None  # answer and score the first this many test records (None: all of them)
BATCH_SIZE = 8
LEARNING_RATE = None  # None: the profile's default below
EVAL_FREQ = None  # measure the losses every this many steps (None: the profile's default)
EVAL_ITER = 5  # ... over this many batches
MAX_NEW_TOKENS = None  # None: the profile's default below
JUDGE_BASE_URL = None  # hub profile: an OpenAI-compatible base URL; None: serve JUDGE_MODEL here
JUDGE_MODEL = "Qwen/Qwen2.5-3B-Instruct"  # hub profile: the judge (the model that server serves)
OUT_DIR = "out/01_instruction_data"

# %%
profiles.check_profile(PROFILE)
defaults = {"tiny": dict(epochs=10, lr=3e-3, eval_freq=20, new_tokens=24),
            "hub": dict(epochs=2, lr=5e-5, eval_freq=5, new_tokens=256)}[PROFILE]
num_epochs = NUM_EPOCHS or defaults["epochs"]
eval_freq = EVAL_FREQ or defaults["eval_freq"]
lr = LEARNING_RATE or defaults["lr"]
max_new_tokens = MAX_NEW_TOKENS or defaults["new_tokens"]
out_dir = Path(OUT_DIR)
out_dir.mkdir(parents=True, exist_ok=True)
print(f"profile={PROFILE} device={DEVICE} seed={SEED} epochs={num_epochs} lr={lr} batch={BATCH_SIZE}")

# %% [markdown]
# ## 1. Instruction data
#
# An instruction record has three string fields: the `instruction` (what to do), an optional
# `input` (what to do it to, or `""`) and the `output` (the answer we want). In the `hub` profile
# the records are the source's `instruction-data.json`, downloaded once. In the `tiny` profile
# `llmtut` writes records from the tiny world's word lists to a JSON file, and the chapter loads
# that file back the same way.

# %%
data_path = out_dir / "instruction-data.json"
data = profiles.load_instruction_data(data_path, PROFILE, seed=SEED)
print(f"{len(data)} records in {data_path}")
pd.DataFrame(data[:6])

# %% [markdown]
# In the `tiny` profile the records come from eight small tasks, each with a few phrasings of
# its instruction; about a third have no `input`:

# %%
labelled = profiles.instruction_tasks(PROFILE, len(data), SEED)
task_of = {(r["instruction"], r["input"], r["output"]): r["task"] for r in labelled}
if labelled:
    tasks = pd.DataFrame(labelled).groupby("task")
    overview = tasks.agg(records=("output", "size"), empty_input=("input", lambda s: int((s == "").sum())),
                         instruction=("instruction", "first"), input=("input", "first"), output=("output", "first"))
else:
    overview = pd.DataFrame({"records": [len(data)]}, index=["(no task labels in the hub file)"])
overview

# %% [markdown]
# A JSON file from elsewhere can be wrong in ways that surface much later, as a `KeyError` in
# the middle of training or as `None` printed into a prompt. `load_records` validates every
# record first, and names the record and the field:

# %%
broken = [data[0], {"instruction": "Add 2 and 3.", "output": 5}, {"instruction": "Say hi.", "input": ""}]
for bad in (broken[:2], broken[::2]):
    try:
        instructions.validate_records(bad)
    except ValueError as err:
        print("ValueError:", err)

# %% [markdown]
# ## 2. Prompt styles
#
# The model sees text, not records, so each record is formatted into a prompt. The **Alpaca**
# style (used in the rest of this chapter) writes a fixed preamble and `###` headings, and
# leaves out the `### Input:` section when the input is empty. The **Phi-3** style is shorter,
# with `<|user|>` and `<|assistant|>` markers. Chat models take a list of **messages** instead and
# format it with their own chat template (chapter 4). One record with an input and one without:

# %%
with_input = next(r for r in data if r["input"])
without_input = next(r for r in data if not r["input"])
for name, text in [("Alpaca, with input", format_alpaca(with_input, with_response=True)),
                   ("Alpaca, without input", format_alpaca(without_input, with_response=True)),
                   ("Phi-3", format_phi3(with_input, with_response=True))]:
    print(f"----- {name} -----\n{text}\n")
print("----- messages -----")
print(json.dumps(to_messages(with_input), indent=2, ensure_ascii=False))

# %% [markdown]
# ## 3. Train, test and validation sets
#
# The records are split 85% / 10% / 5% into training, test and validation sets: the first 85% for
# training, the next 10% for testing, the rest for validation. The validation set tells us during
# training whether the model generalises; the test set is only used at the end, for scoring.
#
# In the `hub` profile we split the file in its own order, without shuffling, exactly as the
# source does (`data[:935]`, `data[935:1045]`, `data[1045:]`): our test set is then the source's
# 110 test records, and our answers can be read next to the gpt2-medium answers that the source
# publishes for them (`instruction-data-with-response.json`). The tiny world has no published
# answers to compare with, so there we shuffle with `SEED` first. `split_records` takes the choice
# as an explicit parameter, `shuffle_seed` (None keeps the order):

# %%
print(inspect.getsource(instructions.split_records))

# %%
shuffle_seed = None if PROFILE == "hub" else SEED
train_data, test_data, val_data = instructions.split_records(data, shuffle_seed=shuffle_seed)
print(f"shuffle_seed={shuffle_seed}: train {len(train_data)} | test {len(test_data)} | validation {len(val_data)}")
n_train, n_test = len(train_data), len(test_data)
print(f"the test set is data[{n_train}:{n_train + n_test}], in the file's order:",
      test_data == data[n_train:n_train + n_test])
for key, part in [("n_train", train_data), ("n_test", test_data), ("n_val", val_data)]:
    record(f"data.{key}", len(part))
train_data, test_data = train_data[:N_TRAIN], test_data[:N_SCORED]  # all, unless a quick run asks for fewer

# %% [markdown]
# ## 4. The dataset and the collate function
#
# The base model and its tokenizer first. GPT-2 has a single special token, `<|endoftext|>`
# (id 50256 in the real GPT-2), and no padding token: like the source, we pad with the
# end-of-text token and tell the loader so explicitly (`pad_with_eos=True`).

# %%
model, tokenizer = profiles.load_causal_lm("instruction_base", PROFILE, DEVICE, pad_with_eos=True)
eot_id = tokenizer.eos_token_id
print(f"{type(model).__name__}: {model.num_parameters():,} parameters, vocabulary {len(tokenizer):,}, "
      f"end of text {tokenizer.eos_token!r} = {eot_id}")
if PROFILE == "tiny":
    print("tiny world card:", profiles.world_card("instruction_base", PROFILE))

# %% [markdown]
# `InstructionDataset` formats and tokenizes every record once, up front, so that batches are
# cheap to build. The examples have different lengths, so a batch must be padded to a common
# length. The collate function does that, and builds the *targets*: the inputs shifted one
# position left, since at each position the model predicts the next token.

# %%
print(inspect.getsource(collate))

# %% [markdown]
# The rules, one at a time:
#
# - every example gets **one** end-of-text token appended: the model must learn to stop;
# - the batch is padded, with the same token, to its longest example;
# - in the targets, every padding token **but the first** becomes `-100`, the index that
#   PyTorch's cross-entropy ignores: the first is the "stop here" we want to teach, the others are
#   filler;
# - `allowed_max_length` cuts long examples (the source uses GPT-2's context length, 1024).
#
# The source's toy batch shows it. With `allowed_max_length=4` and GPT-2's end-of-text id, 50256:

# %%
toy_inputs, toy_targets = collate(list(instructions.TOY_BATCH), pad_token_id=50256, allowed_max_length=4)
expected_inputs, expected_targets = instructions.toy_collate_expected(pad=50256, allowed_max_length=4)
print("inputs:\n", toy_inputs, "\ntargets:\n", toy_targets)
toy_matches = torch.equal(toy_inputs, expected_inputs) and torch.equal(toy_targets, expected_targets)
_ = record("collate.toy_matches", toy_matches)

# %% [markdown]
# The second row, `[5, 6]`, became inputs `[5, 6, 50256, 50256]` and targets
# `[6, 50256, -100, -100]`: after `6` the model must predict the end of text, and nothing after
# that counts. The first row was cut to four tokens and has no end-of-text token left at all.
#
# An option also masks the *instruction* (the source's exercise 7.2; chapter 2 measures what that
# changes). The dataset then remembers each example's prompt length: the tokens of
# `format_alpaca(record)`, which is the preamble, the instruction and the input. The collate sets
# the targets that predict those tokens to `-100`. The `### Response:` header is *not* part of that
# prompt (it comes with the response, in `format_alpaca(record, with_response=True)`), so the loss
# still sees the header, then the response, then the end-of-text token. The source does exactly the
# same: its masked length is that of `format_input(entry)`, which also stops before the header.
# Here is one training example both ways, decoded: what the loss sees is what the model is taught
# to write.

# %%
plain_ds = InstructionDataset(train_data, tokenizer)
masked_ds = InstructionDataset(train_data, tokenizer, mask_instructions=True)
for name, ds, masked in [("all tokens", plain_ds, False), ("instruction masked", masked_ds, True)]:
    _, targets = collate([ds[0]], pad_token_id=eot_id, mask_instructions=masked)
    seen = [t for t in targets[0].tolist() if t != -100]
    print(f"----- the loss sees ({name}): {len(seen)} of {targets.shape[1]} targets -----")
    print(repr(tokenizer.decode(seen)), "\n")
masked_text = tokenizer.decode(seen)  # the last loop's: the masked example
trained = formats.RESPONSE_HEADERS["alpaca"] + train_data[0]["output"] + tokenizer.eos_token
print("masked, the loss sees exactly the response header, the output and the end-of-text token:",
      masked_text == trained)
_ = record("masking.trains_header_output_eot", masked_text == trained)

# %% [markdown]
# The data loaders: the collate gets its device and padding token through `functools.partial`,
# so that batches arrive on the GPU ready to use. The training loader shuffles (with a seeded
# generator) and drops a last incomplete batch; validation and test loaders keep the order.

# %%
lengths = [len(ids) for ids in plain_ds.encoded_texts]
allowed_max_length = min(1024, model.config.n_positions)
print(f"training examples are {min(lengths)}-{max(lengths)} tokens long (allowed_max_length={allowed_max_length})")


def loaders(mask_instructions: bool) -> tuple[DataLoader, DataLoader]:
    collate_fn = partial(collate, pad_token_id=eot_id, allowed_max_length=allowed_max_length, device=DEVICE,
                         mask_instructions=mask_instructions)
    train = DataLoader(InstructionDataset(train_data, tokenizer, mask_instructions=mask_instructions),
                       batch_size=BATCH_SIZE, shuffle=True, drop_last=True, collate_fn=collate_fn,
                       generator=torch.Generator().manual_seed(SEED))
    val = DataLoader(InstructionDataset(val_data, tokenizer, mask_instructions=mask_instructions),
                     batch_size=BATCH_SIZE, shuffle=False, collate_fn=collate_fn)
    return train, val


train_loader, val_loader = loaders(mask_instructions=False)
inputs, targets = next(iter(train_loader))
print(f"{len(train_loader)} training batches; the first: inputs {tuple(inputs.shape)}, targets {tuple(targets.shape)} "
      f"on {inputs.device}")

# %% [markdown]
# ## 5. The base model, before fine-tuning
#
# What does the pretrained model make of an instruction? We give it the Alpaca prompt followed by
# the `### Response:` heading and let it continue greedily:

# %%
def prompt_for(rec: dict) -> str:
    return format_alpaca(rec) + formats.RESPONSE_HEADERS["alpaca"]


def respond(model, records: list[dict], batch_size: int = 32) -> list[str]:
    """Greedy answers to the Alpaca prompts of `records`, in batches."""
    answers = []
    for i in range(0, len(records), batch_size):
        prompts = [prompt_for(r) for r in records[i:i + batch_size]]
        answers += generate_answers(model, tokenizer, prompts, max_new_tokens)
    return answers


print(prompt_for(val_data[0]))
print("-> base model:", repr(respond(model, val_data[:1])[0]))
print("-> reference: ", repr(val_data[0]["output"]))

# %% [markdown]
# ## 6. Fine-tuning with a plain PyTorch loop
#
# No `Trainer` here: the loop below is all there is. The loss of a batch is the cross-entropy
# between the logits and the targets, where `-100` targets are skipped:

# %%
print(inspect.getsource(loop.batch_loss))
print(inspect.getsource(loop.train_with_eval))

# %% [markdown]
# AdamW with weight decay 0.1, as in the source. Every `eval_freq` steps the loop measures the
# loss on `EVAL_ITER` batches of the training and of the validation set. (The `hub` profile trains
# gpt2-medium for 2 epochs at a learning rate of 5e-5, as the source; the 1M-parameter tiny model
# needs a larger rate and more epochs.)

# %%
def finetune(mask_instructions: bool):
    torch.manual_seed(SEED)
    model, _ = profiles.load_causal_lm("instruction_base", PROFILE, DEVICE, pad_with_eos=True)
    train_loader, val_loader = loaders(mask_instructions)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    history = loop.train_with_eval(model, train_loader, val_loader, optimizer, num_epochs=num_epochs,
                                   eval_freq=eval_freq, eval_iter=EVAL_ITER, seed=SEED)
    return model, history


finetuned, history = finetune(mask_instructions=False)
print(f"validation loss {history.val_loss[0]:.3f} -> {history.val_loss[-1]:.3f} "
      f"after {history.steps[-1]} steps ({history.tokens_seen[-1]:,} tokens)")

# %%
fig, ax = plt.subplots(figsize=(7, 3.8))
ax.plot(history.steps, history.train_loss, label="training loss")
ax.plot(history.steps, history.val_loss, label="validation loss", linestyle="--")
ax.set(xlabel="step", ylabel="loss", title=f"fine-tuning: loss every {eval_freq} steps")
ax.legend()
plt.tight_layout()
plt.show()

# %%
record("val_loss.initial", round(history.val_loss[0], 4))
record("val_loss.final", round(history.val_loss[-1], 4))

# %% [markdown]
# ## 7. The same, with the instruction masked
#
# One more run, identical but for `mask_instructions=True`: the loss sees the `### Response:`
# header, the response and its end-of-text token, and nothing of the preamble, the instruction or
# the input (section 4 printed an example). Its validation loss is measured on those targets only,
# so it is not comparable with the first run's; the scores below are.

# %%
finetuned_masked, history_masked = finetune(mask_instructions=True)
print(f"validation loss (response targets only) {history_masked.val_loss[0]:.3f} -> {history_masked.val_loss[-1]:.3f}")

# %% [markdown]
# ## 8. Answers on the test set
#
# The base model and the two fine-tuned models answer every test prompt. We keep each answer of
# the first fine-tuned model in its record under `model_response` and save the lot as JSON, as the
# source does: scoring (next section) can then run later, elsewhere, or again.

# %%
base_answers = respond(model, test_data)
finetuned_answers = respond(finetuned, test_data)
masked_answers = respond(finetuned_masked, test_data)
with_responses = [dict(r, model_response=a) for r, a in zip(test_data, finetuned_answers, strict=True)]
responses_path = out_dir / "instruction-data-with-response.json"
responses_path.write_text(json.dumps(with_responses, indent=2, ensure_ascii=False))
print(f"saved {len(with_responses)} responses to {responses_path}")
pd.DataFrame({"instruction": [r["instruction"] for r in test_data[:8]], "input": [r["input"] for r in test_data[:8]],
              "reference": [r["output"] for r in test_data[:8]], "base model": base_answers[:8],
              "fine-tuned": finetuned_answers[:8], "fine-tuned, instruction masked": masked_answers[:8]})

# %% [markdown]
# The answers are all we need from the three models. We free their memory before a judge moves in
# (on a Colab T4, 15 GB, three gpt2-medium models in fp32 take about 4 GB):

# %%
del model, finetuned, finetuned_masked
gc.collect()
if torch.cuda.is_available():
    torch.cuda.empty_cache()
    print(f"GPU memory still allocated by this notebook: {torch.cuda.memory_allocated() / 2**30:.2f} GiB")

# %% [markdown]
# ## 9. Scoring with a judge
#
# Exact match is too strict for free-form answers ("The car is as fast as a cheetah." and "The car
# is as fast as lightning." are both fine). The source asks a larger instruct model to score each
# answer from 0 to 100 against the reference, "respond with the integer only". `llmtut.judge`
# does this over any OpenAI-compatible chat API: `transformers serve`, vLLM, Ollama or OpenAI.
# Its client parses the reply strictly, asks again when the reply is not an integer (and in the
# end counts and reports the ones that never were), and writes every score to a JSONL file as
# soon as it has it, so that an interrupted run resumes without asking twice.
#
# In the `hub` profile the chapter starts the judge itself, now that the answers exist and the
# memory is free: `llmtut.serve.served` runs `transformers serve JUDGE_MODEL` on this machine
# (`Qwen/Qwen2.5-3B-Instruct` by default: 3.1 billion parameters, 5.7 GiB in fp16 on a T4, so it
# fits once the three GPT-2 models are freed, where a 7B model, 14.2 GiB in fp16, would not), waits
# until it answers and stops it in the last cell. The first run downloads the model. A small proxy
# in front of it writes every request it receives to `judge_requests.jsonl`. To use a judge you
# already run (a larger model, vLLM, Ollama, OpenAI), set `JUDGE_BASE_URL` to its base URL and
# `JUDGE_MODEL` to the name it serves.
#
# The scores belong to the judge: compare the three models under one judge, never a score from
# one judge with a score from another. A stronger judge (the source used an 8B Llama 3) follows the
# 0-100 scale more consistently and tells close answers apart better; a 3B judge's scores are
# noisier, so a small difference between two models means less.
#
# **In the `tiny` profile there is no judge.** No model small enough for this book's CI can
# judge answers, so the chapter scores with `ReferenceScorer`: 100 for an exact match (ignoring
# case and final punctuation), otherwise 100 × the word-overlap F1 with the reference. It sits
# behind the same interface as the judge, but it measures overlap, not quality. The judge
# client itself is tested against a real `transformers serve` process in the test suite.

# %%
print(judge.judge_prompt(prompt_for(test_data[0]), test_data[0]["output"], finetuned_answers[0]))

# %%
judge_server = contextlib.ExitStack()  # the last cell closes it, which stops a server started here
if PROFILE == "hub":
    judge_url = JUDGE_BASE_URL or judge_server.enter_context(
        # a Hub model is downloaded when the server starts: give it time
        served(JUDGE_MODEL, device=DEVICE, request_log=out_dir / "judge_requests.jsonl", offline=False,
               timeout_s=1800))
    scorer = judge.JudgeClient(JUDGE_MODEL, judge_url)
else:
    scorer = judge.ReferenceScorer()
print("scorer:", scorer.name)


def score(answers: list[str], name: str) -> judge.ScoreReport:
    entries = [dict(r, model_response=a) for r, a in zip(test_data, answers, strict=True)]
    # One scores file per set of answers: a re-run with the same answers resumes it, new answers get a new file.
    digest = hashlib.sha256("".join(judge.record_key(e) for e in entries).encode()).hexdigest()[:8]
    path = out_dir / f"scores-{name}-{digest}.jsonl"
    report = judge.score_responses(entries, scorer, path, format_input=prompt_for)
    print(f"{name}: {report.summary()}")
    return report


scores = {"base": score(base_answers, "base"), "finetuned": score(finetuned_answers, "finetuned"),
          "finetuned_masked_instructions": score(masked_answers, "finetuned_masked_instructions")}

# %% [markdown]
# ## Results

# %%
def rounded(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)  # None: no reply of the judge was a score


table = pd.DataFrame({name: {"mean score (0-100)": rounded(r.mean, 1), "exact (score 100)": sum(s == 100 for s in r.scores),
                             "unparsed": r.n_unparsed, "scored": len(r.scores)} for name, r in scores.items()}).T
table

# %% [markdown]
# Where do the points come from? The mean score per task of the test set (`tiny` profile):

# %%
if task_of:
    per_task = pd.DataFrame({name: r.scores for name, r in scores.items()})
    per_task["task"] = [task_of[(r["instruction"], r["input"], r["output"])] for r in test_data]
    display_table = per_task.groupby("task").mean().round(1)
    display_table["test records"] = per_task.groupby("task").size()
else:
    display_table = pd.DataFrame()
display_table

# %%
for name, r in scores.items():
    record(f"score.{name}", rounded(r.mean, 2))

# %% [markdown]
# What the numbers say (the tables above print them for this run):
#
# - **Data.** The records load from JSON and are validated first: a missing or non-string field
#   is an error that names the record and the field. The split is 85 / 10 / 5: in the `hub`
#   profile in the file's own order, so the test set is the source's `data[935:1045]`; in the
#   `tiny` profile after a shuffle by `SEED`, the same for the same seed.
# - **Collate.** The toy batch comes out exactly as the source's: one end-of-text token kept
#   as a target, the rest of the padding `-100`, truncation applied to inputs and targets alike.
# - **Training.** The validation loss falls from its first to its last measurement (the plot);
#   most of the drop comes in the first few dozen steps, when the model learns the Alpaca
#   template itself.
# - **Scores.** The base model scores close to nothing: it has never seen the format and writes
#   prose. The fine-tuned model scores 30 points or more above it. In the `tiny` profile the
#   points come from the tasks that copy and reshape the input (capitalisation, upper case,
#   similes); the tasks that need a fact the model must recall (a plural, an opposite, a
#   Spanish word) stay near zero for a model of one million parameters trained for a minute.
#   That is the honest limit of the tiny world, not of the method: in the `hub` profile
#   gpt2-medium and a judge LLM play these roles.
# - **Masking the instruction.** With the loss on the `### Response:` header, the response and
#   its end-of-text token only, the scores of the two runs stay within a few points of each other
#   here (the results table), much as the source's exercise 7.2 finds for gpt2-medium. Masking changes *what* the model is taught more than how
#   well it answers; chapter 2 takes the question apart on a smaller task.
#
# The reference-based scorer is a stand-in: it rewards word overlap, so a fluent answer that
# reuses the reference's words scores well and a correct paraphrase scores badly. When you run
# the `hub` profile, read a few of the judge's scores next to the answers before you trust its
# mean.

# %%
judge_server.close()  # stops the judge (if this chapter started one)
