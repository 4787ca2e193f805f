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
# # Special tokens: when a response template is not where you think it is
#
# Completion-only training needs to know where the answer starts. A popular recipe searches
# each tokenized example for the tokens of a *response template* such as `"\n\n### Assistant:"`
# and masks everything before it. This chapter shows how that recipe breaks, and what fixing it
# costs:
#
# 1. the template tokenized alone is not the template tokenized in context (`"?\n\n"` is one
#    token), so a template search finds nothing, and a silent masker trains on nothing;
# 2. the fix: make the template a *special token*, one id that the tokenizer never splits or merges;
# 3. the cost: the new token's embedding row is new, and must be initialised and learned. We
#    compare three initialisations;
# 4. with LoRA, the embedding rows are frozen: the new rows must be made trainable explicitly.
#
# **On a T4.** On a free Colab T4 (15 GB) the `hub` profile needs about 10 GiB of GPU memory at its
# fullest and about 3 minutes (estimated from the real models' shapes and its `hub` settings by
# `llmtut.t4_plan`; nothing was measured on a GPU). The `tiny` profile runs on a CPU.


# %%
# Colab only: install llmtut, the book's package (with transformers, trl, peft, ...).
import subprocess
import sys

if "google.colab" in sys.modules:
    package = "llmtut @ git+https://github.com/llmtut/llmtut"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %%
import logging
import os
import re
import warnings

# The training runs here are short: no progress bars (set before tqdm loads).
os.environ["TQDM_DISABLE"] = "1"
warnings.filterwarnings("ignore", message="IProgress not found")
# transformers' notices of names it will rename in its next major version
warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")

import datasets
import matplotlib.pyplot as plt
import pandas as pd
import torch
import transformers
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments
from trl import SFTConfig, SFTTrainer

from llmtut import profiles, special_tokens
from llmtut.formats import ASSISTANT, HUMAN
from llmtut.generation import generate_answers
from llmtut.masking import IGNORE_INDEX
from llmtut.page import show_source
from llmtut.precision import precision_for
from llmtut.report import record
from llmtut.special_tokens import (
    add_special_tokens_with_init,
    find_template,
    mask_before_template,
)
from llmtut.training import (
    StopWhenLearned,
    plot_learning,
    small_run_args,
    train_until_learned,
    with_lora,
)
from llmtut.translation_task import LORA_TARGETS, TRAIN_WORDS, example_text, prompt_text

transformers.logging.disable_progress_bar()  # no bar each time a model loads
datasets.disable_progress_bars()  # nor each time trl prepares a data set

# %% [markdown]
# The chapter's parameters. `PROFILE = "hub"` runs it on `bigscience/bloom-560m` (Colab);
# `PROFILE = "tiny"` on the small Bloom model that `llmtut` pretrains offline. papermill
# overrides these values (`-p PROFILE tiny`).

# %% tags=["parameters"]
PROFILE = profiles.default_profile()  # "hub" or "tiny"
SEED = 0
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
MAX_EPOCHS = 60  # each run trains until it answers all five examples, at most this long
BATCH_SIZE = 1
LEARNING_RATE = None  # None: the profile's default below
LORA_R = 8

# %%
profiles.check_profile(PROFILE)
lr = LEARNING_RATE or {"tiny": 1e-3, "hub": 3e-4}[PROFILE]
print(f"Profile {PROFILE} on {DEVICE}, seed {SEED}, learning rate {lr}, "
      f"LoRA rank {LORA_R}.")
base_model, tokenizer = profiles.load_causal_lm("masking_base", PROFILE, DEVICE)
print(f"{type(base_model).__name__}: {base_model.num_parameters():,} parameters, "
      f"a vocabulary of {len(tokenizer):,} tokens")

# %% [markdown]
# ## The task, as in the label-masking chapter
#
# The five word translations of [chapter 2](02_label_masking.ipynb) to train on (its held-out
# word plays no part here). Each example is an exchange between `### Human:` and
# `### Assistant:`, with `</s>` before the human turn and `<s>` after the assistant's template
# (`llmtut.translation_task`).

# %%
def tokens(text, tok=tokenizer):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return ids, tok.convert_ids_to_tokens(ids)


train_texts = [example_text(tokenizer, en, es) for en, es in TRAIN_WORDS.items()]
train_prompts = [prompt_text(tokenizer, en) for en in TRAIN_WORDS]
train_answers = list(TRAIN_WORDS.values())
print(repr(train_texts[0]))

# %% [markdown]
# ## 1. The template, alone and in context
#
# Here is the response template tokenized on its own, and the first training example (`Ġ` is a
# space, `Ċ` a newline; the last column shows each token as text). Look at the token before `###`
# in the example: the tokenizer learned `?` followed by a blank line as *one* token, so the
# `\n\n` of the template is glued to the question mark.

# %%
template_ids, template_tokens = tokens(ASSISTANT)
ids0, toks0 = tokens(train_texts[0])
print("template alone:", template_ids, template_tokens)
pd.DataFrame({"token id": ids0, "token": toks0,
              "as text": [repr(tokenizer.decode([i])) for i in ids0]})

# %%
found_before = [
    any(ids[i : i + len(template_ids)] == template_ids for i in range(len(ids)))
    for ids, _ in map(tokens, train_texts)
]
print(f"The template's tokens occur in {sum(found_before)} of {len(train_texts)} "
      "training examples.")

# %% [markdown]
# A completion-only masker that searches for those tokens, and, like many do, falls back to
# masking the whole row when it finds nothing, returns this:

# %%
def silent_mask(ids, template):
    for start in range(len(ids) - len(template) + 1):
        if ids[start : start + len(template)] == template:
            end = start + len(template)
            return [IGNORE_INDEX] * end + ids[end:]
    # not found: nothing to learn, and no word about it
    return [IGNORE_INDEX] * len(ids)


silent = [silent_mask(ids, template_ids) for ids, _ in map(tokens, train_texts)]
print("labels of row 0:", silent[0])
seen = sum(label != IGNORE_INDEX for row in silent for label in row)
print(f"Labels the loss sees, over all five rows: {seen}")

# %% [markdown]
# Every label is `-100`: the five examples would cost five training steps and teach nothing
# (the loss of a batch with no label is not even a number). `llmtut`'s search refuses instead,
# and names the row and the fix:

# %%
show_source(find_template, start="for start", docstring=False)

# %%
template_found_before = True
for row, text in enumerate(train_texts):
    try:
        mask_before_template(tokens(text)[0], template_ids, row)
    except ValueError as err:
        template_found_before = False
        message = str(err).split(" input_ids=")[0]  # the row's token ids follow
        print("ValueError:", message)
        break

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("template_found.before", template_found_before)

# %% [markdown]
# What does trl do? `SFTTrainer` with `completion_only_loss` takes a `prompt` and a `completion`
# column and marks as completion everything after the longest common prefix of the tokenized
# prompt and the tokenized prompt + completion. Suppose we split the example after the question
# mark, so that the template belongs to the completion. The prompt alone ends in `?`; in the
# full text that `?` becomes `?\n\n`. trl notices, warns, and starts the completion at the merged
# token:

# %%
class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


capture = Capture()
logging.getLogger("trl.trainer.sft_trainer").addHandler(capture)
split = [
    {"prompt": f'{tokenizer.eos_token}{HUMAN} How do you say "{en}" in Spanish?',
     "completion": f"{ASSISTANT}{tokenizer.bos_token} {es}{tokenizer.eos_token}"}
    for en, es in TRAIN_WORDS.items()
]
probe_args = SFTConfig(
    output_dir="out/probe", completion_only_loss=True, gradient_checkpointing=False,
    report_to=[], use_cpu=DEVICE == "cpu", **precision_for(DEVICE).trainer_args(),
)
probe = SFTTrainer(model=base_model, args=probe_args,
                   train_dataset=Dataset.from_list(split), processing_class=tokenizer)
logging.getLogger("trl.trainer.sft_trainer").removeHandler(capture)
first = probe.train_dataset[0]
labels = first["labels"]  # trl folds its completion mask into the labels
# accelerate's logger starts each message with the process: "[RANK 0] "
said = [re.sub(r"^\[RANK \d+\] ", "", m) for m in capture.messages]
print("trl says:", said[0] if said else "(no warning)")
print("labels:", labels)
kept = [t for t in labels if t != IGNORE_INDEX]
print("The loss sees:", repr(tokenizer.decode(kept)))
del probe

# %% [markdown]
# trl does not train on nothing, but the boundary it uses is not the one we wrote: the question
# mark lands in the completion, and at inference (a prompt that ends in `?`) the model sees a
# token it never saw at that place in training.
#
# ## 2. The fix: the templates become special tokens
#
# We add `"\n\n### Human:"` and `"\n\n### Assistant:"` as additional special tokens. The
# tokenizer matches special tokens *before* it runs BPE, so each is always one id, whatever
# precedes it. The model needs an embedding row for each new id: `add_special_tokens_with_init`
# adds the tokens, resizes the embeddings and initialises the new rows (`_init_rows`, shown in
# [section 3](#3-the-cost-new-rows-must-be-learned)):

# %%
show_source(add_special_tokens_with_init, start="pieces = ", docstring=False)

# %%
fixed_model, fixed_tok = profiles.load_causal_lm("masking_base", PROFILE, DEVICE)
new_ids = add_special_tokens_with_init(
    fixed_model, fixed_tok, [HUMAN, ASSISTANT], init="mean", seed=SEED
)
new_template_ids, new_template_tokens = tokens(ASSISTANT, fixed_tok)
n_rows, width = fixed_model.get_input_embeddings().weight.shape
print(f"New ids {new_ids}: the vocabulary grows from {len(tokenizer):,} to "
      f"{len(fixed_tok):,} tokens, the embedding matrix to {n_rows:,} rows of {width}.")
print("template alone:", new_template_ids, new_template_tokens)
fixed_texts = [example_text(fixed_tok, en, es) for en, es in TRAIN_WORDS.items()]
ids0, toks0 = tokens(fixed_texts[0], fixed_tok)
pd.DataFrame({"token id": ids0, "token": toks0})

# %% [markdown]
# The template is one token now, and it is found in every example. The new label tensors keep
# `<s>`, the answer and `</s>`:

# %%
fixed_rows = []
for row, text in enumerate(fixed_texts):
    ids = tokens(text, fixed_tok)[0]
    labels = mask_before_template(ids, new_template_ids, row)
    fixed_rows.append({"input_ids": ids, "labels": labels})
template_found_after_rows = [
    find_template(r["input_ids"], new_template_ids) >= 0 for r in fixed_rows
]
template_found_after = all(template_found_after_rows)
kept_labels = [[t for t in r["labels"] if t != IGNORE_INDEX] for r in fixed_rows]
pd.DataFrame(
    {"tokens": [len(r["labels"]) for r in fixed_rows],
     "labels -100": [len(r["labels"]) - len(k)
                     for r, k in zip(fixed_rows, kept_labels, strict=True)],
     "labels kept": kept_labels,
     "the loss sees": [fixed_tok.decode(k) for k in kept_labels]},
    index=list(TRAIN_WORDS),
)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("template_found.after", template_found_after)

# %% [markdown]
# ## 3. The cost: new rows must be learned
#
# The new ids have no trained rows yet. Three ways to start them:
#
# - **mean**: the mean of all existing embeddings (by default `resize_token_embeddings` draws new
#   rows from a normal distribution centred on this mean, with the old rows' covariance);
# - **random**: normal noise with the model's init std (`config.initializer_range`), as in a
#   fresh model;
# - **pieces**: the average of the embeddings of the tokens the old tokenizer split the string into.

# %%
show_source(special_tokens._init_rows)

# %% [markdown]
# How do they start? For each init, the first table gives the norm of each new row next to the
# median norm of the old rows, and how similar the two new rows are (cosine). The second shows
# what the untrained model makes of the assistant template's row: the old token it is closest
# to, the token the model predicts right after the template in the five examples, and its loss
# on the answer tokens (`<s>`, the word and `</s>`, averaged over the five) before any training.

# %%
def init_stats(init):
    model, tok = profiles.load_causal_lm("masking_base", PROFILE, DEVICE)
    ids = add_special_tokens_with_init(model, tok, [HUMAN, ASSISTANT], init, seed=SEED)
    w = model.get_input_embeddings().weight.detach()
    old = w[: len(tokenizer)]
    human, assistant = w[ids[0]], w[ids[1]]
    closeness = torch.cosine_similarity(old, assistant[None], dim=1)
    nearest = int(closeness.argmax())
    losses, predicted = [], []
    for en, es in TRAIN_WORDS.items():
        x = tokens(f"{prompt_text(tok, en)} {es}{tok.eos_token}", tok)[0]
        at = x.index(ids[1])  # the position of the assistant template
        with torch.no_grad():
            logits = model(torch.tensor([x], device=model.device)).logits[0].float()
        predicted.append(repr(tok.decode(int(logits[at].argmax()))))
        target = torch.tensor(x[at + 1 :], device=logits.device)
        losses.append(torch.nn.functional.cross_entropy(logits[at:-1], target).item())
    rows = {
        "norm of Human": human.norm().item(),
        "norm of Assistant": assistant.norm().item(),
        "median norm of old rows": old.norm(dim=1).median().item(),
        "cosine(Human, Assistant)": torch.cosine_similarity(human, assistant, 0).item(),
    }
    reading = {
        "closest old token": repr(tok.decode(nearest)),
        "its cosine": f"{closeness[nearest].item():.3f}",
        "predicted after the template": ", ".join(sorted(set(predicted))),
        "loss on the answers": f"{sum(losses) / len(losses):.2f}",
    }
    return rows, reading


stats = {init: init_stats(init) for init in special_tokens.INITS}
pd.DataFrame({init: rows for init, (rows, _) in stats.items()}).T.round(3)

# %%
pd.DataFrame({init: reading for init, (_, reading) in stats.items()}).T

# %% [markdown]
# Bloom ties its input and output embeddings (one matrix), so each new row is also the output
# row that scores the new token as a *prediction*. We train each initialisation the same way:
# a fresh model, a LoRA adapter on `query_key_value`, and the two new rows trainable
# ([section 4](#4-the-same-fix-with-lora-who-trains-the-new-rows) shows why that is needed),
# until the model answers the five examples exactly.

# %%
results = {}
RUN_LABELS = {  # what each run's printed line calls it
    **{f"{init}_init": f"{init} init" for init in special_tokens.INITS},
    "lora_alone_reads": "LoRA alone, reading the template",
    "lora_without_new_rows": "LoRA alone, writing the template",
    "lora": "LoRA + new rows, writing the template",
}


def train(name, init, train_new_rows=True, ends_turn=False, keep_model=False):
    """A fresh model with the templates added (`init` for their rows), LoRA, trained
    until it answers all five.

    `keep_model`: keep the trained model for later sections; the others are freed (a GPU
    holds few copies). `ends_turn`: the answer ends with the human template instead of
    `</s>` (section 4).
    """
    torch.manual_seed(SEED)
    model, tok = profiles.load_causal_lm("masking_base", PROFILE, DEVICE)
    ids = add_special_tokens_with_init(model, tok, [HUMAN, ASSISTANT], init, seed=SEED)
    rows_before = model.get_input_embeddings().weight[ids].detach().clone()
    model = with_lora(model, LORA_R, LORA_TARGETS,
                      trainable_token_indices=ids if train_new_rows else None)
    end = HUMAN if ends_turn else tok.eos_token
    template = tokens(ASSISTANT, tok)[0]
    data = []
    for r, (en, es) in enumerate(TRAIN_WORDS.items()):
        x = tokens(f"{prompt_text(tok, en)} {es}{end}", tok)[0]
        data.append({"input_ids": x, "labels": mask_before_template(x, template, r)})
    answers = [f"{es}{HUMAN}" if ends_turn else es for es in train_answers]
    prompts = [prompt_text(tok, en) for en in TRAIN_WORDS]
    stopper = StopWhenLearned(tok, prompts, answers,
                              end_of_turn=HUMAN if ends_turn else None)
    trainer = Trainer(
        model=model, args=TrainingArguments(output_dir=f"out/{name}", **run_args),
        train_dataset=Dataset.from_list(data),
        data_collator=DataCollatorForSeq2Seq(tok, label_pad_token_id=IGNORE_INDEX),
    )
    learned = train_until_learned(trainer, stopper)
    # the rows the trained model uses (peft adds its trained delta)
    with torch.no_grad():
        new = torch.tensor(ids, device=model.device)
        rows_after = model.get_input_embeddings()(new)
    results[name] = dict(
        epochs_to_learn=learned.epochs_to_learn,
        correct_per_epoch=learned.correct_per_epoch,
        train_correct=learned.final_correct,
        train_runtime_s=learned.train_runtime_s,
        trainable_params=model.get_nb_trainable_parameters()[0],
        new_rows_moved=(rows_after - rows_before).norm().item(),
        losses=learned.losses, tokenizer=tok, new_ids=ids,
        **({"model": model} if keep_model else {}),
    )
    n_epochs = len(learned.correct_per_epoch)
    if learned.epochs_to_learn:
        outcome = f"all five right after {learned.epochs_to_learn} epochs"
    else:
        outcome = f"{learned.final_correct} of 5 right after {n_epochs} epochs"
    print(f"{RUN_LABELS[name]}: {outcome} ({learned.train_runtime_s:.1f}s); the new "
          f"rows moved by {results[name]['new_rows_moved']:.4f}.")


run_args = small_run_args(MAX_EPOCHS, BATCH_SIZE, lr, SEED, DEVICE)
for init in special_tokens.INITS:
    train(f"{init}_init", init)

# %%
plot_learning({f"{i} init": results[f"{i}_init"] for i in special_tokens.INITS})
plt.show()

# %% [markdown]
# The same runs in numbers: the mean training loss over the first five epochs and over
# epochs 11 to 15, and how far the two new rows moved in training.

# %%
def mean_loss(losses, first, last):
    """The mean training loss of the steps in epochs `first` to `last` (from 1)."""
    inside = (losses["epoch"] > first - 1) & (losses["epoch"] <= last)
    return losses.loc[inside, "loss"].mean()


pd.DataFrame.from_dict({
    f"{init} init": {
        "epochs to learn": r["epochs_to_learn"],
        "loss, epochs 1-5": round(mean_loss(r["losses"], 1, 5), 2),
        "loss, epochs 11-15": round(mean_loss(r["losses"], 11, 15), 2),
        "new rows moved": round(r["new_rows_moved"], 4),
    }
    for init, r in ((i, results[f"{i}_init"]) for i in special_tokens.INITS)
}, orient="index")

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
for init in special_tokens.INITS:
    record(f"epochs_to_learn.{init}_init", results[f"{init}_init"]["epochs_to_learn"])

# %% [markdown]
# In this run the mean init learned in 15 epochs, random in 17 and pieces in 28. This is one
# run with one seed: it shows that pieces took longest here, not that it always does, and two
# epochs do not rank mean and random.
#
# Why did pieces take longer? Not because its two rows start alike (cosine 0.981): the two mean
# rows start *identical* (cosine 1.000), and that run was the fastest. Nor because it starts
# further from the answers: before training its loss on them (11.35) lies between mean's (11.10)
# and random's (11.86). What the tables do show:
#
# - the pieces row starts closest to `###` (cosine 0.744), one of its own pieces, and after it
#   the untrained model predicts `###` in all five examples. The mean row starts closest to
#   `ato` (0.977), and after it the model predicts Spanish words; the random row is close to no
#   token (0.223 at most);
# - the pieces loss is the highest of the three over epochs 1-5 (7.57 against 7.05 and 6.62),
#   and over epochs 11-15 it is well above the others (1.66 against 0.97 and 0.98). Mean has
#   learned the task at the end of that window, random two epochs later, pieces 13 epochs later.
#
# Whether starting as a look-alike of `###` is what costs those epochs, this run cannot tell: we
# report the gap and leave the cause open.
#
# ## 4. The same fix with LoRA: who trains the new rows?
#
# LoRA freezes every weight of the base model, the embedding matrix included, and trains small
# adapters beside the attention projections. The new rows then stay exactly what the init made
# them. peft's `trainable_token_indices` trains just those rows (a delta for the listed ids,
# tied to the output embedding as well), at the cost of `2 × hidden_size` parameters here.
#
# ### Reading a frozen token
#
# First, LoRA alone on the task above (mean init):

# %%
train("lora_alone_reads", "mean", train_new_rows=False)

# %% [markdown]
# The rows did not move (0.0000), yet the model learns the task: to *read* the template, the
# model needs only a row that differs from the old tokens' rows, and a frozen mean row does
# (its closest old token has a cosine of 0.977,
# [section 3](#3-the-cost-new-rows-must-be-learned)). The two mean rows are identical (cosine
# 1.000): the human and the assistant template are told apart by where they stand, and the
# answer's start is also marked by `<s>`.
#
# ### Writing a frozen token
#
# A chat model must also *write* the template: in a conversation, the assistant hands the turn
# back by starting the next human turn. Many chat datasets (Anthropic's HH-RLHF among them) have
# no `</s>`: an answer ends where `"\n\n### Human:"` begins, and generation stops there. So we
# now end every answer with the human template instead of `</s>`, count an answer as right only
# when the model writes the word *and then* the template, and train twice: LoRA alone, and LoRA
# with the two new rows trainable.

# %%
train("lora_without_new_rows", "mean", train_new_rows=False, ends_turn=True,
      keep_model=True)
train("lora", "mean", train_new_rows=True, ends_turn=True, keep_model=True)


def wrote(name, en="dog"):
    model, tok = results[name]["model"], results[name]["tokenizer"]
    return repr(generate_answers(model, tok, [prompt_text(tok, en)], 8, HUMAN)[0])


pd.DataFrame({"must write": [repr(f"perro{HUMAN}")] * 2,
              "wrote": [wrote(n) for n in ("lora_without_new_rows", "lora")]},
             index=["LoRA alone", "LoRA + new rows"])

# %% [markdown]
# LoRA alone never writes the template. That is not bad luck, it is arithmetic. Bloom ties its
# output layer to its input embeddings, so the logit of a token is the dot product of the last
# hidden state with that token's row. A mean-initialised row is the average of all old rows, so
# its logit is the *average of all the old tokens' logits*, which is never above the largest:
# a frozen mean row can never be the greedy choice, however the adapters move the hidden state.
# Here are the logits at the position where the template should come, after training:

# %%
def logits_at_turn_end(name, en="dog"):
    model, tok = results[name]["model"], results[name]["tokenizer"]
    ids = results[name]["new_ids"]
    x = tok(f"{prompt_text(tok, en)} {TRAIN_WORDS[en]}", return_tensors="pt",
            add_special_tokens=False).to(model.device)
    with torch.no_grad():
        logits = model(**x).logits[0, -1]
    old = logits[: len(tokenizer)]
    return {"logit of the human template": round(logits[ids[0]].item(), 3),
            "mean of the old logits": round(old.mean().item(), 3),
            "largest old logit": round(old.max().item(), 3),
            "best old token": repr(tok.decode(int(old.argmax())))}


pd.DataFrame.from_dict(
    {name: logits_at_turn_end(n) for name, n in
     [("LoRA alone", "lora_without_new_rows"), ("LoRA + new rows", "lora")]},
    orient="index",
)

# %%
lora = {"LoRA + new rows": results["lora"],
        "LoRA alone": results["lora_without_new_rows"]}
pd.DataFrame.from_dict({
    name: {"trainable parameters": r["trainable_params"],
           "new rows moved": round(r["new_rows_moved"], 4),
           "epochs to learn": r["epochs_to_learn"] or "never",
           "right at the end (of 5)": r["train_correct"]}
    for name, r in lora.items()
}, orient="index")

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
for key in ("lora", "lora_without_new_rows"):
    record(f"{key}.train_correct", results[key]["train_correct"])

# %% [markdown]
# ## What the numbers say
#
# The key numbers of this run (one seed), each printed in a section above:

# %%
init_cos = {i: stats[i][0]["cosine(Human, Assistant)"] for i in special_tokens.INITS}
extra = (results["lora"]["trainable_params"]
         - results["lora_without_new_rows"]["trainable_params"])
summary = {
    "examples holding the template's tokens": f"{sum(found_before)} of 5",
    "labels a silent masker leaves to the loss": f"{seen}",
    "examples holding the special token": f"{sum(template_found_after_rows)} of 5",
    **{f"epochs to learn, {init} init": f"{results[f'{init}_init']['epochs_to_learn']}"
       for init in special_tokens.INITS},
    **{f"cosine of the new rows at the start, {init} init": f"{init_cos[init]:.3f}"
       for init in special_tokens.INITS},
    "LoRA alone: answers ending with the template": (
        f"{results['lora_without_new_rows']['train_correct']} of 5"),
    "LoRA + new rows: answers ending with the template": (
        f"{results['lora']['train_correct']} of 5"),
    "trainable parameters the two rows add": f"{extra:,}",
}
pd.DataFrame({"value": summary})

# %% [markdown]
# - In context the template's own tokens occur in none of the five examples (`?\n\n` is one
#   token), so a template search fails on every row. A silent masker leaves 0 labels to the
#   loss; `find_template` raises and names the row; trl warns and moves the question mark into
#   the completion.
# - As special tokens, both templates are one id each, found in all five examples, and the loss
#   sees exactly `<s>`, the answer and `</s>`.
# - The new rows must be learned. In this run (one seed) the mean init learned in 15 epochs,
#   random in 17 and pieces in 28. The two mean rows start identical (cosine 1.000) and learned
#   fastest, so rows that start alike are not what slowed pieces down. The pieces row starts
#   closest to `###`, after which the untrained model predicts `###`, and its loss stays above
#   the others' (1.66 against 0.97 and 0.98 over epochs 11-15); why, one run does not tell.
# - With LoRA alone, the new rows do not move. Reading a frozen token works; writing one does
#   not: a model that must end its turn with a new token never does (0 of 5), because a frozen
#   mean row's logit is the mean of the old logits, below the largest. With
#   `trainable_token_indices` (256 more trainable parameters here, two rows of 128) the same
#   model ends all five answers with the template. When you add tokens that the model must
#   *generate* (end-of-turn markers, chat-template tokens), train their rows: with
#   `trainable_token_indices`, or with `modules_to_save=["word_embeddings"]` at the cost of the
#   whole matrix.
