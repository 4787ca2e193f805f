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
# You will learn how `-100` labels work, why masking makes learning faster, how to check what a
# model learned with an *iterative generate* view, and how to make a masking function fail
# loudly instead of silently training on nothing.
#
# **On a T4.** On a free Colab T4 (15 GB) the `hub` profile needs about 10 GiB of GPU memory at its
# fullest and about 2 minutes (estimated from the real models' shapes and its `hub` settings by
# `llmtut.t4_plan`; nothing was measured on a GPU). The `tiny` profile runs on a CPU.

# %%
# Colab only: install llmtut, the book's package (it brings transformers, trl, peft, ...).
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "llmtut @ git+https://github.com/llmtut/llmtut"], check=True)

# %%
import inspect

import matplotlib.pyplot as plt
import pandas as pd
import torch
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments
from trl import SFTConfig, SFTTrainer

from llmtut import masking, profiles, translation_task
from llmtut.generation import generate_answers, iterative_generate_view, next_token_accuracy
from llmtut.masking import IGNORE_INDEX, mask_all_but_responses
from llmtut.report import record
from llmtut.training import StopWhenLearned, learn_fresh, plot_learning, small_run_args
from llmtut.translation_task import HOLDOUT, TRAIN_WORDS, example_text, prompt_text

# %% [markdown]
# The next cell holds the chapter's parameters. `PROFILE = "hub"` runs it on
# `bigscience/bloom-560m` as in the source material (Colab); `PROFILE = "tiny"` runs it offline on
# a small Bloom model that `llmtut` pretrains itself on the tiny world's bilingual prose.
# papermill overrides these values (`-p PROFILE tiny`).

# %% tags=["parameters"]
PROFILE = profiles.default_profile()  # "hub" or "tiny"
SEED = 0
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
MAX_EPOCHS = 60  # each method trains until it answers all five examples, at most this long
BATCH_SIZE = 1
LEARNING_RATE = None  # None: the profile's default below
LORA_R = 8

# %%
profiles.check_profile(PROFILE)
lr = LEARNING_RATE or {"tiny": 1e-3, "hub": 3e-4}[PROFILE]
print(f"profile={PROFILE} device={DEVICE} seed={SEED} lr={lr} lora_r={LORA_R}")

# %% [markdown]
# ## The base model
#
# In the `hub` profile this is bloom-560m. In the `tiny` profile it is a 1M-parameter
# `BloomForCausalLM` with a byte-level BPE tokenizer that splits text the way bloom's does. It
# was pretrained on a few thousand short "Spanish lessons" (prose and little dialogues) and never
# saw the `### Human:` / `### Assistant:` chat format this chapter teaches.

# %%
base_model, tokenizer = profiles.load_causal_lm("masking_base", PROFILE, DEVICE)
print(f"{type(base_model).__name__}: {base_model.num_parameters():,} parameters, vocabulary {len(tokenizer):,}")
print(f"bos={tokenizer.bos_token!r} ({tokenizer.bos_token_id}), eos={tokenizer.eos_token!r} "
      f"({tokenizer.eos_token_id}), pad={tokenizer.pad_token!r} ({tokenizer.pad_token_id})")
if PROFILE == "tiny":
    print("tiny world card:", profiles.world_card("masking_base", PROFILE))

# %% [markdown]
# ## The task: five words, one held out
#
# Each example is one exchange. As in the source material, an end-of-sequence token `</s>`
# comes *before* the human turn, and a beginning-of-sequence token `<s>` right after
# `### Assistant:`. That `<s>` is our marker: everything after it, up to the next `</s>`, is the
# answer. "good" is held out: we never train on it, we only ask. Chapters 03 and 04 reuse the task,
# so it lives in `llmtut.translation_task`; this is how it writes a prompt:

# %%
print(inspect.getsource(translation_task.prompt_text))
print("train:", TRAIN_WORDS, "held out:", HOLDOUT)
train_texts = [example_text(tokenizer, en, es) for en, es in TRAIN_WORDS.items()]
train_prompts = [prompt_text(tokenizer, en) for en in TRAIN_WORDS]
train_answers = list(TRAIN_WORDS.values())
print(repr(train_texts[0]))
ids0 = tokenizer(train_texts[0], add_special_tokens=False)["input_ids"]
pd.DataFrame({"token id": ids0, "token": [tokenizer.decode(i) for i in ids0]}).T

# %% [markdown]
# Before any fine-tuning, the base model does not know what to do with this format. Its greedy
# answers to the five training questions and the held-out one:

# %%
before = generate_answers(base_model, tokenizer, train_prompts + [prompt_text(tokenizer, HOLDOUT[0])])
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
print(inspect.getsource(StopWhenLearned))


# %%
def fresh_lora_model():
    return translation_task.fresh_lora_model(lambda: profiles.load_causal_lm("masking_base", PROFILE, DEVICE)[0],
                                             SEED, LORA_R)


common_args = small_run_args(MAX_EPOCHS, BATCH_SIZE, lr, SEED, DEVICE)
results = {}


def run(name, trainer_cls, args, dataset, **trainer_kwargs):
    model, learned = learn_fresh(fresh_lora_model, trainer_cls, args, dataset, tokenizer, train_prompts, train_answers,
                                 **trainer_kwargs)
    holdout = generate_answers(model, tokenizer, [prompt_text(tokenizer, HOLDOUT[0])])[0]
    results[name] = dict(model=model, epochs_to_learn=learned.epochs_to_learn, holdout_answer=holdout,
                         train_runtime_s=learned.train_runtime_s, correct_per_epoch=learned.correct_per_epoch,
                         losses=learned.losses)
    print(f"{name}: learned all five after {learned.epochs_to_learn} epochs in {learned.train_runtime_s:.1f}s; "
          f"holdout {HOLDOUT[0]!r} -> {holdout!r}")


# %% [markdown]
# ## (a) Unmasked: labels = input_ids
#
# The simplest choice: the labels are a copy of the inputs (the model shifts them by one
# internally). The loss is the mean over *every* token, so the five answer tokens share the
# gradient with about twenty prompt tokens each.

# %%
def tokenize(text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


unmasked_ds = Dataset.from_list([{"input_ids": tokenize(t), "labels": tokenize(t)} for t in train_texts])
collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX)  # pads labels with -100
run("unmasked", Trainer, TrainingArguments(output_dir="out/unmasked", **common_args), unmasked_ds,
    data_collator=collator)

# %% [markdown]
# ## (b) Masked by hand: -100 everywhere but the answer
#
# PyTorch's cross-entropy skips every position whose label is `-100`. So we copy the inputs and
# overwrite everything up to and including the `<s>` marker with `-100`, keeping the answer and its
# closing `</s>` (the model must learn to stop). This is `llmtut.masking.mask_all_but_responses`:

# %%
print(inspect.getsource(masking.mask_all_but_responses))

# %%
masked_rows = []
for row, text in enumerate(train_texts):
    ids = tokenize(text)
    masked_rows.append({"input_ids": ids,
                        "labels": mask_all_but_responses(ids, tokenizer.bos_token_id, tokenizer.eos_token_id, row)})
kept = [t for t in masked_rows[0]["labels"] if t != IGNORE_INDEX]
print("labels:", masked_rows[0]["labels"])
print("the loss sees only:", repr(tokenizer.decode(kept)))

# %% [markdown]
# A row without the marker would have every label at `-100`: it would cost a training step and
# teach nothing, silently. The function refuses it and names the row:

# %%
try:
    mask_all_but_responses(tokenize("How do you say dog in Spanish? perro"), tokenizer.bos_token_id,
                           tokenizer.eos_token_id, row=7)
except ValueError as err:
    print("ValueError:", str(err)[:220], "...")

# %%
run("masked", Trainer, TrainingArguments(output_dir="out/masked", **common_args),
    Dataset.from_list(masked_rows), data_collator=collator)

# %% [markdown]
# ## (c) trl's SFTTrainer with `completion_only_loss`
#
# trl does the same masking for us when the dataset has a `prompt` and a `completion` column:
# it tokenizes both, marks the tokens where prompt+completion departs from the prompt alone as
# the completion, and sets every other label to `-100`. (trl removed its older `DataCollatorForCompletionOnlyLM`; this is its
# replacement.) Two of `SFTConfig`'s defaults differ from `TrainingArguments`': it turns on
# gradient checkpointing and bf16 autocast. We switch checkpointing off and take the precision from
# `common_args` (the book's policy, `llmtut.precision`), so that the three runs differ in the masking alone. Let us look at the labels it builds for the first example:

# %%
pc_ds = Dataset.from_list([{"prompt": prompt_text(tokenizer, en), "completion": f" {es}{tokenizer.eos_token}"}
                           for en, es in TRAIN_WORDS.items()])
sft_args = SFTConfig(output_dir="out/completion_only", completion_only_loss=True,
                     gradient_checkpointing=False, **common_args)
probe = SFTTrainer(model=fresh_lora_model(), args=sft_args, train_dataset=pc_ds, processing_class=tokenizer)
first = probe.train_dataset[0]
print("labels:", first["labels"])
print("the loss sees only:", repr(tokenizer.decode([t for t in first["labels"] if t != IGNORE_INDEX])))
del probe

# %%
run("completion_only", SFTTrainer, sft_args, pc_ds, processing_class=tokenizer)

# %% [markdown]
# ## How fast did each method learn?
#
# The curves below are the training loss per step. Mind the scales: the unmasked loss averages
# over prompt *and* answer tokens, so it is not the same quantity as the other two; what we
# compare is the number of epochs until the five answers are right, and the holdout.

# %%
plot_learning(results)
plt.show()

# %% [markdown]
# ## What did each model learn? The iterative generate view
#
# Walk through the held-out example one token at a time and ask each model for its next-token
# prediction (teacher forcing). A ✓ marks a correct guess. Read the columns top to bottom: the
# unmasked model has learned to predict the human prompt itself (`### Human: How do you say ...`),
# a skill we never asked for. The masked models never received a gradient from those positions:
# they do not predict the prompt (their guesses there are no better than the base model's), and
# only know what to do after `<s>`.

# %%
holdout_text = example_text(tokenizer, *HOLDOUT)
base_model.eval()
view = iterative_generate_view(
    {"base": base_model, "unmasked": results["unmasked"]["model"], "masked": results["masked"]["model"],
     "completion_only": results["completion_only"]["model"]},
    tokenizer, holdout_text)
view

# %% [markdown]
# To turn that view into one number, we measure the teacher-forced next-token accuracy on the
# human-turn tokens (`\n\n### Human: How do you say "…" in Spanish?`) of the five training
# examples:

# %%
human_turn = [range(1, len(tokenize(prompt_text(tokenizer, en).split("\n\n### Assistant:")[0]))) for en in TRAIN_WORDS]
train_ids = [tokenize(t) for t in train_texts]
prompt_accuracy = {name: next_token_accuracy(r["model"], train_ids, human_turn) for name, r in results.items()}
prompt_accuracy["base"] = next_token_accuracy(base_model, train_ids, human_turn)
print({k: round(v, 3) for k, v in prompt_accuracy.items()})

# %% [markdown]
# ## Summary

# %%
summary = pd.DataFrame({
    name: {"epochs to learn": r["epochs_to_learn"], f"holdout '{HOLDOUT[0]}'": r["holdout_answer"],
           "train time (s)": round(r["train_runtime_s"], 1), "prompt-token accuracy": round(prompt_accuracy[name], 3)}
    for name, r in results.items()}).T
summary

# %%
for name, r in results.items():
    record(f"{name}.epochs_to_learn", r["epochs_to_learn"])
    record(f"{name}.holdout_answer", r["holdout_answer"])
    record(f"{name}.train_runtime_s", round(r["train_runtime_s"], 2))
for name in ("unmasked", "masked"):
    record(f"{name}.prompt_token_accuracy", round(prompt_accuracy[name], 4))

# %% [markdown]
# What the numbers say (the cells above print them for this run):
#
# - Both masked variants reach five exact answers in fewer epochs than the unmasked model:
#   with the loss concentrated on the answer, every step pushes on what we care about.
#   The source material saw the same with bloom-560m (15 epochs against 30).
# - The hand-written masking and trl's `completion_only_loss` compute the same loss on the same
#   tokens; they differ only in who writes the `-100`s.
# - The held-out word was never trained on; a masked model answers it from what the base model
#   learned in pretraining. Fine-tuning taught the *format*, not the vocabulary.
# - The unmasked model's prompt-token accuracy is far above the masked model's (and the base
#   model's): it spent part of its capacity learning to predict questions a user will always type
#   themselves. The masked model's accuracy on the prompt is no higher than the base model's.
