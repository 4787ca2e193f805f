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
# # Label masking: what should a fine-tuned model learn from?
#
# When we fine-tune a language model on conversations, every training example holds two
# kinds of text: what the *human* wrote and what the *assistant* should answer. The loss can
# be computed on all of it, or only on the answer. This chapter trains the same tiny
# translation task three ways and measures the difference:
#
# 1. **unmasked**: `labels = input_ids`, the model learns to predict every token, prompt included;
# 2. **masked**: we set the labels of the prompt to `-100` by hand, so only the answer counts;
# 3. **completion only**: trl's `SFTTrainer` does the masking for us (`completion_only_loss`).
#
# You will learn how `-100` labels work, how much faster masking makes learning here (over a few
# seeds), how to check what a model learned with an *iterative generate* view, and how to make a
# masking function fail loudly instead of silently training on nothing.
#
# **On a T4.** On a free Colab T4 (15 GB) the `hub` profile needs about 10 GiB of GPU memory at its
# fullest and about 4 minutes (estimated from the real models' shapes and its `hub` settings by
# `llmtut.t4_plan`; nothing was measured on a GPU; it counts ten runs: the three methods, a
# probe that only builds labels, and the methods again on two more seeds). The `tiny` profile
# runs on a CPU.

# %%
# Colab only: install llmtut, the book's package (with transformers, trl, peft, ...).
import subprocess
import sys

if "google.colab" in sys.modules:
    package = "llmtut @ git+https://github.com/llmtut/llmtut"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %%
import os
import warnings

# Every training run here takes seconds: no progress bars (set before tqdm loads).
os.environ["TQDM_DISABLE"] = "1"
warnings.filterwarnings("ignore", message="IProgress not found")
# transformers' notices of names it will rename in its next major version
warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")

import matplotlib.pyplot as plt
import pandas as pd
import torch
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments
from trl import SFTConfig, SFTTrainer

from llmtut import masking, profiles, translation_task
from llmtut.generation import (generate_answers, iterative_generate_view,
                               next_token_accuracy)
from llmtut.masking import IGNORE_INDEX, mask_all_but_responses
from llmtut.page import show_source
from llmtut.report import record
from llmtut.training import StopWhenLearned, learn_fresh, small_run_args
from llmtut.translation_task import HOLDOUT, TRAIN_WORDS, example_text, prompt_text

# %% [markdown]
# The next cell holds the chapter's parameters. `PROFILE = "hub"` runs it on
# `bigscience/bloom-560m` as in the source material (Colab); `PROFILE = "tiny"` runs it offline on
# a small Bloom model that `llmtut` pretrains itself on the tiny world's bilingual prose.
# papermill overrides these values (`-p PROFILE tiny`).

# %% tags=["parameters"]
PROFILE = profiles.default_profile()  # "hub" or "tiny"
SEED = 0
N_SEEDS = 3  # the comparison is repeated on the seeds SEED, SEED + 1, ...
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
MAX_EPOCHS = 60  # each method trains until it answers all five, at most this long
BATCH_SIZE = 1
LEARNING_RATE = None  # None: the profile's default below
LORA_R = 8

# %%
profiles.check_profile(PROFILE)
lr = LEARNING_RATE or {"tiny": 1e-3, "hub": 3e-4}[PROFILE]
print(f"Profile {PROFILE} on {DEVICE}, seed {SEED}, learning rate {lr}, "
      f"LoRA rank {LORA_R}.")

# %% [markdown]
# ## The base model
#
# In the `hub` profile this is bloom-560m. In the `tiny` profile it is a 1M-parameter
# `BloomForCausalLM` with a byte-level BPE tokenizer that splits text the way bloom's does. It
# was pretrained on a few thousand short "Spanish lessons" (prose and little dialogues) and never
# saw the `### Human:` / `### Assistant:` chat format this chapter teaches.

# %%
base_model, tokenizer = profiles.load_causal_lm("masking_base", PROFILE, DEVICE)
print(f"{type(base_model).__name__}: {base_model.num_parameters():,} parameters, "
      f"vocabulary {len(tokenizer):,}")
print(f"bos={tokenizer.bos_token!r} ({tokenizer.bos_token_id}), "
      f"eos={tokenizer.eos_token!r} ({tokenizer.eos_token_id}), "
      f"pad={tokenizer.pad_token!r} ({tokenizer.pad_token_id})")
card = profiles.world_card("masking_base", PROFILE)  # None in the hub profile
if card:
    n_pairs = len(profiles.word_pairs())
    n_known = round(card["translation_accuracy"] * n_pairs)
    print(f"pretrained by llmtut on {card['n_train_tokens']:,} tokens of Spanish "
          "lessons")
    print(f"it completes 'In Spanish, \"dog\" is' with the right word for {n_known} of "
          f"the {n_pairs} words of the tiny world")

# %% [markdown]
# ## The task: five words, one held out
#
# Each example is one exchange. As in the source material, an end-of-sequence token `</s>`
# comes *before* the human turn, and a beginning-of-sequence token `<s>` right after
# `### Assistant:`. That `<s>` is our marker: everything after it, up to the next `</s>`, is the
# answer. "good" is held out: we never train on it, we only ask. Chapters
# [3](03_special_tokens.ipynb) and [4](04_multi_turn.ipynb) reuse the task, so it lives in
# `llmtut.translation_task`; this is how it writes a prompt:

# %%
show_source(translation_task.prompt_text)

# %%
print("train:", TRAIN_WORDS, "held out:", HOLDOUT)
train_texts = [example_text(tokenizer, en, es) for en, es in TRAIN_WORDS.items()]
train_prompts = [prompt_text(tokenizer, en) for en in TRAIN_WORDS]
train_answers = list(TRAIN_WORDS.values())
print(repr(train_texts[0]))
ids0 = tokenizer(train_texts[0], add_special_tokens=False)["input_ids"]
pd.DataFrame({"token id": ids0, "token": [tokenizer.decode(i) for i in ids0]})

# %% [markdown]
# Before any fine-tuning, the base model does not know what to do with this format. Its greedy
# answers to the five training questions and the held-out one:

# %%
holdout_prompt = prompt_text(tokenizer, HOLDOUT[0])
before = generate_answers(base_model, tokenizer, train_prompts + [holdout_prompt])
pd.DataFrame({"word": list(TRAIN_WORDS) + [HOLDOUT[0] + " (holdout)"],
              "expected": train_answers + [HOLDOUT[1]], "base model says": before})

# %% [markdown]
# ## One training harness for the three methods
#
# Each method gets a fresh copy of the base model with a LoRA adapter on the attention
# projections (`query_key_value`), the same optimizer settings and seed, and the same callback:
# after every epoch `StopWhenLearned` answers the five training questions greedily and stops
# training as soon as all five are exact. The number of epochs it took is our measure of
# "how fast did it learn".

# %%
show_source(StopWhenLearned, start="def on_epoch_end", stop="return control")


# %%
def fresh_lora_model(seed: int = SEED):
    def load_base():
        return profiles.load_causal_lm("masking_base", PROFILE, DEVICE)[0]

    return translation_task.fresh_lora_model(load_base, seed, LORA_R)


LABELS = {"unmasked": "unmasked", "masked": "masked",
          "completion_only": "completion only"}
common_args = small_run_args(MAX_EPOCHS, BATCH_SIZE, lr, SEED, DEVICE)
results = {}


def run(name, trainer_cls, args, dataset, **trainer_kwargs):
    model, learned = learn_fresh(fresh_lora_model, trainer_cls, args, dataset,
                                 tokenizer, train_prompts, train_answers,
                                 **trainer_kwargs)
    holdout = generate_answers(model, tokenizer, [holdout_prompt])[0]
    results[name] = dict(model=model, epochs_to_learn=learned.epochs_to_learn,
                         holdout_answer=holdout,
                         train_runtime_s=learned.train_runtime_s,
                         correct_per_epoch=learned.correct_per_epoch,
                         losses=learned.losses)
    print(f"{LABELS[name]}: learned all five after {learned.epochs_to_learn} epochs in "
          f"{learned.train_runtime_s:.1f}s; holdout {HOLDOUT[0]!r} -> {holdout!r}")


# %% [markdown]
# ## (a) Unmasked: labels = input_ids
#
# The simplest choice: the labels are a copy of the inputs (the model shifts them by one
# internally). The loss is the mean over *every* token, so the answer's tokens (for "dog", the
# word and the closing `</s>`, the last two of the seventeen tokens in the table above) share
# the gradient with the whole prompt.

# %%
def tokenize(text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


unmasked_ds = Dataset.from_list([{"input_ids": tokenize(t), "labels": tokenize(t)}
                                 for t in train_texts])
# pads the labels with -100
collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX)
run("unmasked", Trainer, TrainingArguments(output_dir="out/unmasked", **common_args),
    unmasked_ds, data_collator=collator)

# %% [markdown]
# ## (b) Masked by hand: -100 everywhere but the answer
#
# PyTorch's cross-entropy skips every position whose label is `-100`. So we copy the inputs and
# overwrite everything up to and including the `<s>` marker with `-100`, keeping the answer and its
# closing `</s>` (the model must learn to stop). This is the core of
# `llmtut.masking.mask_all_but_responses`:

# %%
show_source(masking.mask_all_but_responses, start="labels = [IGNORE_INDEX]",
            stop="inside = True")

# %%
masked_rows = []
for row, text in enumerate(train_texts):
    ids = tokenize(text)
    labels = mask_all_but_responses(ids, tokenizer.bos_token_id, tokenizer.eos_token_id,
                                    row)
    masked_rows.append({"input_ids": ids, "labels": labels})
kept = [t for t in masked_rows[0]["labels"] if t != IGNORE_INDEX]
print("labels:", masked_rows[0]["labels"])
print("the loss sees only:", repr(tokenizer.decode(kept)))

# %% [markdown]
# A row without the marker would have every label at `-100`: it would cost a training step and
# teach nothing, silently. The function refuses it and names the row:

# %%
try:
    mask_all_but_responses(tokenize("How do you say dog in Spanish? perro"),
                           tokenizer.bos_token_id, tokenizer.eos_token_id, row=7)
except ValueError as err:
    message = str(err).split(" input_ids=")[0]  # the row's token ids follow
    print("ValueError:", message)

# %%
masked_ds = Dataset.from_list(masked_rows)
run("masked", Trainer, TrainingArguments(output_dir="out/masked", **common_args),
    masked_ds, data_collator=collator)

# %% [markdown]
# ## (c) trl's SFTTrainer with `completion_only_loss`
#
# trl does the same masking for us when the dataset has a `prompt` and a `completion` column:
# it tokenizes both, marks the tokens where prompt+completion departs from the prompt alone as
# the completion, and sets every other label to `-100`. (trl removed its older
# `DataCollatorForCompletionOnlyLM`; this is its replacement.) Two of `SFTConfig`'s defaults
# differ from `TrainingArguments`': it turns on activation (gradient) checkpointing and bf16
# autocast. We switch checkpointing off and take the precision from `common_args` (the book's
# policy, `llmtut.precision`), so that the three runs differ in the masking alone. Let us look at
# the labels it builds for the first example:

# %%
pc_ds = Dataset.from_list([{"prompt": prompt_text(tokenizer, en),
                            "completion": f" {es}{tokenizer.eos_token}"}
                           for en, es in TRAIN_WORDS.items()])


def sft_config(args: dict) -> SFTConfig:
    # gradient_checkpointing: the long-standing name, which every transformers accepts
    return SFTConfig(output_dir="out/completion_only", completion_only_loss=True,
                     gradient_checkpointing=False, **args)


probe = SFTTrainer(model=fresh_lora_model(), args=sft_config(common_args),
                   train_dataset=pc_ds, processing_class=tokenizer)
first = probe.train_dataset[0]
print("labels:", first["labels"])
kept = [t for t in first["labels"] if t != IGNORE_INDEX]
print("the loss sees only:", repr(tokenizer.decode(kept)))
del probe

# %%
run("completion_only", SFTTrainer, sft_config(common_args), pc_ds,
    processing_class=tokenizer)

# %% [markdown]
# ## How fast did each method learn?
#
# The left panel is the training loss per step, the right one the training answers right after
# each epoch. Mind the scales: the unmasked loss averages over prompt *and* answer tokens, so it
# is not the same quantity as the other two; what we compare is the number of epochs until the
# five answers are right, and the holdout. The masked and completion-only runs are drawn as a
# wide pale line and a thin dashed one, because they coincide:

# %%
styles = {"unmasked": dict(color="tab:blue", marker="o"),
          "masked": dict(color="tab:orange", linewidth=5, alpha=0.4, marker="s",
                         markersize=9),
          "completion_only": dict(color="black", linestyle="--", linewidth=1,
                                  marker="x")}
fig, (loss_ax, correct_ax) = plt.subplots(1, 2, figsize=(9, 3.4))
for name, r in results.items():
    loss_style = {k: v for k, v in styles[name].items() if not k.startswith("marker")}
    loss_ax.plot(r["losses"]["epoch"], r["losses"]["loss"], label=LABELS[name],
                 **loss_style)
    correct = r["correct_per_epoch"]
    correct_ax.plot(range(1, len(correct) + 1), correct, label=LABELS[name],
                    **styles[name])
loss_ax.set(xlabel="epoch", ylabel="training loss (log scale)", yscale="log",
            title="loss per step")
correct_ax.set(xlabel="epoch", ylabel="training answers exact (of 5)",
               title="answers right after each epoch")
for ax in (loss_ax, correct_ax):
    ax.legend()
fig.tight_layout()
plt.show()
masked_losses = results["masked"]["losses"]["loss"].to_numpy()
completion_losses = results["completion_only"]["losses"]["loss"].to_numpy()
same_length = len(masked_losses) == len(completion_losses)
largest = abs(masked_losses - completion_losses).max() if same_length else float("nan")
same_answers = (results["masked"]["correct_per_epoch"]
                == results["completion_only"]["correct_per_epoch"])
print(f"The masked and completion-only runs logged {len(masked_losses)} and "
      f"{len(completion_losses)} losses, which differ by at most {largest:.1e}. Their "
      f"answers right after each epoch are "
      f"{'the same' if same_answers else 'not the same'}.")

# %% [markdown]
# The two masked runs are, for all purposes, the same run: their logged losses differ by at most
# the tiny amount printed (floating-point noise), and they get the same answers right after every
# epoch.
#
# ## What did each model learn? The iterative generate view
#
# Walk through the held-out example one token at a time and ask each model for its next-token
# prediction (teacher forcing). A ✓ marks a correct guess. Read the columns top to bottom. Over
# the prompt (rows 0 to 13) the unmasked model guesses 9 of the 14 tokens, the base model 4 and
# the masked models 1: the unmasked model has learned to predict much of the prompt
# (`you say`, `?\n\n`, the `<s>` after `### Assistant:`, all missed by the base model), a skill
# we never asked for. The masked models never received a gradient from those positions and
# guess fewer of them than the base model; they only know what to do after `<s>`, where all
# three fine-tuned models get `bueno` and `</s>` right.

# %%
holdout_text = example_text(tokenizer, *HOLDOUT)
base_model.eval()
view = iterative_generate_view(
    {"base": base_model, **{LABELS[name]: r["model"] for name, r in results.items()}},
    tokenizer, holdout_text)
view

# %% [markdown]
# To turn that view into one number, we measure the teacher-forced next-token accuracy on the
# human-turn tokens (`\n\n### Human: How do you say "…" in Spanish?`) of the five training
# examples:

# %%
def human_turn_positions(en: str) -> range:
    human = prompt_text(tokenizer, en).split("\n\n### Assistant:")[0]
    return range(1, len(tokenize(human)))


human_turn = [human_turn_positions(en) for en in TRAIN_WORDS]
train_ids = [tokenize(t) for t in train_texts]
n_positions = sum(len(r) for r in human_turn)
prompt_accuracy = {name: next_token_accuracy(r["model"], train_ids, human_turn)
                   for name, r in results.items()}
prompt_accuracy["base"] = next_token_accuracy(base_model, train_ids, human_turn)
pd.DataFrame({
    "right guesses": {LABELS.get(k, k): round(v * n_positions)
                      for k, v in prompt_accuracy.items()},
    "of": n_positions,
    "accuracy": {LABELS.get(k, k): round(v, 3) for k, v in prompt_accuracy.items()}})

# %% [markdown]
# ## Is it the seed?
#
# Everything above is one run per method, on the seed `SEED`. The seed draws the LoRA adapter's
# starting weights and the order of the five examples in each epoch, and a few epochs more or
# less could be luck. So we train the three methods again on other seeds (`N_SEEDS` in all),
# with everything else unchanged:

# %%
def compare(seed: int) -> dict:
    """Epochs to learn, holdout answer and prompt-token accuracy of each method."""
    args = small_run_args(MAX_EPOCHS, BATCH_SIZE, lr, seed, DEVICE)
    setups = {
        "unmasked": (Trainer, TrainingArguments(output_dir="out/unmasked", **args),
                     unmasked_ds, {"data_collator": collator}),
        "masked": (Trainer, TrainingArguments(output_dir="out/masked", **args),
                   masked_ds, {"data_collator": collator}),
        "completion_only": (SFTTrainer, sft_config(args), pc_ds,
                            {"processing_class": tokenizer}),
    }
    found = {}
    for name, (trainer_cls, trainer_args, dataset, kwargs) in setups.items():
        model, learned = learn_fresh(lambda: fresh_lora_model(seed), trainer_cls,
                                     trainer_args, dataset, tokenizer, train_prompts,
                                     train_answers, **kwargs)
        found[name] = dict(
            epochs=learned.epochs_to_learn,
            holdout=generate_answers(model, tokenizer, [holdout_prompt])[0],
            accuracy=next_token_accuracy(model, train_ids, human_turn))
        del model, learned  # keep no more models in memory than the runs above
    return found


by_seed = {SEED: {name: dict(epochs=r["epochs_to_learn"], holdout=r["holdout_answer"],
                             accuracy=prompt_accuracy[name])
                  for name, r in results.items()}}
for seed in range(SEED + 1, SEED + N_SEEDS):
    by_seed[seed] = compare(seed)


def epochs_text(epochs: int | None) -> str:
    return f">{MAX_EPOCHS}" if epochs is None else str(epochs)


def epochs_value(epochs: int | None) -> int:
    return MAX_EPOCHS + 1 if epochs is None else epochs  # never learned: after the last


spread = pd.DataFrame({
    f"seed {seed}": {LABELS[name]: epochs_text(found[name]["epochs"])
                     for name in LABELS}
    for seed, found in by_seed.items()})
epochs_of = {name: [epochs_value(by_seed[s][name]["epochs"]) for s in by_seed]
             for name in LABELS}
spread["min-max"] = [f"{min(v)}-{max(v)}" for v in epochs_of.values()]
holdout_right = {name: sum(by_seed[s][name]["holdout"] == HOLDOUT[1] for s in by_seed)
                 for name in LABELS}
spread["holdout right"] = [f"{n} of {len(by_seed)}" for n in holdout_right.values()]
accuracies = {name: [by_seed[s][name]["accuracy"] for s in by_seed] for name in LABELS}
spread["prompt-token accuracy, min-max"] = [f"{min(v):.3f}-{max(v):.3f}"
                                            for v in accuracies.values()]
faster = sum(epochs_of[m][i] < epochs_of["unmasked"][i]
             for i in range(len(by_seed)) for m in ("masked", "completion_only"))
print(f"epochs to learn all five, per seed; a masked method learned faster than the "
      f"unmasked one in {faster} of {2 * len(by_seed)} comparisons")
spread

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
for name, epochs in epochs_of.items():
    record(f"{name}.epochs_to_learn_min", min(epochs))
    record(f"{name}.epochs_to_learn_max", max(epochs))
record("seeds.n", len(by_seed))
record("seeds.masked_faster_comparisons", faster)
for name, r in results.items():
    record(f"{name}.epochs_to_learn", r["epochs_to_learn"])
    record(f"{name}.holdout_answer", r["holdout_answer"])
    record(f"{name}.train_runtime_s", round(r["train_runtime_s"], 2))
for name in ("unmasked", "masked"):
    record(f"{name}.prompt_token_accuracy", round(prompt_accuracy[name], 4))

# %% [markdown]
# On every seed both masked methods learn the five answers in fewer epochs than the unmasked
# model, and the ranges do not overlap. Three seeds are few, but the gap holds on each of them.
# The hand-written and the trl masking take the same number of epochs on each seed.
#
# ## What the numbers say

# %%
def summary_column(name: str) -> dict:
    r = results[name]
    return {
        f"epochs to learn, seed {SEED}": epochs_text(r["epochs_to_learn"]),
        f"epochs to learn, {len(by_seed)} seeds (min-max)":
            spread.loc[LABELS[name], "min-max"],
        f"holdout '{HOLDOUT[0]}', seed {SEED}": r["holdout_answer"],
        f"holdout right, {len(by_seed)} seeds":
            spread.loc[LABELS[name], "holdout right"],
        f"prompt-token accuracy, seed {SEED}": f"{prompt_accuracy[name]:.3f}",
    }


summary = pd.DataFrame({LABELS[name]: summary_column(name) for name in results})
summary["base model"] = ""  # only its prompt-token accuracy applies
summary.loc[f"prompt-token accuracy, seed {SEED}", "base model"] = (
    f"{prompt_accuracy['base']:.3f}")
summary

# %% [markdown]
# - Both masked variants reach five exact answers in fewer epochs than the unmasked model, on
#   each of the three seeds (13-16 epochs against 20-26): with the loss concentrated on the
#   answer, every step pushes on what we care about. The source material reports the same with
#   bloom-560m (15 epochs against 30; not rerun here).
# - The hand-written masking and trl's `completion_only_loss` compute the same loss on the same
#   tokens; they differ only in who writes the `-100`s. Their losses coincide on seed 0, and
#   they take the same number of epochs on every seed.
# - The held-out word was never trained on, yet every fine-tuned model answers "bueno" on every
#   seed. The answer comes from pretraining: the base model completes all 191 word pairs of the
#   tiny world (printed under [the base model](#the-base-model), at the top). Fine-tuning taught
#   the *format*, not the vocabulary.
# - On seed 0 the unmasked model predicts 35 of the 55 human-turn tokens, the masked model 5 and
#   the base model 15: part of the unmasked model's training went into predicting questions a
#   user will always type themselves. The masked models' accuracy on the prompt stays below the
#   base model's on every seed (at most 0.109 against 0.273).
