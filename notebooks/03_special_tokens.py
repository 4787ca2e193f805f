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
# Colab only: install llmtut, the book's package (it brings transformers, trl, peft, ...).
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "llmtut @ git+https://github.com/llmtut/llmtut"], check=True)

# %%
import inspect
import logging

import matplotlib.pyplot as plt
import pandas as pd
import torch
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments
from trl import SFTConfig, SFTTrainer

from llmtut import profiles, special_tokens
from llmtut.formats import ASSISTANT, HUMAN
from llmtut.generation import generate_answers
from llmtut.masking import IGNORE_INDEX
from llmtut.precision import precision_for
from llmtut.report import record
from llmtut.special_tokens import add_special_tokens_with_init, find_template, mask_before_template
from llmtut.training import StopWhenLearned, plot_learning, small_run_args, train_until_learned, with_lora
from llmtut.translation_task import LORA_TARGETS, TRAIN_WORDS, example_text, prompt_text

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
print(f"profile={PROFILE} device={DEVICE} seed={SEED} lr={lr} lora_r={LORA_R}")
base_model, tokenizer = profiles.load_causal_lm("masking_base", PROFILE, DEVICE)
print(f"{type(base_model).__name__}: {base_model.num_parameters():,} parameters, vocabulary {len(tokenizer):,}")

# %% [markdown]
# ## The task, as in the label-masking chapter
#
# Five word translations to train on, one held out. Each example is an exchange between
# `### Human:` and `### Assistant:`, with `</s>` before the human turn and `<s>` after the
# assistant's template (`llmtut.translation_task`, the task of chapter 02).

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
# Here is the response template tokenized on its own, and the first training example. Look at
# the token before `###` in the example: the tokenizer learned `?` followed by a blank line as
# *one* token, so the `\n\n` of the template is glued to the question mark.

# %%
template_ids, template_tokens = tokens(ASSISTANT)
ids0, toks0 = tokens(train_texts[0])
print("template alone:", template_ids, template_tokens)
pd.DataFrame({"token id": ids0, "token": toks0}).T

# %%
found_before = [any(ids[i:i + len(template_ids)] == template_ids for i in range(len(ids)))
                for ids, _ in map(tokens, train_texts)]
print(f"the template's tokens occur in {sum(found_before)} of {len(train_texts)} training examples")

# %% [markdown]
# A completion-only masker that searches for those tokens, and, like many do, falls back to
# masking the whole row when it finds nothing, returns this:

# %%
def silent_mask(ids, template):
    for start in range(len(ids) - len(template) + 1):
        if ids[start:start + len(template)] == template:
            end = start + len(template)
            return [IGNORE_INDEX] * end + ids[end:]
    return [IGNORE_INDEX] * len(ids)  # not found: nothing to learn, and no word about it


silent = [silent_mask(ids, template_ids) for ids, _ in map(tokens, train_texts)]
print("labels of row 0:", silent[0])
print("labels the loss sees, over all five rows:", sum(label != IGNORE_INDEX for row in silent for label in row))

# %% [markdown]
# Every label is `-100`: the five examples would cost five training steps and teach nothing
# (the loss of a batch with no label is not even a number). `llmtut`'s search refuses instead,
# and names the row and the fix:

# %%
print(inspect.getsource(special_tokens.find_template))

# %%
template_found_before = True
for row, text in enumerate(train_texts):
    try:
        mask_before_template(tokens(text)[0], template_ids, row)
    except ValueError as err:
        template_found_before = False
        print("ValueError:", str(err)[:330], "...")
        break
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
split = [{"prompt": f'{tokenizer.eos_token}{HUMAN} How do you say "{en}" in Spanish?',
          "completion": f"{ASSISTANT}{tokenizer.bos_token} {es}{tokenizer.eos_token}"} for en, es in TRAIN_WORDS.items()]
probe_args = SFTConfig(output_dir="out/probe", completion_only_loss=True, gradient_checkpointing=False,
                       report_to=[], use_cpu=DEVICE == "cpu", **precision_for(DEVICE).trainer_args())
probe = SFTTrainer(model=base_model, args=probe_args, train_dataset=Dataset.from_list(split),
                   processing_class=tokenizer)
logging.getLogger("trl.trainer.sft_trainer").removeHandler(capture)
first = probe.train_dataset[0]
labels = first["labels"]  # trl folds its completion mask into the labels
print("trl says:", capture.messages[0][:420] if capture.messages else "(no warning)")
print("labels:", labels)
print("the loss sees:", repr(tokenizer.decode([t for t in labels if t != IGNORE_INDEX])))
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
# adds the tokens, resizes the embeddings and initialises the new rows.

# %%
print(inspect.getsource(special_tokens.add_special_tokens_with_init))

# %%
fixed_model, fixed_tok = profiles.load_causal_lm("masking_base", PROFILE, DEVICE)
new_ids = add_special_tokens_with_init(fixed_model, fixed_tok, [HUMAN, ASSISTANT], init="mean", seed=SEED)
new_template_ids, new_template_tokens = tokens(ASSISTANT, fixed_tok)
print("new ids:", new_ids, "| vocabulary", len(tokenizer), "->", len(fixed_tok),
      "| embedding rows", tuple(fixed_model.get_input_embeddings().weight.shape))
print("template alone:", new_template_ids, new_template_tokens)
fixed_texts = [example_text(fixed_tok, en, es) for en, es in TRAIN_WORDS.items()]
ids0, toks0 = tokens(fixed_texts[0], fixed_tok)
pd.DataFrame({"token id": ids0, "token": toks0}).T

# %% [markdown]
# The template is one token now, and it is found in every example. The new label tensors keep
# `<s>`, the answer and `</s>`:

# %%
fixed_rows = []
for row, text in enumerate(fixed_texts):
    ids = tokens(text, fixed_tok)[0]
    fixed_rows.append({"input_ids": ids, "labels": mask_before_template(ids, new_template_ids, row)})
template_found_after = all(find_template(r["input_ids"], new_template_ids) >= 0 for r in fixed_rows)
pd.DataFrame({en: {"labels": r["labels"], "the loss sees": fixed_tok.decode([t for t in r["labels"] if t != IGNORE_INDEX])}
              for en, r in zip(TRAIN_WORDS, fixed_rows, strict=True)}).T

# %%
record("template_found.after", template_found_after)

# %% [markdown]
# ## 3. The cost: new rows must be learned
#
# The new rows carry no meaning yet. Three ways to start them:
#
# - **mean**: the mean of all existing embeddings (what `resize_token_embeddings` does by default);
# - **random**: normal noise with the model's init std (`config.initializer_range`), as in a fresh model;
# - **pieces**: the average of the embeddings of the tokens the old tokenizer split the string into.
#
# How different do they start? The norm of each new row next to a typical row, and how similar
# the two new rows are to each other:

# %%
def init_stats(init):
    model, tok = profiles.load_causal_lm("masking_base", PROFILE, DEVICE)
    ids = add_special_tokens_with_init(model, tok, [HUMAN, ASSISTANT], init=init, seed=SEED)
    w = model.get_input_embeddings().weight.detach()
    return {"norm Human": w[ids[0]].norm().item(), "norm Assistant": w[ids[1]].norm().item(),
            "median norm of old rows": w[: len(tokenizer)].norm(dim=1).median().item(),
            "cos(Human, Assistant)": torch.cosine_similarity(w[ids[0]], w[ids[1]], dim=0).item()}


pd.DataFrame({init: init_stats(init) for init in special_tokens.INITS}).T.round(3)

# %% [markdown]
# Bloom ties its input and output embeddings (one matrix), so each new row is also the output
# row that scores the new token as a *prediction*. We train each initialisation the same way:
# a fresh model, a LoRA adapter on `query_key_value`, and the two new rows trainable (section 4
# shows why that is needed), until the model answers the five examples exactly.

# %%
results = {}


def train(name, init, train_new_rows=True, ends_turn=False, keep_model=False):
    """A fresh model with the templates added (`init` for their rows), LoRA, trained until it answers all five.

    `keep_model`: keep the trained model for later sections; the others are freed (a GPU holds few copies).

    `ends_turn`: the answer ends with the human template instead of `</s>` (section 4).
    """
    torch.manual_seed(SEED)
    model, tok = profiles.load_causal_lm("masking_base", PROFILE, DEVICE)
    ids = add_special_tokens_with_init(model, tok, [HUMAN, ASSISTANT], init=init, seed=SEED)
    rows_before = model.get_input_embeddings().weight[ids].detach().clone()
    model = with_lora(model, LORA_R, LORA_TARGETS, trainable_token_indices=ids if train_new_rows else None)
    end = HUMAN if ends_turn else tok.eos_token
    template = tokens(ASSISTANT, tok)[0]
    data = [{"input_ids": (x := tokens(f"{prompt_text(tok, en)} {es}{end}", tok)[0]),
             "labels": mask_before_template(x, template, r)} for r, (en, es) in enumerate(TRAIN_WORDS.items())]
    answers = [f"{es}{HUMAN}" if ends_turn else es for es in train_answers]
    stopper = StopWhenLearned(tok, [prompt_text(tok, en) for en in TRAIN_WORDS], answers,
                              end_of_turn=HUMAN if ends_turn else None)
    trainer = Trainer(model=model, args=TrainingArguments(output_dir=f"out/{name}", **run_args),
                      train_dataset=Dataset.from_list(data),
                      data_collator=DataCollatorForSeq2Seq(tok, label_pad_token_id=IGNORE_INDEX))
    learned = train_until_learned(trainer, stopper)
    with torch.no_grad():  # the rows the trained model uses (peft adds its trained delta)
        rows_after = model.get_input_embeddings()(torch.tensor(ids, device=model.device))
    results[name] = dict(epochs_to_learn=learned.epochs_to_learn, correct_per_epoch=learned.correct_per_epoch,
                         train_correct=learned.final_correct, train_runtime_s=learned.train_runtime_s,
                         trainable_params=model.get_nb_trainable_parameters()[0],
                         new_rows_moved=(rows_after - rows_before).norm().item(), losses=learned.losses,
                         tokenizer=tok, new_ids=ids, **({"model": model} if keep_model else {}))
    print(f"{name}: {learned.final_correct}/5 right after {len(learned.correct_per_epoch)} epochs "
          f"(learned after {learned.epochs_to_learn}) in {learned.train_runtime_s:.1f}s; new rows moved by "
          f"{results[name]['new_rows_moved']:.4f}")


run_args = small_run_args(MAX_EPOCHS, BATCH_SIZE, lr, SEED, DEVICE)
for init in special_tokens.INITS:
    train(f"{init}_init", init)

# %%
plot_learning(results)
plt.show()

# %%
for init in special_tokens.INITS:
    record(f"epochs_to_learn.{init}_init", results[f"{init}_init"]["epochs_to_learn"])

# %% [markdown]
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
# The rows did not move, yet the model can still learn the task: to *read* the template, the
# model needs only a row that differs from every other input, and a frozen mean row does.
# The answer's start is also marked by `<s>`.
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
train("lora_without_new_rows", "mean", train_new_rows=False, ends_turn=True, keep_model=True)
train("lora", "mean", train_new_rows=True, ends_turn=True, keep_model=True)
pd.DataFrame({"must write": [repr(f"perro{HUMAN}")] * 2,
              "wrote": [repr(generate_answers(results[n]["model"], results[n]["tokenizer"],
                                              [prompt_text(results[n]["tokenizer"], "dog")], 8, HUMAN)[0])
                        for n in ("lora_without_new_rows", "lora")]},
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
    model, tok, ids = results[name]["model"], results[name]["tokenizer"], results[name]["new_ids"]
    x = tok(f"{prompt_text(tok, en)} {TRAIN_WORDS[en]}", return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.no_grad():
        logits = model(**x).logits[0, -1]
    old = logits[: len(tokenizer)]
    return {"logit of the human template": logits[ids[0]].item(), "mean of the old logits": old.mean().item(),
            "largest old logit": old.max().item(), "best old token": tok.decode(int(old.argmax()))}


pd.DataFrame({name: logits_at_turn_end(n) for name, n in
              [("LoRA alone", "lora_without_new_rows"), ("LoRA + new rows", "lora")]}).T

# %%
lora = {"LoRA + new rows": results["lora"], "LoRA alone": results["lora_without_new_rows"]}
pd.DataFrame({name: {k: r[k] for k in ("trainable_params", "new_rows_moved", "epochs_to_learn", "train_correct")}
              for name, r in lora.items()}).T

# %%
for key, name in [("lora", "lora"), ("lora_without_new_rows", "lora_without_new_rows")]:
    record(f"{key}.train_correct", results[name]["train_correct"])

# %% [markdown]
# ## Summary

# %%
pd.DataFrame({name: {"epochs to learn": r["epochs_to_learn"], "right at the end (of 5)": r["train_correct"],
                     "new rows moved": round(r["new_rows_moved"], 4), "train time (s)": round(r["train_runtime_s"], 1)}
              for name, r in results.items()}).T

# %% [markdown]
# What the numbers say (the cells above print them for this run):
#
# - In context the template's tokens never occur (`?\n\n` is one token), so a template search
#   fails on every row. A silent masker returns rows of `-100` that teach nothing; `llmtut`'s
#   `find_template` raises and names the row. trl warns and moves the boundary into the prompt.
# - As special tokens, both templates are one id each, found in every example, and the labels
#   are exactly `<s>`, the answer and `</s>`.
# - The new rows start meaningless. Compare the epochs to learn of the three initialisations in
#   the table: the mean init, transformers' default, learns no slower than random noise. Averaging
#   the pieces sounds clever, but the two templates share most of their pieces (`\n\n`, `###`), so
#   they start almost alike (cosine in the init table) and the model must first pull them apart.
# - With LoRA alone, the new rows do not move at all (`new rows moved` is 0), and an adapter saved
#   from such a run does not contain them. Reading a frozen token works; writing one does not:
#   a model that must end its turn with a new token never does, because a frozen mean row's logit
#   is the mean of the others. With `trainable_token_indices` (a few hundred extra parameters here)
#   the same model learns to end every answer with the template. When you add tokens that the
#   model must *generate* (end-of-turn markers, chat-template tokens), train their rows: with
#   `trainable_token_indices`, or with `modules_to_save=["word_embeddings"]` at the cost of the
#   whole matrix.
