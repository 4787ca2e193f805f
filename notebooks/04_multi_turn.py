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
# [Chapter 2](02_label_masking.ipynb) trained on single exchanges: one question, one answer. Real
# chat data holds *conversations*: a human asks, the assistant answers, the human asks again, and
# so on. When we train on such a conversation the loss should see every assistant answer and
# nothing else. This chapter does it two ways and checks that they agree token for token:
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
# **On a T4.** On a free Colab T4 (15 GB) the `hub` profile needs about 12 GiB of GPU memory at its
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
import os
import random
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

from llmtut import chat_template, profiles, translation_task
from llmtut.chat_template import assistant_mask, set_chat_template
from llmtut.formats import chat_turn
from llmtut.generation import generate_answers
from llmtut.masking import IGNORE_INDEX, mask_all_but_responses
from llmtut.page import show_source
from llmtut.report import record
from llmtut.training import learn_fresh, plot_learning, small_run_args
from llmtut.translation_task import HOLDOUT, TRAIN_WORDS, question

transformers.logging.disable_progress_bar()  # no bar each time a model loads
datasets.disable_progress_bars()  # nor each time trl prepares a data set

# %% [markdown]
# The next cell holds the chapter's parameters. `PROFILE = "hub"` runs it on
# `bigscience/bloom-560m` as in the source material (Colab); `PROFILE = "tiny"` runs it offline on
# the small Bloom model of [chapter 2](02_label_masking.ipynb). papermill overrides these values
# (`-p PROFILE tiny`).

# %% tags=["parameters"]
PROFILE = profiles.default_profile()  # "hub" or "tiny"
SEED = 0
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
MAX_EPOCHS = 60  # each method trains until it answers all five turns, at most this long
BATCH_SIZE = 1
LEARNING_RATE = None  # None: the profile's default below
LORA_R = 8
N_SECOND_TURN = 12  # conversations in the second-turn evaluation
N_FIRST_WORDS = 20  # first exchanges per second word in the larger second-turn count
N_SEEDS = 4  # the comparison is repeated with the seeds SEED, SEED + 1, ...

# %%
profiles.check_profile(PROFILE)
lr = LEARNING_RATE or {"tiny": 1e-3, "hub": 3e-4}[PROFILE]
print(f"Profile {PROFILE} on {DEVICE}, seed {SEED}, learning rate {lr}, "
      f"LoRA rank {LORA_R}.")

# %% [markdown]
# ## The base model
#
# The same base as [chapter 2](02_label_masking.ipynb): bloom-560m in the `hub` profile, a
# 1M-parameter `BloomForCausalLM` in the `tiny` one. It knows the translations from pretraining
# prose but has never seen the `### Human:` / `### Assistant:` format, and its tokenizer has no
# chat template.

# %%
base_model, tokenizer = profiles.load_causal_lm("masking_base", PROFILE, DEVICE)
print(f"{type(base_model).__name__}: {base_model.num_parameters():,} parameters")
print(f"bos token {tokenizer.bos_token!r} (id {tokenizer.bos_token_id}), eos token "
      f"{tokenizer.eos_token!r} (id {tokenizer.eos_token_id}), chat template: "
      f"{'none' if tokenizer.chat_template is None else 'set'}")

# %% [markdown]
# ## Five exchanges, three conversations
#
# As in the source material, the five training words of [chapter 2](02_label_masking.ipynb) are
# grouped into conversations: (water, dog), (mother, hello) and (tree). Each exchange is written
# by `llmtut.formats.chat_turn`: an end-of-sequence `</s>` before the human turn, a `<s>` after
# `### Assistant:`. Concatenated, the `</s>` that opens the next human turn is also the one that
# closes the previous answer; a final `</s>` closes the last answer. "good" stays held out.

# %%
WORD_PAIRS = profiles.word_pairs()  # the translations, for questions beyond the five
CONVERSATIONS = [("water", "dog"), ("mother", "hello"), ("tree",)]


def conversation_text(words) -> str:
    bos, eos = tokenizer.bos_token, tokenizer.eos_token
    turns = [chat_turn(question(en), WORD_PAIRS[en], bos, eos) for en in words]
    return "".join(turns) + eos


def tokenize(text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


train_texts = [conversation_text(words) for words in CONVERSATIONS]
print(train_texts[0])

# %% [markdown]
# ## Masking by hand
#
# `mask_all_but_responses` from [chapter 2](02_label_masking.ipynb) already handles several
# answers in one example: it keeps the tokens after *each* `<s>` up to and including the next
# `</s>`. Decoding the tokens it keeps shows exactly what the loss will see: the answers and the
# `</s>` that ends each of them, none of the human turns, no `### Assistant:`.

# %%
manual_rows = []
for row, text in enumerate(train_texts):
    ids = tokenize(text)
    labels = mask_all_but_responses(ids, tokenizer.bos_token_id, tokenizer.eos_token_id,
                                    row)
    manual_rows.append({"input_ids": ids, "labels": labels})


def kept(labels):
    return [t for t in labels if t != IGNORE_INDEX]


pd.DataFrame({
    "conversation": [" + ".join(words) for words in CONVERSATIONS],
    "tokens": [len(r["input_ids"]) for r in manual_rows],
    "tokens in the loss": [len(kept(r["labels"])) for r in manual_rows],
    "the loss sees only": [repr(tokenizer.decode(kept(r["labels"])))
                           for r in manual_rows],
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
        msgs += [{"role": "user", "content": question(en)},
                 {"role": "assistant", "content": WORD_PAIRS[en]}]
    return msgs


train_messages = [to_messages(words) for words in CONVERSATIONS]
rendered = [tokenizer.apply_chat_template(m, tokenize=False) for m in train_messages]
same_text = sum(r == t for r, t in zip(rendered, train_texts, strict=True))
print(f"The template renders the hand-built text of {same_text} of "
      f"{len(train_texts)} conversations.")
first_prompt = tokenizer.apply_chat_template(train_messages[0][:1], tokenize=False,
                                             add_generation_prompt=True)
print("The first question with the generation prompt:", repr(first_prompt))

# %% [markdown]
# `llmtut.chat_template.assistant_mask` asks transformers for the mask, after checking that the
# template has the markers:

# %%
show_source(assistant_mask, docstring=False)

# %% [markdown]
# Token by token, for the first conversation, the manual labels and the template's mask side by
# side (a ✓ is a token the loss sees):

# %%
template_rows = [assistant_mask(tokenizer, m, row)
                 for row, m in enumerate(train_messages)]
ids0 = template_rows[0]["input_ids"]
pd.DataFrame({
    "token": [repr(tokenizer.decode(i)) for i in ids0],
    "manual labels": ["✓" if lab != IGNORE_INDEX else ""
                      for lab in manual_rows[0]["labels"]],
    "template mask": ["✓" if m else "" for m in template_rows[0]["assistant_masks"]],
})

# %% [markdown]
# The two masks must be equal on every example: same token ids, and 1 in the template's mask
# exactly where the manual labels are not `-100`.

# %%
agree = [t["input_ids"] == m["input_ids"]
         and t["assistant_masks"] == [int(lab != IGNORE_INDEX) for lab in m["labels"]]
         for t, m in zip(template_rows, manual_rows, strict=True)]
print(f"The two masks are equal on {sum(agree)} of {len(agree)} conversations.")

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("mask_agreement", sum(agree) / len(agree))

# %% [markdown]
# ### Without the markers, the mask is silently empty
#
# Take the same template and delete the two markers. It renders the same text, and transformers
# returns a mask anyway: it logs a warning once (easy to miss in a long training log; this book's
# pages hide library logs, so it does not appear below) and hands back all zeros. Training on that
# mask would compute the loss on nothing. (trl's `SFTTrainer` checks for this and raises when an
# example's mask holds no assistant token; a hand-written loop would not.)

# %%
no_markers = (chat_template.CHAT_TEMPLATE.replace("{%- generation -%}", "")
              .replace("{%- endgeneration -%}", ""))
silent = tokenizer.apply_chat_template(
    train_messages[0], chat_template=no_markers, tokenize=True, return_dict=True,
    return_assistant_tokens_mask=True,
)
print(f"{len(silent['input_ids'])} tokens, {sum(silent['assistant_masks'])} of them "
      "in the mask.")

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
# The harness of [chapter 2](02_label_masking.ipynb): a fresh LoRA model per method, the same seed
# and optimizer, and a `StopWhenLearned` callback that stops as soon as all five training answers
# are exact. Here the five questions are asked *in their conversation*: "dog" is asked after the
# water exchange, so the prompt is the conversation up to the second `### Assistant:<s>`. The
# template's `add_generation_prompt` builds these prompts.

# %%
def prompt_for(history_words, en):
    """The conversation `history_words` (answered correctly), then the question for
    `en`."""
    msgs = to_messages(history_words) + [{"role": "user", "content": question(en)}]
    return tokenizer.apply_chat_template(msgs, tokenize=False,
                                         add_generation_prompt=True)


train_prompts, train_answers = [], []
for words in CONVERSATIONS:
    for k, en in enumerate(words):
        train_prompts.append(prompt_for(words[:k], en))
        train_answers.append(WORD_PAIRS[en])
print(len(train_prompts), "training prompts; the second one:")
print(train_prompts[1])


# %%
def fresh_lora_model(seed=SEED):
    def load():
        return profiles.load_causal_lm("masking_base", PROFILE, DEVICE)[0]

    return translation_task.fresh_lora_model(load, seed, LORA_R)


def learn(trainer_cls, args, dataset, seed=SEED, **trainer_kwargs):
    """A fresh LoRA model (seeded with `seed`) trained until it answers the five
    training prompts; (the model, what the run measured, answers exact at the end)."""
    model, learned = learn_fresh(
        lambda: fresh_lora_model(seed), trainer_cls, args, dataset, tokenizer,
        train_prompts, train_answers, **trainer_kwargs,
    )
    answers = generate_answers(model, tokenizer, train_prompts)
    right = sum(g == a for g, a in zip(answers, train_answers, strict=True))
    return model, learned, right


LABELS = {"manual": "manual masks", "assistant_only": "trl assistant_only_loss"}
common_args = small_run_args(MAX_EPOCHS, BATCH_SIZE, lr, SEED, DEVICE)
results = {}


def run(name, trainer_cls, args, dataset, **trainer_kwargs):
    model, learned, train_correct = learn(trainer_cls, args, dataset, **trainer_kwargs)
    results[name] = dict(
        model=model, epochs_to_learn=learned.epochs_to_learn,
        train_correct=train_correct, train_runtime_s=learned.train_runtime_s,
        correct_per_epoch=learned.correct_per_epoch, losses=learned.losses,
    )
    print(f"{LABELS[name]}: {train_correct}/5 training answers exact after "
          f"{len(learned.correct_per_epoch)} epochs ({learned.train_runtime_s:.1f}s)")


# %% [markdown]
# ### (a) With the manual masks
#
# The rows built above (`input_ids`, `labels`) go to a plain `Trainer`.

# %%
collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX)
run("manual", Trainer, TrainingArguments(output_dir="out/manual", **common_args),
    Dataset.from_list(manual_rows), data_collator=collator)

# %% [markdown]
# ### (b) With trl's `assistant_only_loss`
#
# Now the dataset is just the messages. `SFTTrainer` applies the tokenizer's chat template with
# `return_assistant_tokens_mask=True` and builds a `labels` column with `-100` outside the mask.
# (As in [chapter 2](02_label_masking.ipynb) we switch off `SFTConfig`'s gradient checkpointing
# and take the precision from `common_args`, so that the two runs differ in who builds the masks
# alone.) The labels it builds for the first conversation:

# %%
messages_ds = Dataset.from_list([{"messages": m} for m in train_messages])
sft_args = SFTConfig(output_dir="out/assistant_only", assistant_only_loss=True,
                     gradient_checkpointing=False, **common_args)
probe = SFTTrainer(model=fresh_lora_model(), args=sft_args, train_dataset=messages_ds,
                   processing_class=tokenizer)
first = probe.train_dataset[0]
same_ids = first["input_ids"] == manual_rows[0]["input_ids"]
same_labels = first["labels"] == manual_rows[0]["labels"]
print(f"trl's tokens are the manual tokens: {'yes' if same_ids else 'no'}; "
      f"its labels are the manual labels: {'yes' if same_labels else 'no'}.")
print("The loss sees only:", repr(tokenizer.decode(kept(first["labels"]))))
del probe

# %%
run("assistant_only", SFTTrainer, sft_args, messages_ds, processing_class=tokenizer)

# %% [markdown]
# Training answers exact after each epoch, and the loss per step. The two curves of each panel
# are identical, so the trl run is drawn dashed over the wide, pale manual one; the line under
# the plot gives the largest difference between the two runs' losses.

# %%
fig = plot_learning({LABELS[name]: r for name, r in results.items()})
for ax in fig.axes:
    under, over = ax.get_lines()[:2]
    under.set(linewidth=5, alpha=0.35)
    marker = "x" if over.get_marker() not in (None, "", "None") else ""
    over.set(linestyle="--", linewidth=1.5, alpha=1, marker=marker)
    ax.legend()
plt.show()
manual, trl_run = results["manual"], results["assistant_only"]
gap = (manual["losses"]["loss"] - trl_run["losses"]["loss"]).abs().max()
same_answers = manual["correct_per_epoch"] == trl_run["correct_per_epoch"]
print(f"The two runs logged {len(manual['losses'])} and {len(trl_run['losses'])} "
      f"losses; the largest difference between them is {gap:.2g}. Their answers "
      f"right after each epoch are {'the same' if same_answers else 'not the same'}.")

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
for name, r in results.items():
    record(f"{name}.train_correct", r["train_correct"])

# %% [markdown]
# ## Evaluation: single questions and second turns
#
# First, every training word and the holdout asked on its own, as a one-exchange conversation:

# %%
single_words = list(TRAIN_WORDS) + [HOLDOUT[0]]
single_prompts = [prompt_for([], en) for en in single_words]
single = pd.DataFrame({"word": single_words,
                       "expected": [WORD_PAIRS[en] for en in single_words]})
for name, r in results.items():
    single[name] = generate_answers(r["model"], tokenizer, single_prompts)
single.rename(columns=LABELS)

# %% [markdown]
# Now the case multi-turn training is for: a question asked *after* a first exchange. We build
# `N_SECOND_TURN` conversations. The second word cycles through the five training words and the
# holdout "good"; the first word is drawn at random (seeded) from the task's whole word list,
# so most first exchanges were never seen in training. The first exchange is given with its
# correct answer; the model must answer the second question.

# %%
rng = random.Random(SEED)
second_words = [single_words[i % 6] for i in range(N_SECOND_TURN)]
first_words = [rng.choice(sorted(set(WORD_PAIRS) - {en})) for en in second_words]
second_prompts = [prompt_for([a], b)
                  for a, b in zip(first_words, second_words, strict=True)]
second = pd.DataFrame({
    "first exchange": [f"{a} -> {WORD_PAIRS[a]}" for a in first_words],
    "second question": second_words,
    "expected": [WORD_PAIRS[b] for b in second_words],
})
for name, r in results.items():
    second[name] = generate_answers(r["model"], tokenizer, second_prompts)
second.rename(columns=LABELS)

# %%
second_turn = {name: float((second[name] == second["expected"]).mean())
               for name in results}
is_holdout = second["second question"] == HOLDOUT[0]
for name in results:
    right = second[name] == second["expected"]
    print(f"{LABELS[name]}: {int(right.sum())} of {len(second)} second questions "
          f"answered exactly, {int(right[is_holdout].sum())} of the "
          f"{int(is_holdout.sum())} about the holdout {HOLDOUT[0]!r}.")

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
for name in results:
    record(f"{name}.second_turn_correct", round(second_turn[name], 4))
# the weaker method
record("second_turn.correct", round(min(second_turn.values()), 4))

# %% [markdown]
# Which second questions were missed? For each miss, the table also says where the word stood in
# the training conversations: asked first in its conversation (water, mother, tree), asked
# second (dog, hello), or never trained (good).

# %%
first_in_training = {words[0] for words in CONVERSATIONS}


def trained_as(en):
    if en == HOLDOUT[0]:
        return "held out"
    return "first question" if en in first_in_training else "second question"


misses = second.rename(columns=LABELS).melt(
    id_vars=["first exchange", "second question", "expected"],
    value_vars=list(LABELS.values()), var_name="method", value_name="answer")
misses = misses[misses["answer"] != misses["expected"]]
misses = misses.assign(**{"trained as": misses["second question"].map(trained_as)})
misses = misses.reset_index(drop=True)
print(f"{len(misses)} misses over {len(second)} conversations x {len(results)} methods")
misses

# %% [markdown]
# Twelve conversations are few. We count more: each of the six words asked second after
# `N_FIRST_WORDS` first exchanges drawn at random, and for each word how many of its second
# questions the model answers exactly.

# %%
more_second = [en for en in single_words for _ in range(N_FIRST_WORDS)]
more_first = [rng.choice(sorted(set(WORD_PAIRS) - {en})) for en in more_second]
more_prompts = [prompt_for([a], b)
                for a, b in zip(more_first, more_second, strict=True)]


def second_turn_counts(model):
    """Per word, how many of its second questions the model answers exactly."""
    answers = generate_answers(model, tokenizer, more_prompts)
    counts = dict.fromkeys(single_words, 0)
    for answer, en in zip(answers, more_second, strict=True):
        counts[en] += int(answer == WORD_PAIRS[en])
    return counts


counts = {name: second_turn_counts(r["model"]) for name, r in results.items()}
pd.DataFrame({"trained as": [trained_as(en) for en in single_words],
              **{f"{LABELS[n]} (of {N_FIRST_WORDS})": [c[en] for en in single_words]
                 for n, c in counts.items()}},
             index=pd.Index(single_words, name="second question"))

# %% [markdown]
# ## The same comparison with other seeds
#
# Everything above is one run per method, with seed `SEED`. Here both methods train again with
# `N_SEEDS - 1` more seeds (a different LoRA init and data order each), and each trained model
# answers the same questions: the twelve conversations, and the larger count per word.

# %%
def seed_row(seed, name, epochs, train_correct, model):
    counts = second_turn_counts(model)
    answers = generate_answers(model, tokenizer, second_prompts)
    right12 = sum(a == e for a, e in zip(answers, second["expected"], strict=True))
    return {"seed": seed, "method": LABELS[name], "epochs to learn": epochs or "never",
            "training answers exact (of 5)": train_correct,
            f"second turns right (of {len(second)})": right12,
            **{f"{en} (of {N_FIRST_WORDS})": counts[en] for en in single_words}}


seed_rows = [seed_row(SEED, name, r["epochs_to_learn"], r["train_correct"], r["model"])
             for name, r in results.items()]
loss_gaps = [gap]
for seed in range(SEED + 1, SEED + N_SEEDS):
    args = small_run_args(MAX_EPOCHS, BATCH_SIZE, lr, seed, DEVICE)
    seed_sft_args = SFTConfig(output_dir="out/assistant_only", assistant_only_loss=True,
                              gradient_checkpointing=False, **args)
    runs = {
        "manual": learn(Trainer, TrainingArguments(output_dir="out/manual", **args),
                        Dataset.from_list(manual_rows), seed, data_collator=collator),
        "assistant_only": learn(SFTTrainer, seed_sft_args, messages_ds, seed,
                                processing_class=tokenizer),
    }
    for name, (model, learned, right) in runs.items():
        seed_rows.append(seed_row(seed, name, learned.epochs_to_learn, right, model))
    a, b = (learned.losses["loss"] for _, learned, _ in runs.values())
    loss_gaps.append((a - b).abs().max())
    del runs, model  # this seed's models are measured: free them before the next seed's
seeds = pd.DataFrame(seed_rows).set_index(["seed", "method"])
print(f"Over the {N_SEEDS} seeds, the two methods' losses differ by at most "
      f"{max(loss_gaps):.2g} at any step.")
word_columns = [f"{en} (of {N_FIRST_WORDS})" for en in single_words]
seeds.drop(columns=word_columns)

# %% [markdown]
# The same runs word by word: of the 20 second questions about each word (`N_FIRST_WORDS`),
# how many the run answers exactly.

# %%
seeds[word_columns]

# %% [markdown]
# Over the four seeds the two methods agree run for run: the same epochs to learn, the same
# numbers of right answers, and losses within 2.9e-06 of each other at every step. The seed
# moves the epochs to learn between 21 and 24.
#
# The second-turn misses are not spread over the words trained as a first question: nearly all
# are on one word, water, right 10, 2, 3 and 17 times out of 20 in the four seeds. Mother, also
# trained only as a first question, is missed once per method in 80 questions (seed 1), and
# tree never; dog, hello and the never-trained good are always right. Being trained only as the
# first question does not predict a miss, then (mother and tree were too), and these runs do not
# show why water fails. What they do show is what twelve conversations cannot: they ask about
# water only twice (both missed with seed 0), while 20 questions per seed find it right anywhere
# from 2 to 17 times in 20, depending on the seed.
#
#
# ## What the numbers say

# %%
per_word = {en: sum(row[f"{en} (of {N_FIRST_WORDS})"] for row in seed_rows)
            for en in single_words}
epochs = [row["epochs to learn"] for row in seed_rows]
learned_epochs = [e for e in epochs if e != "never"]
never = len(epochs) - len(learned_epochs)
summary = {
    "conversations rendered as the hand-built text": f"{same_text} of 3",
    "conversations where the two masks are equal": f"{sum(agree)} of {len(agree)}",
    "tokens in the mask without markers": f"{sum(silent['assistant_masks'])}",
    **{f"epochs to learn, {LABELS[n]} (seed {SEED})": f"{r['epochs_to_learn']}"
       for n, r in results.items()},
    f"epochs to learn, {N_SEEDS} seeds": (
        (f"{min(learned_epochs)} to {max(learned_epochs)}" if learned_epochs
         else "none learned")
        + (f", {never} runs never" if never else "")),
    f"largest loss gap between methods, {N_SEEDS} seeds": f"{max(loss_gaps):.2g}",
    **{f"second turns, {LABELS[n]} (seed {SEED})":
       f"{round(second_turn[n] * len(second))} of {len(second)}" for n in results},
    **{f"{en} asked second: right answers in {len(seed_rows)} runs":
       f"{per_word[en]} of {N_FIRST_WORDS * len(seed_rows)}" for en in single_words},
}
pd.DataFrame({"value": summary})

# %% [markdown]
# - In a multi-turn example every assistant answer is trained on, and only those: of a
#   conversation of two exchanges the loss sees 4 tokens, the two answers each with its `</s>`.
# - The chat template with `{% generation %}` markers renders the hand-built text of all three
#   conversations, and its assistant mask equals the manual mask on all three. Without the
#   markers the mask holds 0 tokens, with only a logged warning, which is why `assistant_mask`
#   raises an error instead.
# - Trained on the manual masks or with trl's `assistant_only_loss`, the model learns all five
#   training answers in the same number of epochs (24 with seed 0, 21 to 24 over four seeds),
#   with losses within 2.9e-06 of each other: trl's labels are the manual ones token for token,
#   and who builds the `-100`s does not change training.
# - Asked after an exchange it never saw, the seed-0 model answers 10 of the 12 second
#   questions with either method, both about the held-out word included. Counted over 20
#   second questions per word for each of the 8 trained models (two methods, four seeds),
#   nearly all misses are on one word: water is right 64 times in 160, every other word at
#   least 158 times in 160. Twelve conversations ask about water only twice, and one seed
#   would not have shown how much its score moves: from 2 to 17 right in 20 across the four
#   seeds.
