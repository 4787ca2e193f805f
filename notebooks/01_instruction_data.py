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
# 2. **prompt styles**: the same record as an Alpaca prompt, a Phi-3 prompt and a chat
#    `messages` list;
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
# Colab only: install llmtut, the book's package (with transformers, trl, peft, ...).
import subprocess
import sys

if "google.colab" in sys.modules:
    package = "llmtut @ git+https://github.com/llmtut/llmtut"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %%
import contextlib
import gc
import hashlib
import json
import math
import warnings
from functools import partial
from pathlib import Path

# without Jupyter widgets, tqdm warns that its bars will be plain text: they are
warnings.filterwarnings("ignore", message="IProgress not found")

import matplotlib.pyplot as plt
import pandas as pd
import torch
import transformers
from IPython.display import display
from matplotlib.ticker import FormatStrFormatter, NullFormatter
from torch.utils.data import DataLoader

from llmtut import formats, instructions, judge, loop, profiles
from llmtut.evaluation import paired_difference
from llmtut.formats import format_alpaca, format_phi3, to_messages
from llmtut.generation import generate_answers
from llmtut.instructions import InstructionDataset, collate
from llmtut.page import show_source
from llmtut.report import record
from llmtut.serve import served

pd.set_option("display.max_colwidth", None)  # show answers in full

# %% [markdown]
# The chapter's parameters. `PROFILE = "hub"` fine-tunes `gpt2-medium` (355M parameters) on the
# 1100-entry instruction file of the source and scores its answers with a judge LLM, `JUDGE_MODEL`,
# that the chapter serves itself once the answers exist, or that you serve elsewhere and name in
# `JUDGE_BASE_URL` (see [section 9](#9-scoring-with-a-judge)). `PROFILE = "tiny"` runs offline on a
# small GPT-2 that `llmtut` pretrains on the tiny world's prose, and on instructions that the tiny
# world generates. Papermill overrides these values (`-p PROFILE tiny`).

# %% tags=["parameters"]
PROFILE = profiles.default_profile()  # "hub" or "tiny"
SEED = 123
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
NUM_EPOCHS = None  # None: the profile's default below
N_TRAIN = None  # train on the first this many training records (None: all)
N_SCORED = None  # answer and score the first this many test records (None: all)
BATCH_SIZE = 8
LEARNING_RATE = None  # None: the profile's default below
EVAL_FREQ = None  # measure the losses every this many steps (None: profile's default)
EVAL_ITER = 5  # ... over this many batches
MAX_NEW_TOKENS = None  # None: the profile's default below
JUDGE_BASE_URL = None  # hub: an OpenAI-compatible URL; None: serve JUDGE_MODEL here
JUDGE_MODEL = "Qwen/Qwen2.5-3B-Instruct"  # hub: the judge (the model served)
OUT_DIR = "out/01_instruction_data"

# %%
profiles.check_profile(PROFILE)
defaults = {
    "tiny": dict(epochs=10, lr=3e-3, eval_freq=20, new_tokens=24),
    "hub": dict(epochs=2, lr=5e-5, eval_freq=5, new_tokens=256),
}[PROFILE]
num_epochs = NUM_EPOCHS or defaults["epochs"]
eval_freq = EVAL_FREQ or defaults["eval_freq"]
lr = LEARNING_RATE or defaults["lr"]
max_new_tokens = MAX_NEW_TOKENS or defaults["new_tokens"]
out_dir = Path(OUT_DIR)
out_dir.mkdir(parents=True, exist_ok=True)
# Progress bars for the long hub runs only; the tiny ones print their results instead.
progress = PROFILE == "hub"
if not progress:
    transformers.logging.disable_progress_bar()
print(f"{PROFILE} profile on {DEVICE}: seed {SEED}, {num_epochs} epochs, learning rate "
      f"{lr}, batches of {BATCH_SIZE}")

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
    overview = tasks.agg(**{
        "records": ("output", "size"),
        "without input": ("input", lambda s: int((s == "").sum())),
        "first instruction": ("instruction", "first"),
        "its input": ("input", "first"),
        "its output": ("output", "first"),
    })
else:
    overview = pd.DataFrame({"records": [len(data)]},
                            index=["(no task labels in the hub file)"])
overview

# %% [markdown]
# A JSON file from elsewhere can be wrong in ways that surface much later, as a `KeyError` in
# the middle of training or as `None` printed into a prompt. `load_records` first passes the
# records to `validate_records`, which names the record and the field at fault:

# %%
broken = [data[0], {"instruction": "Add 2 and 3.", "output": 5},
          {"instruction": "Say hi.", "input": ""}]
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
# format it with their own chat template ([chapter 4](04_multi_turn.ipynb)). One record with an
# input and one without:

# %%
with_input = next(r for r in data if r["input"])
without_input = next(r for r in data if not r["input"])
styles = [("Alpaca, with input", format_alpaca(with_input, with_response=True)),
          ("Alpaca, without input", format_alpaca(without_input, with_response=True)),
          ("Phi-3", format_phi3(with_input, with_response=True))]
for name, text in styles:
    print(f"----- {name} -----\n{text}\n")
print("----- messages -----")
print(json.dumps(to_messages(with_input), indent=2, ensure_ascii=False))

# %% [markdown]
# ## 3. Train, test and validation sets
#
# The records are split 85% / 10% / 5% into training, test and validation sets: the first 85% for
# training, the next 10% for testing, the rest for validation. The validation set tells us during
# training whether the model generalizes; the test set is only used at the end, for scoring.
#
# In the `hub` profile we split the file in its own order, without shuffling, exactly as the
# source does (`data[:935]`, `data[935:1045]`, `data[1045:]`): our test set is then the source's
# 110 test records, and our answers can be read next to the gpt2-medium answers that the source
# publishes for them (`instruction-data-with-response.json`). The tiny world has no published
# answers to compare with, so there we shuffle with `SEED` first. `split_records` takes the choice
# as an explicit parameter, `shuffle_seed` (None keeps the order), and then cuts:

# %%
show_source(instructions.split_records, start="ordered = list(records)")

# %%
shuffle_seed = None if PROFILE == "hub" else SEED
train_data, test_data, val_data = instructions.split_records(
    data, shuffle_seed=shuffle_seed)
order = ("in the file's order" if shuffle_seed is None
         else f"after a shuffle with seed {shuffle_seed}")
print(f"split {order}: {len(train_data)} training, {len(test_data)} test and "
      f"{len(val_data)} validation records")
n_train, n_test = len(train_data), len(test_data)
in_order = test_data == data[n_train:n_train + n_test]
print(f"the test set is data[{n_train}:{n_train + n_test}] in the file's order: "
      f"{'yes' if in_order else 'no (shuffled)'}")
# all of them, unless a quick run asks for fewer
train_data, test_data = train_data[:N_TRAIN], test_data[:N_SCORED]

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
split_sizes = {"n_train": n_train, "n_test": n_test, "n_val": len(val_data)}
for key, size in split_sizes.items():
    record(f"data.{key}", size)

# %% [markdown]
# ## 4. The dataset and the collate function
#
# The base model and its tokenizer first. GPT-2 has a single special token, `<|endoftext|>`
# (id 50256 in the real GPT-2), and no padding token: like the source, we pad with the
# end-of-text token and tell the loader so explicitly (`pad_with_eos=True`).

# %%
model, tokenizer = profiles.load_causal_lm("instruction_base", PROFILE, DEVICE,
                                           pad_with_eos=True)
eot_id = tokenizer.eos_token_id
vocab_size = len(tokenizer)
print(f"{type(model).__name__}: {model.num_parameters():,} parameters, vocabulary "
      f"{vocab_size:,}, end of text {tokenizer.eos_token!r} = {eot_id}")
card = profiles.world_card("instruction_base", PROFILE)  # None in the hub profile
if card:
    print(f"pretrained by llmtut on {card['n_train_tokens']:,} tokens of the tiny "
          f"world's prose; its training loss went from {card['loss_first']:.2f} to "
          f"{card['loss_last']:.2f}")

# %% [markdown]
# `InstructionDataset` formats and tokenizes every record once, up front, so that batches are
# cheap to build. The examples have different lengths, so a batch must be padded to a common
# length. The collate function does that, and builds the *targets*: the inputs shifted one
# position left, since at each position the model predicts the next token. Its core, for each
# example of the batch:

# %%
show_source(collate, start="batch_max_length", stop="inputs[:allowed_max_length]")

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
toy_inputs, toy_targets = collate(list(instructions.TOY_BATCH), pad_token_id=50256,
                                  allowed_max_length=4)
expected_inputs, expected_targets = instructions.toy_collate_expected(
    pad=50256, allowed_max_length=4)
print("inputs:\n", toy_inputs, "\ntargets:\n", toy_targets)
toy_matches = (torch.equal(toy_inputs, expected_inputs)
               and torch.equal(toy_targets, expected_targets))
print("the same as the source's toy batch:", "yes" if toy_matches else "no")

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("collate.toy_matches", toy_matches)

# %% [markdown]
# The second row, `[5, 6]`, became inputs `[5, 6, 50256, 50256]` and targets
# `[6, 50256, -100, -100]`: after `6` the model must predict the end of text, and nothing after
# that counts. The first row was cut to four tokens and has no end-of-text token left at all.
#
# An option also masks the *instruction* (the source's exercise 7.2;
# [chapter 2](02_label_masking.ipynb) measures what that changes). The dataset then remembers
# each example's prompt length: the tokens of `format_alpaca(record)`, which is the preamble, the
# instruction and the input. The collate sets the targets that predict those tokens to `-100`.
# The `### Response:` header is *not* part of that prompt (it comes with the response, in
# `format_alpaca(record, with_response=True)`), so the loss still sees the header, then the
# response, then the end-of-text token. The source does exactly the same: its masked length is
# that of `format_input(entry)`, which also stops before the header. Here is one training example
# both ways, decoded: what the loss sees is what the model is taught to write.

# %%
plain_ds = InstructionDataset(train_data, tokenizer)
masked_ds = InstructionDataset(train_data, tokenizer, mask_instructions=True)
for name, ds, masked in [("all tokens", plain_ds, False),
                         ("instruction masked", masked_ds, True)]:
    _, targets = collate([ds[0]], pad_token_id=eot_id, mask_instructions=masked)
    seen = [t for t in targets[0].tolist() if t != -100]
    print(f"----- the loss sees ({name}): {len(seen)} of {targets.shape[1]} targets")
    print(repr(tokenizer.decode(seen)), "\n")
masked_text = tokenizer.decode(seen)  # the last loop's: the masked example
header = formats.RESPONSE_HEADERS["alpaca"]
trained = header + train_data[0]["output"] + tokenizer.eos_token
print("masked, the loss sees exactly the response header, the output and the "
      "end-of-text token:", "yes" if masked_text == trained else "no")

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("masking.trains_header_output_eot", masked_text == trained)

# %% [markdown]
# The unmasked example starts at " is": the first token, "Below", is never a target, because no
# token before it predicts it.
#
# The data loaders: the collate gets its device and padding token through `functools.partial`,
# so that batches arrive on the GPU ready to use. The training loader shuffles (with a seeded
# generator) and drops a last incomplete batch; the validation loader keeps the order. (The test
# set needs no loader: [section 8](#8-answers-on-the-test-set) generates its answers straight from the prompts.)

# %%
lengths = [len(ids) for ids in plain_ds.encoded_texts]
allowed_max_length = min(1024, model.config.n_positions)
print(f"training examples are {min(lengths)}-{max(lengths)} tokens long; the collate "
      f"would cut any longer than {allowed_max_length} (allowed_max_length)")


def loaders(mask_instructions: bool) -> tuple[DataLoader, DataLoader]:
    collate_fn = partial(collate, pad_token_id=eot_id,
                         allowed_max_length=allowed_max_length, device=DEVICE,
                         mask_instructions=mask_instructions)

    def dataset(records):
        return InstructionDataset(records, tokenizer,
                                  mask_instructions=mask_instructions)

    train = DataLoader(dataset(train_data), batch_size=BATCH_SIZE, shuffle=True,
                       drop_last=True, collate_fn=collate_fn,
                       generator=torch.Generator().manual_seed(SEED))
    val = DataLoader(dataset(val_data), batch_size=BATCH_SIZE, shuffle=False,
                     collate_fn=collate_fn)
    return train, val


train_loader, val_loader = loaders(mask_instructions=False)
inputs, targets = next(iter(train_loader))
print(f"{len(train_loader)} training batches; the first: inputs {tuple(inputs.shape)}, "
      f"targets {tuple(targets.shape)} on {inputs.device}")

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
show_source(loop.batch_loss)

# %% [markdown]
# The loop itself (`loop.train_with_eval`, from its inner `evaluate` to the end of training; the
# lines left out set the seed and start `history`, `step` and `tokens_seen`): a step is zero the
# gradients, compute the loss, backpropagate, update; every `eval_freq` steps, `evaluate`
# measures the loss on the first `eval_iter` batches of the training and of the validation set.

# %%
show_source(loop.train_with_eval, start="def evaluate()", stop="model.eval()")

# %% [markdown]
# AdamW with weight decay 0.1, as in the source. (The `hub` profile trains gpt2-medium for 2
# epochs at a learning rate of 5e-5, as the source; the 1M-parameter tiny model needs a larger
# rate and more epochs.)

# %%
def finetune(mask_instructions: bool):
    torch.manual_seed(SEED)
    model, _ = profiles.load_causal_lm("instruction_base", PROFILE, DEVICE,
                                       pad_with_eos=True)
    train_loader, val_loader = loaders(mask_instructions)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    history = loop.train_with_eval(model, train_loader, val_loader, optimizer,
                                   num_epochs=num_epochs, eval_freq=eval_freq,
                                   eval_iter=EVAL_ITER, seed=SEED, progress=progress)
    return model, history


finetuned, history = finetune(mask_instructions=False)
print(f"validation loss {history.val_loss[0]:.3f} -> {history.val_loss[-1]:.3f} after "
      f"{history.steps[-1]} steps ({history.tokens_seen[-1]:,} tokens)")
shown = [i for i, s in enumerate(history.steps) if s in (0, 20, 40, 100)]
shown += [len(history.steps) - 1]
pd.DataFrame({"step": [history.steps[i] for i in shown],
              "training loss": [f"{history.train_loss[i]:.3f}" for i in shown],
              "validation loss": [f"{history.val_loss[i]:.3f}" for i in shown]}
             ).set_index("step").T

# %%
fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(history.steps, history.train_loss, label="training loss")
ax.plot(history.steps, history.val_loss, label="validation loss", linestyle="--")
ax.axhline(math.log(vocab_size), color="gray", linewidth=0.8, linestyle=":",
           label=f"uniform guess, ln {vocab_size:,}")
ax.set(xlabel="step", ylabel="loss (log scale)", yscale="log",
       title=f"fine-tuning: loss every {eval_freq} steps")
# plain numbers on the log axis, so that the low losses have ticks to read them by
ax.set_yticks([0.2, 0.3, 0.5, 1, 2, 5, 10])
ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))  # 0.3, 1, 10
ax.yaxis.set_minor_formatter(NullFormatter())
ax.legend()
plt.tight_layout()
plt.show()

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("val_loss.initial", round(history.val_loss[0], 4))
record("val_loss.final", round(history.val_loss[-1], 4))

# %% [markdown]
# In the `tiny` profile the first validation loss is *above* the loss of a model that knows
# nothing at all. A uniform guess over the vocabulary gives every token the probability 1/V, so
# its cross-entropy is ln V, whatever the text:

# %%
uniform_loss = math.log(vocab_size)
print(f"uniform guess over the {vocab_size:,} tokens of the vocabulary: "
      f"ln {vocab_size:,} = {uniform_loss:.3f}")
print(f"the base model, before fine-tuning: {history.val_loss[0]:.3f}")

# %% [markdown]
# A pretrained model does not spread its bets evenly. It has learned to put most of its
# probability on a few tokens that fit its pretraining prose, so on a format it never read it is
# often *confidently wrong*, and the cross-entropy, −ln p(right token), has no ceiling: a right
# token given one chance in a million costs ln 10⁶ = 13.8, far more than ln V. The base model on
# the same validation batches:

# %%
p_right, p_top = [], []
with torch.no_grad():
    for i, (inputs, targets) in enumerate(val_loader):
        if i == EVAL_ITER:
            break
        probs = model(inputs).logits.softmax(-1)
        kept = targets != -100
        p_right.append(probs.gather(-1, targets.clamp(min=0)[..., None])[..., 0][kept])
        p_top.append(probs.max(-1).values[kept])
p_right, p_top = torch.cat(p_right), torch.cat(p_top)
below = p_right < 1 / vocab_size
print(f"{len(p_right):,} validation targets; the base model gives the right token less "
      f"than 1/{vocab_size:,} on {below.float().mean():.0%} of them.")
print(f"On those, its own top guess (a wrong token) gets {p_top[below].mean():.0%} of "
      f"the probability on average, and the loss averages "
      f"{-p_right[below].log().mean():.1f}.")

# %% [markdown]
# More than half of the targets get less than the uniform probability, and on those the model is
# sure of something else: they are what lifts the mean above ln V. After 20 steps of
# fine-tuning the validation loss is already far below it (the table above).
#
# ## 7. The same, with the instruction masked
#
# One more run, identical but for `mask_instructions=True`: the loss sees the `### Response:`
# header, the response and its end-of-text token, and nothing of the preamble, the instruction or
# the input ([section 4](#4-the-dataset-and-the-collate-function) printed an example). Its
# validation loss is measured on those targets only, so it is not comparable with the first
# run's; the scores below are.

# %%
finetuned_masked, history_masked = finetune(mask_instructions=True)
print(f"validation loss (response targets only) {history_masked.val_loss[0]:.3f} -> "
      f"{history_masked.val_loss[-1]:.3f}")

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
with_responses = [dict(r, model_response=a)
                  for r, a in zip(test_data, finetuned_answers, strict=True)]
responses_path = out_dir / "instruction-data-with-response.json"
responses_path.write_text(json.dumps(with_responses, indent=2, ensure_ascii=False))
print(f"saved {len(with_responses)} responses to {responses_path}")
pd.DataFrame({"instruction": [r["instruction"] for r in test_data[:8]],
              "input": [r["input"] for r in test_data[:8]],
              "reference": [r["output"] for r in test_data[:8]],
              "base model": base_answers[:8],
              "fine-tuned": finetuned_answers[:8],
              "instruction masked": masked_answers[:8]})

# %% [markdown]
# The answers are all we need from the three models. We free their memory before a judge moves in
# (on a Colab T4, 15 GB, three gpt2-medium models in fp32 take about 4 GB):

# %%
del model, finetuned, finetuned_masked
gc.collect()
if torch.cuda.is_available():
    torch.cuda.empty_cache()
    print(f"GPU memory still allocated by this notebook: "
          f"{torch.cuda.memory_allocated() / 2**30:.2f} GiB")

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
# until it answers and stops it once every answer is scored. The first run downloads the model.
# A small proxy in front of it writes every request it receives to `judge_requests.jsonl`. To use
# a judge you already run (a larger model, vLLM, Ollama, OpenAI), set `JUDGE_BASE_URL` to its
# base URL and `JUDGE_MODEL` to the name it serves.
#
# The scores belong to the judge: compare the three models under one judge, never a score from
# one judge with a score from another. A stronger judge (the source used an 8B Llama 3) follows the
# 0-100 scale more consistently and tells close answers apart better; a 3B judge's scores are
# noisier, so a small difference between two models means less.
#
# **In the `tiny` profile there is no judge.** No model small enough to run here on a CPU can
# judge answers, so the chapter scores with `ReferenceScorer`: 100 for an exact match (ignoring
# extra spaces and final punctuation, but not case: "soup" is not "Soup"), otherwise 100 × the
# word-overlap F1 with the reference, whose words must match in case too. It sits
# behind the same interface as the judge, but it measures overlap, not quality. The prompt a
# judge gets, for the first test answer:

# %%
print(judge.judge_prompt(prompt_for(test_data[0]), test_data[0]["output"],
                         finetuned_answers[0]))

# %%
judge_server = contextlib.ExitStack()  # closing it stops a server started here
if PROFILE == "hub":
    judge_url = JUDGE_BASE_URL or judge_server.enter_context(
        # a Hub model is downloaded when the server starts: give it time
        served(JUDGE_MODEL, device=DEVICE, request_log=out_dir / "judge_requests.jsonl",
               offline=False, timeout_s=1800))
    scorer = judge.JudgeClient(JUDGE_MODEL, judge_url)
    print(f"scored by the judge {JUDGE_MODEL}")
else:
    scorer = judge.ReferenceScorer()
    print("scored by comparison with the reference answer (exact match, else word-"
          "overlap F1): no judge")
LABELS = {"base": "base model", "finetuned": "fine-tuned",
          "finetuned_masked_instructions": "instruction masked"}


def score(answers: list[str], name: str) -> judge.ScoreReport:
    entries = [dict(r, model_response=a)
               for r, a in zip(test_data, answers, strict=True)]
    # One scores file per scorer and set of answers: a re-run with the same answers
    # resumes it, new answers (or another scorer) get a new file.
    keys = scorer.name + "".join(judge.record_key(e) for e in entries)
    digest = hashlib.sha256(keys.encode()).hexdigest()[:8]
    path = out_dir / f"scores-{name}-{digest}.jsonl"
    report = judge.score_responses(entries, scorer, path, format_input=prompt_for,
                                   progress=progress)
    n_scored = len(report.scores) - report.n_unparsed
    mean = "none" if report.mean is None else f"{report.mean:.1f}"
    resumed = (f" ({report.n_resumed} scores read back from the file an earlier run "
               "of this chapter saved)")
    print(f"{LABELS[name]}: {n_scored} of {len(report.scores)} answers scored, "
          f"mean {mean}" + (resumed if report.n_resumed else ""))
    return report


scores = {"base": score(base_answers, "base"),
          "finetuned": score(finetuned_answers, "finetuned"),
          "finetuned_masked_instructions": score(masked_answers,
                                                 "finetuned_masked_instructions")}
judge_server.close()  # all scored: stop the judge (if this chapter started one)

# %% [markdown]
# ## 10. Scores
#
# The mean score of each model, and how many of its answers scored 100 (with the `tiny` profile's
# scorer, a score of 100 is an exact match, capital letters included, up to spacing and final
# punctuation):

# %%
def rounded(x: float | None, digits: int) -> float | None:
    # None: no reply of the judge was a score
    return None if x is None else round(x, digits)


def n_100(r: judge.ScoreReport) -> int:
    return sum(s == 100 for s in r.scores)


table = pd.DataFrame.from_dict(
    {LABELS[name]: {"mean score (0-100)": rounded(r.mean, 1),
                    "answers scored 100": n_100(r),
                    "scored": len(r.scores) - r.n_unparsed,
                    "unparsed": r.n_unparsed}
     for name, r in scores.items()}, orient="index")
table

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
for name, r in scores.items():
    record(f"score.{name}", rounded(r.mean, 2))

# %% [markdown]
# Masking the instruction moved the mean score by less than a point but raised the answers that
# scored 100 from 8 to 24 (the table). Each model is one training run, scored on 110 test
# answers. The difference of the two means, with a 95% bootstrap interval over the test
# records, and where the extra 100s come from:

# %%
both = list(zip(scores["finetuned_masked_instructions"].scores,
                scores["finetuned"].scores, strict=True))  # (masked, all tokens)
pairs = [(m, f) for m, f in both if m is not None and f is not None]
if len(pairs) >= 2:  # an interval needs two answers that both runs got a score for
    diff = paired_difference([m for m, _ in pairs], [f for _, f in pairs], seed=SEED)
    print(f"instruction masked minus all tokens: {diff['mean_diff']:+.2f} points "
          f"(95% interval {diff['ci95_low']:+.2f} to {diff['ci95_high']:+.2f}, "
          f"{diff['n']} answers)")
else:
    diff = None
    print(f"{len(pairs)} answers were scored in both runs: too few for an interval")
only_masked = [f for m, f in pairs if m == 100 and f != 100]
only_plain = [m for m, f in pairs if f == 100 and m != 100]
print(f"{len(only_masked)} answers scored 100 with the instruction masked and not "
      f"without; without masking they scored "
      f"{sum(only_masked) / max(len(only_masked), 1):.1f} on average.")
example = next((i for i, (m, f) in enumerate(both)
                if m == 100 and f is not None and f < 100), None)
if example is not None:
    print(f"The first of them: reference {test_data[example]['output']!r}, without "
          f"masking {finetuned_answers[example]!r}, scored {both[example][1]}.")
print(f"{len(only_plain)} answers scored 100 without masking and not with it.")
if pairs:  # the mean difference, split between these two groups and the rest
    gained = sum(m - f for m, f in pairs if m == 100 and f != 100) / len(pairs)
    lost = sum(m - f for m, f in pairs if f == 100 and m != 100) / len(pairs)
    others = [m - f for m, f in pairs if (m == 100) == (f == 100) and m != f]
    print(f"On the mean of {len(pairs)} answers, the first group adds {gained:+.1f} "
          f"points, the second {lost:+.1f}, and the {len(others)} other answers whose "
          f"score changed {sum(others) / len(pairs):+.1f}.")

# %% [markdown]
# The 21 answers that only the masked run got exactly right had earned 78.6 on average
# without masking: near misses, like the one printed, that the word-overlap score rates highly.
# An exact answer there gains about 21 points (100 - 78.6), +4.1 on the mean of 110 answers
# (21 × 21.4 / 110). The 5 answers that went the other way take back 1.9 of them, and the 10
# other answers whose score changed 2.2 more: the two means differ by -0.04 points (both round
# to 36.0 in the table), and the interval, which includes zero, says they do not differ
# measurably.
#
# Where do the points come from? The mean score per task of the test set, and the answers that
# scored 100 (`tiny` profile):

# %%
if task_of:
    def task(r: dict) -> str:
        return task_of[(r["instruction"], r["input"], r["output"])]

    test_tasks = [task(r) for r in test_data]
    by_task = pd.DataFrame({LABELS[name]: r.scores for name, r in scores.items()})
    by_task["task"] = test_tasks
    per_task = by_task.groupby("task").mean().round(1)
    for name in ("finetuned", "finetuned_masked_instructions"):
        per_task[f"{LABELS[name]}: 100s"] = (by_task[LABELS[name]] == 100).groupby(
            by_task["task"]).sum()
    per_task["test records"] = by_task.groupby("task").size()
else:
    per_task = pd.DataFrame()
per_task

# %% [markdown]
# Most of the masked run's extra 100s are in `capitalize` and `uppercase`, tasks that copy the
# input into another case: 14 of the 16 (10 - 2 and 10 - 4). The case must be right: the
# scorer tells capital letters apart, so copying the input unchanged is not the answer. For the
# first test record of each task that has an input:

# %%
if task_of:
    for name in ("capitalize", "uppercase"):
        r = next(r for r in test_data if task(r) == name and r["input"])
        copied = judge.ReferenceScorer().score(prompt_for(r), r["output"], r["input"])
        print(f"{name}: the input {r['input']!r} as the answer scores {copied.value} "
              f"against {r['output']!r}")

# %% [markdown]
# Three tasks score 0 for every model: `antonym`, `plural` and `translate`. `translate` fails although the base model read Spanish lessons. A
# Spanish word is a fact the model must already know: the training records hold each of their
# Spanish words once, and none of the test words:

# %%
if task_of:
    translate_train = [r["output"] for r in train_data if task(r) == "translate"]
    translate_test = [i for i, t in enumerate(test_tasks) if t == "translate"]
    n_seen = sum(test_data[i]["output"] in set(translate_train) for i in translate_test)
    print(f"translate: {len(translate_train)} training records with "
          f"{len(set(translate_train))} different Spanish words; {n_seen} of the "
          f"{len(translate_test)} test words are among them.")
    n_pairs = len(profiles.word_pairs())
    n_known = round(card["translation_accuracy"] * n_pairs)
    print(f"Before fine-tuning, the base model completed 'In Spanish, \"dog\" is' with "
          f"the right word for {n_known} of the {n_pairs} words of the tiny world.")
    display(pd.DataFrame({
        "instruction": [test_data[i]["instruction"] for i in translate_test[:6]],
        "input": [test_data[i]["input"] for i in translate_test[:6]],
        "reference": [test_data[i]["output"] for i in translate_test[:6]],
        "fine-tuned": [finetuned_answers[i] for i in translate_test[:6]],
        "instruction masked": [masked_answers[i] for i in translate_test[:6]]}))

# %% [markdown]
# Both fine-tuned models answer with one Spanish word, the format they were taught, but not the
# right one. The answer had to come from pretraining, and the tiny GPT-2 learned almost none of
# the word pairs there (1 of 191, above): a 1M-parameter model pretrained briefly learns the
# frequent patterns of its prose, not a list of 191 facts.

# %% [markdown]
# ## What the numbers say

# %%
def fmt(x: float | None) -> str:
    return "none" if x is None else f"{x:.1f}"


rows = {
    "records: training / test / validation": f"{n_train} / {n_test} / {len(val_data)}",
    "toy batch collated as in the source": "yes" if toy_matches else "no",
    "masked: the loss sees only header, output, end of text":
        "yes" if masked_text == trained else "no",
    "validation loss: before → after fine-tuning":
        f"{history.val_loss[0]:.3f} → {history.val_loss[-1]:.3f}",
    f"uniform guess: ln {vocab_size:,}": f"{uniform_loss:.3f}",
    "mean score: base / fine-tuned / instruction masked":
        " / ".join(fmt(r.mean) for r in scores.values()),
    f"answers scored 100 (of {len(test_data)}), same order":
        " / ".join(str(n_100(r)) for r in scores.values()),
    "instruction masked minus all tokens, mean score (95% interval)":
        f"{diff['mean_diff']:+.2f} "
        f"({diff['ci95_low']:+.2f} to {diff['ci95_high']:+.2f})" if diff else "too few",
}
if task_of:
    rows["translate: test words seen in fine-tuning"] = (
        f"{n_seen} of {len(translate_test)}")
    rows["translate: mean score, fine-tuned"] = fmt(
        per_task.loc["translate", "fine-tuned"])
pd.DataFrame({"value": rows})

# %% [markdown]
# - **Data.** The records load from JSON and are validated first: a missing field is an error
#   that names the record and the field. The split is 85 / 10 / 5: in the `hub`
#   profile in the file's own order, so the test set is the source's `data[935:1045]`; in the
#   `tiny` profile after a shuffle by `SEED`, the same for the same seed.
# - **Collate.** The toy batch comes out exactly as the source's: one end-of-text token kept
#   as a target, the rest of the padding `-100`, truncation applied to inputs and targets alike.
# - **Training.** The validation loss starts above the uniform guess, because the base model is
#   confidently wrong about a format it never read. It falls to 1.15 within 40 steps (the table
#   of [section 6](#6-fine-tuning-with-a-plain-pytorch-loop)), and the other 1120 steps bring it
#   down to 0.538.
# - **Scores.** The base model scores close to nothing (2.3): it has never seen the format and
#   writes lesson dialogues. The fine-tuned model scores 36.0. In the `tiny` profile the points
#   come from the tasks that copy and reshape the input (capitalization, upper case, similes,
#   all above 80); the tasks whose answer is a fact the model must recall (a plural, an opposite,
#   a Spanish word) score 0. For `translate` the reason is plain: fine-tuning showed none of the
#   13 test words, and pretraining taught the model 1 word pair of 191. The model learned the
#   format, not the facts. In the `hub` profile gpt2-medium and a judge LLM play these roles.
# - **Masking the instruction.** With the loss on the `### Response:` header, the response and
#   its end-of-text token only, the mean score moved by -0.04 points, with a 95% interval of
#   -4.27 to +3.85 that includes zero: no measurable difference. The answers that scored 100 went
#   from 8 to 24, 14 of the 16 more in `capitalize` and `uppercase`, where the other run wrote
#   near misses that the overlap score already rated highly. That is one training run of each:
#   [chapter 2](02_label_masking.ipynb) compares masking over three seeds, on a smaller task.
#
# The reference-based scorer is a stand-in: it rewards word overlap, so a fluent answer that
# reuses the reference's words scores well and a correct paraphrase scores badly. When you run
# the `hub` profile, read a few of the judge's scores next to the answers before you trust its
# mean.
