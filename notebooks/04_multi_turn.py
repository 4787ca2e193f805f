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
# # Multi-turn conversations: masking every turn that is not the assistant's
#
# Chapter 02 trained on single exchanges: one question, one answer. Real chat data holds
# *conversations*: a human asks, the assistant answers, the human asks again, and so on. When we
# train on such a conversation the loss should see every assistant answer and nothing else.
# This chapter does it two ways and checks that they agree token for token:
#
# 1. **by hand**: concatenate the turns and set every non-assistant label to `-100`;
# 2. **with a chat template**: a Jinja template that renders a list of messages into the same
#    text and marks the assistant's tokens with `{% generation %}`, so that
#    `apply_chat_template(..., return_assistant_tokens_mask=True)` and trl's
#    `SFTTrainer(assistant_only_loss=True)` do the masking.
#
# You will learn how a chat template is written, why its `{% generation %}` markers matter (and
# what happens silently without them), and how to check that a model answers a question asked
# *after* a first exchange, not only a question asked on its own.
#
# **On a T4.** On a free Colab T4 (15 GB) the `hub` profile needs about 8 GiB of GPU memory at its
# fullest and about 1 minutes (estimated from the real models' shapes and its `hub` settings by
# `llmtut.t4_plan`; nothing was measured on a GPU). The `tiny` profile runs on a CPU.

# %%
# Colab only: install llmtut, the book's package (it brings transformers, trl, peft, ...).
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "llmtut @ git+https://github.com/llmtut/llmtut"], check=True)

# %%
import inspect
import random

import matplotlib.pyplot as plt
import pandas as pd
import torch
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments
from trl import SFTConfig, SFTTrainer

from llmtut import chat_template, profiles, translation_task
from llmtut.chat_template import assistant_mask, set_chat_template
from llmtut.generation import generate_answers
from llmtut.masking import IGNORE_INDEX, mask_all_but_responses
from llmtut.report import record
from llmtut.formats import chat_turn
from llmtut.training import learn_fresh, plot_learning, small_run_args
from llmtut.translation_task import HOLDOUT, TRAIN_WORDS, question

# %% [markdown]
# The next cell holds the chapter's parameters. `PROFILE = "hub"` runs it on
# `bigscience/bloom-560m` as in the source material (Colab); `PROFILE = "tiny"` runs it offline on
# the small Bloom model of chapter 02. papermill overrides these values (`-p PROFILE tiny`).

# %% tags=["parameters"]
PROFILE = profiles.default_profile()  # "hub" or "tiny"
SEED = 0
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
MAX_EPOCHS = 60  # each method trains until it answers all five training turns, at most this long
BATCH_SIZE = 1
LEARNING_RATE = None  # None: the profile's default below
LORA_R = 8
N_SECOND_TURN = 12  # conversations in the second-turn evaluation

# %%
profiles.check_profile(PROFILE)
lr = LEARNING_RATE or {"tiny": 1e-3, "hub": 3e-4}[PROFILE]
print(f"profile={PROFILE} device={DEVICE} seed={SEED} lr={lr} lora_r={LORA_R}")

# %% [markdown]
# ## The base model
#
# The same base as chapter 02: bloom-560m in the `hub` profile, a 1M-parameter `BloomForCausalLM`
# in the `tiny` one. It knows the translations from pretraining prose but has never seen the
# `### Human:` / `### Assistant:` format, and its tokenizer has no chat template.

# %%
base_model, tokenizer = profiles.load_causal_lm("masking_base", PROFILE, DEVICE)
print(f"{type(base_model).__name__}: {base_model.num_parameters():,} parameters")
print(f"bos={tokenizer.bos_token!r} ({tokenizer.bos_token_id}), eos={tokenizer.eos_token!r} "
      f"({tokenizer.eos_token_id}), chat template: {tokenizer.chat_template!r}")

# %% [markdown]
# ## Five exchanges, three conversations
#
# As in the source material, the five training words of chapter 02 are grouped into
# conversations: (water, dog), (mother, hello) and (tree). Each exchange is written by
# `llmtut.formats.chat_turn`: an end-of-sequence `</s>` before the human turn, a `<s>` after
# `### Assistant:`. Concatenated, the `</s>` that opens the next human turn is also the one that
# closes the previous answer; a final `</s>` closes the last answer. "good" stays held out.

# %%
WORD_PAIRS = profiles.word_pairs()  # the words' translations, for the questions beyond the five
CONVERSATIONS = [("water", "dog"), ("mother", "hello"), ("tree",)]


def conversation_text(words) -> str:
    bos, eos = tokenizer.bos_token, tokenizer.eos_token
    return "".join(chat_turn(question(en), WORD_PAIRS[en], bos, eos) for en in words) + eos


def tokenize(text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


train_texts = [conversation_text(words) for words in CONVERSATIONS]
print(train_texts[0])

# %% [markdown]
# ## Masking by hand
#
# `mask_all_but_responses` from chapter 02 already handles several answers in one example: it
# keeps the tokens after *each* `<s>` up to and including the next `</s>`. Decoding the tokens it
# keeps shows exactly what the loss will see: the answers and the `</s>` that ends each of them,
# none of the human turns, no `### Assistant:`.

# %%
manual_rows = []
for row, text in enumerate(train_texts):
    ids = tokenize(text)
    manual_rows.append({"input_ids": ids,
                        "labels": mask_all_but_responses(ids, tokenizer.bos_token_id, tokenizer.eos_token_id, row)})
pd.DataFrame({
    "conversation": [" + ".join(words) for words in CONVERSATIONS],
    "tokens": [len(r["input_ids"]) for r in manual_rows],
    "tokens in the loss": [sum(label != IGNORE_INDEX for label in r["labels"]) for r in manual_rows],
    "the loss sees only": [repr(tokenizer.decode([t for t in r["labels"] if t != IGNORE_INDEX])) for r in manual_rows],
})

# %% [markdown]
# ## A chat template for the tiny format
#
# A chat template is a Jinja program stored on the tokenizer. `apply_chat_template` runs it on a
# list of `{"role": ..., "content": ...}` messages and gets the text the model is trained on. Ours
# reproduces the hand-built format exactly; two parts of it matter for training:
#
# - the assistant's content **and its closing `</s>`** sit between `{% generation %}` and
#   `{% endgeneration %}`: transformers records the characters rendered there, and
#   `return_assistant_tokens_mask=True` turns them into a 0/1 mask over the tokens;
# - `add_generation_prompt` appends `### Assistant:<s>`, the prompt for the model to answer.

# %%
print(chat_template.CHAT_TEMPLATE.replace("{%-", "\n{%-").replace("{{", "\n{{"))

# %%
_ = set_chat_template(tokenizer)


def to_messages(words):
    msgs = []
    for en in words:
        msgs += [{"role": "user", "content": question(en)}, {"role": "assistant", "content": WORD_PAIRS[en]}]
    return msgs


train_messages = [to_messages(words) for words in CONVERSATIONS]
rendered = [tokenizer.apply_chat_template(m, tokenize=False) for m in train_messages]
print("template text == hand-built text:", [r == t for r, t in zip(rendered, train_texts, strict=True)])
print(repr(tokenizer.apply_chat_template(train_messages[0][:1], tokenize=False, add_generation_prompt=True)))

# %% [markdown]
# `llmtut.chat_template.assistant_mask` asks transformers for the mask. Token by token, for the
# first conversation, the manual labels and the template's mask side by side (a ✓ is a token the
# loss sees):

# %%
print(inspect.getsource(assistant_mask))

# %%
template_rows = [assistant_mask(tokenizer, m, row) for row, m in enumerate(train_messages)]
ids0 = template_rows[0]["input_ids"]
pd.DataFrame({"token": [tokenizer.decode(i) for i in ids0],
              "manual": ["✓" if lab != IGNORE_INDEX else "" for lab in manual_rows[0]["labels"]],
              "template": ["✓" if m else "" for m in template_rows[0]["assistant_masks"]]}).T

# %% [markdown]
# The two masks must be equal on every example: same token ids, and 1 in the template's mask
# exactly where the manual labels are not `-100`.

# %%
agree = [t["input_ids"] == m["input_ids"]
         and t["assistant_masks"] == [int(lab != IGNORE_INDEX) for lab in m["labels"]]
         for t, m in zip(template_rows, manual_rows, strict=True)]
print("masks equal per example:", agree)
mask_agreement = record("mask_agreement", sum(agree) / len(agree))

# %% [markdown]
# ### Without the markers, the mask is silently empty
#
# Take the same template and delete the two markers. It renders the same text, and transformers
# returns a mask anyway: it logs a warning (easy to miss in a long training log) and hands back
# all zeros. Training on that mask would compute the loss on nothing. (trl's `SFTTrainer` refuses
# such a dataset; a hand-written loop would not.)

# %%
no_markers = chat_template.CHAT_TEMPLATE.replace("{%- generation -%}", "").replace("{%- endgeneration -%}", "")
silent = tokenizer.apply_chat_template(train_messages[0], chat_template=no_markers, tokenize=True,
                                       return_dict=True, return_assistant_tokens_mask=True)
print("tokens:", len(silent["input_ids"]), " ones in the mask:", sum(silent["assistant_masks"]))

# %% [markdown]
# `assistant_mask` checks the template first and says what to change:

# %%
set_chat_template(tokenizer, no_markers)
try:
    assistant_mask(tokenizer, train_messages[0], row=0)
except ValueError as err:
    print("ValueError:", err)
_ = set_chat_template(tokenizer)  # back to the template with markers


# %% [markdown]
# ## Training, twice
#
# The harness of chapter 02: a fresh LoRA model per method, the same seed and optimizer, and a
# `StopWhenLearned` callback that stops as soon as all five training answers are exact. Here the
# five questions are asked *in their conversation*: "dog" is asked after the water exchange, so
# the prompt is the conversation up to the second `### Assistant:<s>`. The template's
# `add_generation_prompt` builds these prompts.

# %%
def prompt_for(history_words, en):
    """The conversation `history_words` (answered correctly), then the question for `en`."""
    msgs = to_messages(history_words) + [{"role": "user", "content": question(en)}]
    return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


train_prompts, train_answers = [], []
for words in CONVERSATIONS:
    for k, en in enumerate(words):
        train_prompts.append(prompt_for(words[:k], en))
        train_answers.append(WORD_PAIRS[en])
print(len(train_prompts), "training prompts; the second one:")
print(train_prompts[1])


# %%
def fresh_lora_model():
    return translation_task.fresh_lora_model(lambda: profiles.load_causal_lm("masking_base", PROFILE, DEVICE)[0],
                                             SEED, LORA_R)


common_args = small_run_args(MAX_EPOCHS, BATCH_SIZE, lr, SEED, DEVICE)
results = {}


def run(name, trainer_cls, args, dataset, **trainer_kwargs):
    model, learned = learn_fresh(fresh_lora_model, trainer_cls, args, dataset, tokenizer, train_prompts, train_answers,
                                 **trainer_kwargs)
    train_correct = sum(g == a for g, a in zip(generate_answers(model, tokenizer, train_prompts), train_answers,
                                               strict=True))
    results[name] = dict(model=model, epochs_to_learn=learned.epochs_to_learn, train_correct=train_correct,
                         train_runtime_s=learned.train_runtime_s, correct_per_epoch=learned.correct_per_epoch,
                         losses=learned.losses)
    print(f"{name}: {train_correct}/5 training answers exact after {len(learned.correct_per_epoch)} epochs "
          f"({learned.train_runtime_s:.1f}s)")


# %% [markdown]
# ### (a) With the manual masks
#
# The rows built above (`input_ids`, `labels`) go to a plain `Trainer`.

# %%
collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX)
run("manual", Trainer, TrainingArguments(output_dir="out/manual", **common_args), Dataset.from_list(manual_rows),
    data_collator=collator)

# %% [markdown]
# ### (b) With trl's `assistant_only_loss`
#
# Now the dataset is just the messages. `SFTTrainer` applies the tokenizer's chat template with
# `return_assistant_tokens_mask=True` and builds a `labels` column with `-100` outside the mask. (As in
# chapter 02 we switch off `SFTConfig`'s gradient checkpointing and take the precision from `common_args`, so that the two
# runs differ in who builds the masks alone.) The labels it builds for the first conversation:

# %%
messages_ds = Dataset.from_list([{"messages": m} for m in train_messages])
sft_args = SFTConfig(output_dir="out/assistant_only", assistant_only_loss=True,
                     gradient_checkpointing=False, **common_args)
probe = SFTTrainer(model=fresh_lora_model(), args=sft_args, train_dataset=messages_ds, processing_class=tokenizer)
first = probe.train_dataset[0]
print("trl's tokens == manual tokens:", first["input_ids"] == manual_rows[0]["input_ids"])
print("trl's labels == manual labels:", first["labels"] == manual_rows[0]["labels"])
print("the loss sees only:", repr(tokenizer.decode([t for t in first["labels"] if t != IGNORE_INDEX])))
del probe

# %%
run("assistant_only", SFTTrainer, sft_args, messages_ds, processing_class=tokenizer)

# %% [markdown]
# Training answers exact after each epoch, and the loss per step:

# %%
plot_learning(results)
plt.show()

# %%
for name, r in results.items():
    record(f"{name}.train_correct", r["train_correct"])

# %% [markdown]
# ## Evaluation: single questions and second turns
#
# First, every training word and the holdout asked on its own, as a one-exchange conversation:

# %%
single_words = list(TRAIN_WORDS) + [HOLDOUT[0]]
single_prompts = [prompt_for([], en) for en in single_words]
single = pd.DataFrame({"word": single_words, "expected": [WORD_PAIRS[en] for en in single_words]})
for name, r in results.items():
    single[name] = generate_answers(r["model"], tokenizer, single_prompts)
single

# %% [markdown]
# Now the case multi-turn training is for: a question asked *after* a first exchange. We build
# `N_SECOND_TURN` conversations. The second word cycles through the five training words and the
# holdout "good"; the first word is drawn at random (seeded) from the whole word list of about
# 190 words, so most first exchanges were never seen in training. The first exchange is given
# with its correct answer; the model must answer the second question.

# %%
rng = random.Random(SEED)
second_words = [(list(TRAIN_WORDS) + [HOLDOUT[0]])[i % 6] for i in range(N_SECOND_TURN)]
first_words = [rng.choice(sorted(set(WORD_PAIRS) - {en})) for en in second_words]
second_prompts = [prompt_for([a], b) for a, b in zip(first_words, second_words, strict=True)]
second = pd.DataFrame({"first exchange": [f"{a} -> {WORD_PAIRS[a]}" for a in first_words],
                       "second question": second_words,
                       "expected": [WORD_PAIRS[b] for b in second_words]})
for name, r in results.items():
    second[name] = generate_answers(r["model"], tokenizer, second_prompts)
second

# %%
second_turn = {name: float((second[name] == second["expected"]).mean()) for name in results}
holdout_second = {name: float((second[name] == second["expected"])[second["second question"] == HOLDOUT[0]].mean())
                  for name in results}
print("second-turn questions answered exactly:", second_turn)
print(f"of which the holdout {HOLDOUT[0]!r}:", holdout_second)
for name in results:
    record(f"{name}.second_turn_correct", round(second_turn[name], 4))
second_turn_correct = record("second_turn.correct", round(min(second_turn.values()), 4))  # the weaker method

# %% [markdown]
# Which second questions were missed? For each miss, the table also says where the word stood in
# the training conversations: a word the model only ever answered as the *first* question has
# been trained in one context only.

# %%
first_in_training = {words[0] for words in CONVERSATIONS}
misses = second.melt(id_vars=["first exchange", "second question", "expected"], value_vars=list(results),
                     var_name="method", value_name="answer")
misses = misses[misses["answer"] != misses["expected"]].assign(
    **{"trained as": lambda d: d["second question"].map(
        lambda en: "holdout" if en == HOLDOUT[0] else ("first turn" if en in first_in_training else "second turn"))})
print(f"{len(misses)} misses over {len(second)} conversations x {len(results)} methods")
misses

# %% [markdown]
# ## Summary

# %%
pd.DataFrame({name: {"training answers exact (of 5)": r["train_correct"], "epochs": len(r["correct_per_epoch"]),
                     "train time (s)": round(r["train_runtime_s"], 1),
                     f"holdout '{HOLDOUT[0]}' alone": single.loc[single["word"] == HOLDOUT[0], name].item(),
                     "second turns exact": second_turn[name]}
              for name, r in results.items()}).T

# %% [markdown]
# What the numbers say (the cells above print them for this run):
#
# - In a multi-turn example every assistant answer is trained on, and only those: the decoded
#   unmasked text of a conversation is just its answers, each with the `</s>` that ends it.
# - The chat template with `{% generation %}` markers renders the same text as the hand-built
#   concatenation, and its assistant mask equals the manual mask on every example
#   (`mask_agreement`). Without the markers the mask is all zeros, silently, which is why
#   `assistant_mask` raises an error instead.
# - Trained on the manual masks or with trl's `assistant_only_loss`, the model learns all five
#   training answers, with the same number of epochs: the two runs differ only in who builds the
#   `-100`s, and trl's labels are the manual ones token for token.
# - The second-turn table shows the model answering a question asked after an exchange it never
#   saw, the held-out word included. `second_turn.correct` records the weaker of the two methods.
#   The misses table shows what is left: a word trained only as the opening question of a
#   conversation is not always answered when it comes second. Multi-turn data teaches answers in
#   the contexts it contains; to cover a position, put examples there.
