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
# # PPO detoxification: teaching a summarizer to stop repeating insults
#
# A summarizer fine-tuned on conversations learns to repeat what the speakers said, insults
# included. In this chapter we take such a model, a seq2seq summarizer with a LoRA adapter, and
# train it with **reinforcement learning**: a hate-speech classifier scores every summary it
# writes, and Proximal Policy Optimization (PPO) moves the adapter towards summaries the
# classifier finds less hateful, while a KL penalty keeps it close to the original model.
#
# The source material is a well-known lab (FLAN-T5 + DialogSum + a RoBERTa hate-speech
# classifier + trl's `PPOTrainer`). Its recorded run made toxicity *worse* by 14.5%, measured on
# 11 samples with the dialogue and the summary scored together. We do it properly:
#
# - PPO written out in `llmtut.ppo` (trl 1.16 no longer has a `PPOTrainer`, and its GRPO/RLOO
#   trainers take causal models only): value head, reference model, per-token KL, GAE, clipping,
#   an adaptive KL coefficient;
# - an honest evaluation: hundreds of distinct held-out dialogues, the summary scored on its own,
#   greedy and sampled generation with every decoding setting stated, a bootstrap interval for the
#   paired difference that resamples dialogues, ROUGE-L against all of a dialogue's reference
#   summaries, and a count of the names, places and numbers that survive, to check that the
#   summaries are still summaries of the same conversation;
# - the same detox with trl's `GRPOTrainer` on a causal summarizer, for comparison.
#
# **On a T4.** On a free Colab T4 (15 GB) the `hub` profile needs about 10 GiB of GPU memory at its
# fullest and about 6 minutes (estimated from the real models' shapes and its `hub` settings by
# `llmtut.t4_plan`; nothing was measured on a GPU). The `tiny` profile runs on a CPU.

# %%
# Colab only: install llmtut, the book's package (with transformers, trl, peft, ...).
import subprocess
import sys

if "google.colab" in sys.modules:
    package = "llmtut @ git+https://github.com/llmtut/llmtut"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %%
import time
import warnings

# a plain text page: no widget progress bars, no notices of renamed library arguments
warnings.filterwarnings("ignore", message="IProgress not found")
warnings.filterwarnings("ignore", message=".*deprecated and will be removed in v6")

import datasets  # noqa: E402 (after the filters, which must come first)
import evaluate
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import transformers
from datasets import Dataset
from IPython.display import display
from peft import LoraConfig, get_peft_model
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    PrinterCallback,
    pipeline,
)
from trl import GRPOConfig, GRPOTrainer

from llmtut import ppo, profiles
from llmtut.detox import (
    SAMPLING,
    fact_words,
    facts_kept,
    generation_settings,
    nothate_logits,
    nothate_reward,
    reference_lists,
    summarize,
)
from llmtut.evaluation import load_toxicity, module_path, paired_difference
from llmtut.formats import summary_prompt
from llmtut.page import show_source
from llmtut.ppo import PPOConfig, Seq2SeqPPOTrainer
from llmtut.precision import precision_for
from llmtut.report import record
from llmtut.trainer_defaults import quiet_trainer_args

# no progress bars for loading weights and mapping datasets
transformers.utils.logging.disable_progress_bar()
datasets.disable_progress_bars()

# %% [markdown]
# The chapter's parameters. `PROFILE = "hub"` runs it on the source's models (google/flan-t5-base,
# facebook/roberta-hate-speech-dynabench-r4-target, knkarthick/dialogsum, and a Qwen instruct model
# for GRPO), on a GPU. `PROFILE = "tiny"` runs it offline on the tiny world's models, which
# `llmtut` trains itself on generated conversations. A runner such as papermill can override
# these values.

# %% tags=["parameters"]
PROFILE = profiles.default_profile()  # "hub" or "tiny"
SEED = 0
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
N_EVAL = 400  # distinct held-out dialogues to evaluate on (at most the test split's)
PPO_STEPS = 16  # PPO steps of PPO_BATCH rollouts each
PPO_BATCH = 32
PPO_LR = None  # None: the profile's default below
GRPO_STEPS = 20  # GRPO steps of GRPO_PROMPTS prompts x GRPO_GENERATIONS completions
GRPO_PROMPTS = 4
GRPO_GENERATIONS = 8
GRPO_LR = None

# %%
profiles.check_profile(PROFILE)
# LoRA adapters take larger steps than full fine-tuning (the source's 1.41e-5 was for
# the whole model).
ppo_lr = PPO_LR or {"tiny": 1e-3, "hub": 1e-4}[PROFILE]
grpo_lr = GRPO_LR or {"tiny": 3e-3, "hub": 5e-5}[PROFILE]
torch.manual_seed(SEED)
print(
    f"Profile {PROFILE} on {DEVICE}, seed {SEED}, evaluation on up to {N_EVAL} "
    f"dialogues.\nPPO: {PPO_STEPS} steps of {PPO_BATCH} summaries, learning rate "
    f"{ppo_lr:g}.\nGRPO: {GRPO_STEPS} steps of {GRPO_PROMPTS} prompts x "
    f"{GRPO_GENERATIONS} completions, learning rate {grpo_lr:g}."
)

# %% [markdown]
# ## The dialogues
#
# In the `hub` profile these are DialogSum's conversations between `#Person1#` and `#Person2#`,
# kept between 200 and 1000 characters as in the source. DialogSum's test split holds each dialogue
# three times, once per reference summary written by a different annotator; three rows of the same
# dialogue are not three samples, so `profiles.load_dialogue_dataset` groups them: one row per
# distinct dialogue, with all its summaries in a `references` column. The `tiny` profile generates
# DialogSum-like conversations about everyday scenes (booking a table, buying a ticket, seeing a
# doctor...), each once, with one reference summary. In many of them a speaker is rude, and most of
# those reference summaries repeat the insult (the shares are printed below), so a model trained on
# them learns to repeat insults too.
#
# We evaluate on up to `N_EVAL` of the test dialogues. Everything below is counted per dialogue:
# ROUGE scores a summary against all of its dialogue's references (`reference_lists` reads the
# `references` column, or makes `[summary]` of a `tiny` row), and the bootstrap resamples dialogues.

# %%
data = profiles.load_dialogue_dataset(PROFILE)
n_train = len(data["train"])
print(f"{n_train} training dialogues, {len(data['test'])} test dialogues")
test = data["test"].shuffle(seed=SEED).select(range(min(N_EVAL, len(data["test"]))))
references = reference_lists(test)
counts = sorted({len(refs) for refs in references})
per_dialogue = str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
print(
    f"evaluation set: {len(set(test['dialogue']))} distinct dialogues in {len(test)} "
    f"rows, {sum(map(len, references))} reference summaries "
    f"({per_dialogue} per dialogue)"
)
if PROFILE == "tiny":
    rude = [d for d in data["test"] if d["rude"]]
    train = data["train"]
    print(
        f"rude dialogues: {sum(train['rude']) / len(train):.0%} of train; "
        f"{sum(train['toxic_summary']) / len(train):.0%} of the train summaries "
        "repeat an insult\n"
    )
    print(rude[0]["dialogue"], "\n\nReference summary:", rude[0]["summary"])

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("data.n_train", n_train)


# %% [markdown]
# ## The policy: a summarizer with a LoRA adapter
#
# The source loads FLAN-T5 with a LoRA adapter that was fine-tuned for summarization, and PPO then
# trains that adapter further. We add a fresh LoRA adapter (rank 32 on the attention's `q` and `v`
# projections, as in the source) to a summarizer: in `tiny`, a small T5 trained on the tiny
# world's dialogues; in `hub`, FLAN-T5-base, which summarizes DialogSum well out of the box.
# The adapter starts as the identity (LoRA's `B` matrix is zero), so at step 0 the policy *is*
# the base model, which will serve as PPO's reference.

# %%
base_model, tokenizer = profiles.load_pretrained(
    "summarizer", PROFILE, AutoModelForSeq2SeqLM, DEVICE
)
lora = LoraConfig(
    r=32,
    lora_alpha=32,
    target_modules=["q", "v"],
    lora_dropout=0.05,
    task_type="SEQ_2_SEQ_LM",
)
policy = get_peft_model(base_model, lora)
trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
total = sum(p.numel() for p in policy.parameters())
print(
    f"{type(base_model).__name__}: {total:,} parameters, {trainable:,} trainable in "
    f"the adapter ({trainable / total:.1%})"
)

# %% [markdown]
# ## The reward: a hate-speech classifier
#
# The reward model is a `RobertaForSequenceClassification` with two labels, `nothate` and
# `hate`. In `tiny` it was trained on the tiny world's labelled sentences (dialogue lines and
# summaries, with and without insults). We use it through a `text-classification` pipeline: with
# `function_to_apply="none"` it returns raw logits, and the **`nothate` logit is the reward**
# (higher is better); with the default softmax it returns probabilities.
#
# First a sanity check: its accuracy on 600 labelled sentences from `profiles.toxicity_sentences`,
# the tiny world's generator of dialogue lines, summaries and whole conversations with and without
# insults. Both profiles use it, because the Hub has no labelled set in DialogSum's style, so the
# number means something different in each (the printout names which):
#
# - `tiny`: the tiny classifier was trained on sentences from this same generator, drawn with
#   another seed. Short lines recur in a small world, so some of these 600 may well be in its
#   training set too: the number checks that it learned its task, not how it generalizes.
# - `hub`: facebook/roberta-hate-speech-dynabench-r4-target never saw this generator. The number
#   says whether it flags the tiny world's insults in synthetic sentences shaped like the
#   dialogues: a sanity check, **not a benchmark of the Hub classifier** (it was built and
#   evaluated on the Dynabench hate-speech data).

# %%
classifier_path = profiles.resolve("toxicity_classifier", PROFILE)
classifier = pipeline(
    "text-classification",
    model=classifier_path,
    device=DEVICE,
    **precision_for(DEVICE).load_kwargs(trains=False),  # it only scores: fp16 on a T4
)
labels = classifier.model.config.id2label
print("labels:", ", ".join(f"{i} = {name}" for i, name in sorted(labels.items())))
heldout = profiles.toxicity_sentences(600, seed=SEED + 1000)  # not its training seed
predicted = classifier([t for t, _ in heldout], batch_size=64, truncation=True)
correct = [
    (p["label"] == "hate") == bool(y)
    for p, (_, y) in zip(predicted, heldout, strict=True)
]
accuracy = round(float(np.mean(correct)), 4)
meaning = {
    "tiny": "the tiny-world classifier on sentences of the generator it was trained on "
    "(another seed)",
    "hub": f"{classifier_path} on synthetic tiny-world sentences "
    "(a sanity check, not a benchmark)",
}
print(
    f"accuracy of {meaning[PROFILE]}: {accuracy:.1%} of {len(heldout)} sentences "
    f"({sum(y for _, y in heldout)} toxic)"
)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("classifier.accuracy", accuracy)


# %% [markdown]
# Now the reward for a friendly and an insulting summary, as logits and as probabilities:

# %%
examples = [
    "#Person1# books a table for two at seven. #Person2# recommends the fish soup.",
    "#Person2# calls #Person1# a stupid idiot. "
    "#Person1# books a table for two at seven.",
]
scores = []
for text in examples:
    logits = {
        o["label"]: o["score"]
        for o in classifier(text, top_k=None, function_to_apply="none")
    }
    probs = {o["label"]: o["score"] for o in classifier(text, top_k=None)}
    scores.append(
        {
            "summary": text,
            "nothate logit": logits["nothate"],
            "hate logit": logits["hate"],
            "probability of hate": probs["hate"],
        }
    )
scores = pd.DataFrame(scores)
scores["reward"] = nothate_logits(classifier, examples)
with pd.option_context("display.max_colwidth", 100):
    display(scores.round(3))

# %% [markdown]
# ## Measuring toxicity with `evaluate`
#
# The source measures toxicity with `evaluate.load("toxicity", ...)`, a script that `evaluate`
# downloads from the Hugging Face Hub. `llmtut` ships the same measurement (and ROUGE) as local
# modules, so `evaluate.load(<path>)` works offline in both profiles. The toxicity of a text is the
# classifier's probability of `hate`; the module can also aggregate to the maximum, or to the
# share of texts at or above a threshold. For the two summaries above:

# %%
toxicity = load_toxicity(classifier_path, device=DEVICE)
rouge = evaluate.load(module_path("rouge"))
per_text = toxicity.compute(predictions=examples, toxic_label="hate")["toxicity"]
maximum = toxicity.compute(
    predictions=examples, toxic_label="hate", aggregation="maximum"
)
ratio = toxicity.compute(
    predictions=examples, toxic_label="hate", aggregation="ratio", threshold=0.5
)
print(f"toxicity of each text (no aggregation): {[round(s, 4) for s in per_text]}")
print(f"maximum: {maximum['max_toxicity']:.4f}")
print(f"share of texts at or above 0.5: {ratio['toxicity_ratio']:.2f}")


# %% [markdown]
# ## Before PPO: how toxic are the summaries?
#
# We summarize the evaluation dialogues greedily and by sampling (top-k 0, top-p 1, temperature 1,
# no repetition penalty: the rollout setting of PPO), and score **the summary alone**. `summarize`
# states each of these settings, in greedy decoding too (`generation_settings`): `generate()` takes
# any setting a call leaves out from the model's own generation config, and a chat model's asks for
# other ones (the GRPO section prints the causal summarizer's). We also score the dialogue and the
# summary together, as the source did, to see what that hides. ROUGE-L tells us how good the
# summaries are: each summary is scored against every reference summary of its dialogue and the
# best match counts (our `rouge` module, like the Hub's, takes a list of references per
# prediction), and the mean is over dialogues.


# %%
def scores_of(texts) -> np.ndarray:
    """The classifier's probability of hate for each text."""
    return np.array(toxicity.compute(predictions=texts, toxic_label="hate")["toxicity"])


def evaluate_summaries(model, tok, name):
    """Greedy and sampled summaries of the test dialogues, toxicity and ROUGE-L."""
    out = {}
    for mode in ("greedy", "sampled"):
        summaries = summarize(
            model, tok, test["dialogue"], do_sample=mode == "sampled", seed=SEED
        )
        out[mode] = summaries
        out[f"{mode}.toxicity"] = scores_of(summaries)
        out[f"{mode}.rougeL"] = rouge.compute(
            predictions=summaries, references=references
        )["rougeL"]
    out["with_dialogue"] = [
        f"{d}\n{s}" for d, s in zip(test["dialogue"], out["greedy"], strict=True)
    ]
    out["with_dialogue.toxicity"] = scores_of(out["with_dialogue"])
    print(
        f"{name}: toxicity greedy {out['greedy.toxicity'].mean():.4f}, "
        f"sampled {out['sampled.toxicity'].mean():.4f}, "
        f"dialogue+summary {out['with_dialogue.toxicity'].mean():.4f}; "
        f"ROUGE-L greedy {out['greedy.rougeL']:.4f}, "
        f"sampled {out['sampled.rougeL']:.4f}"
    )
    return out


with policy.disable_adapter():
    before = evaluate_summaries(policy, tokenizer, "before")

# %% [markdown]
# ## PPO, written out
#
# PPO treats generation as a sequence of decisions, one per token. For each batch of prompts:
#
# 1. **Rollout**: the policy samples a summary for each prompt, to its end-of-sequence token.
# 2. **Reward**: the classifier scores each summary; its `nothate` logit is the reward at the last
#    token. Every token also pays a KL penalty, `-kl_coef * (log p_policy - log p_reference)`,
#    so drifting away from the reference (into gibberish that fools the classifier, say) costs
#    reward. It makes drift costly, not impossible: a few garbled summaries show up below.
# 3. **Advantages**: a value head on the decoder predicts the return at every token; generalized
#    advantage estimation (GAE) turns rewards and values into per-token advantages.
# 4. **Update**: a few epochs of minibatch steps on the clipped policy loss (the probability ratio
#    to the rollout policy is clipped to 1 ± 0.2) plus a clipped value loss.
# 5. **KL control**: the KL coefficient adapts towards a target KL (how much it can adapt in a
#    run this short is measured below).
#
# The reference is the same model with the adapter switched off, so there is no second copy of the
# weights, and every forward pass runs with dropout off. With dropout on, policy and reference
# disagree even with identical weights: the lab's large KL at its very first step came from that.
# The heart of it is GAE, computed backwards from the last token of each summary:

# %%
show_source(ppo.compute_gae)

# %% [markdown]
# and the clipped policy loss, which takes no gradient from a token once its probability ratio
# has moved past the clip range in the direction its advantage pushes:

# %%
show_source(ppo.clipped_policy_loss)

# %% [markdown]
# `Seq2SeqPPOTrainer.step` puts these together and returns statistics under trl's old names. Our
# loop samples a batch of training dialogues, generates, scores and steps, and also tracks the
# toxicity of each batch's summaries:

# %%
config = PPOConfig(
    learning_rate=ppo_lr,
    batch_size=PPO_BATCH,
    mini_batch_size=8,
    ppo_epochs=4,
    init_kl_coef=0.2,
    target=6.0,
    seed=SEED,
)
ppo_trainer = Seq2SeqPPOTrainer(config, policy, tokenizer)
# every sampling setting stated, as in `summarize`
generation_kwargs = dict(
    **generation_settings(do_sample=True), min_length=5, max_new_tokens=64
)
train_prompts = [summary_prompt(d) for d in data["train"]["dialogue"]]
rng = np.random.default_rng(SEED)
torch.manual_seed(SEED)
history = []
t0 = time.perf_counter()
for _ in range(PPO_STEPS):
    picked = rng.choice(len(train_prompts), PPO_BATCH, replace=False)
    batch = [train_prompts[i] for i in picked]
    queries = [
        tokenizer(p, return_tensors="pt")["input_ids"][0].to(DEVICE) for p in batch
    ]
    responses = ppo_trainer.generate(queries, **generation_kwargs)
    summaries = tokenizer.batch_decode(responses, skip_special_tokens=True)
    rewards = [torch.tensor(r) for r in nothate_logits(classifier, summaries)]
    stats = ppo_trainer.step(queries, responses, rewards)
    stats["env/toxicity"] = float(scores_of(summaries).mean())
    history.append(stats)
ppo_runtime = round(time.perf_counter() - t0, 1)
history = pd.DataFrame(history)
history.index = pd.RangeIndex(1, len(history) + 1, name="step")
history_columns = {
    "ppo/mean_scores": "mean reward",
    "objective/kl": "KL to reference",
    "objective/kl_coef": "KL coefficient",
    "ppo/returns/mean": "mean return",
    "ppo/policy/advantages_mean": "mean advantage",
    "ppo/policy/clipfrac": "share of tokens clipped",
    "env/toxicity": "toxicity of the rollouts",
}
history[list(history_columns)].rename(columns=history_columns).round(3)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("ppo.train_runtime_s", ppo_runtime)


# %% [markdown]
# The reward, the KL to the reference and the toxicity of the rollouts, step by step (the table
# above holds the same numbers). The KL starts at exactly zero (the adapter is the identity, and
# no dropout) and grows unevenly as the policy moves: from step 8 on it lies between 1.3 and 4.3
# nats per summary. The mean reward rises from 1.6 at the first step to about 3 at most steps
# from the tenth on, and the toxicity of the rollouts falls from 0.25 to 0.03 at most of the late
# steps (each step's rollouts are a fresh batch of 32 dialogues, so the curves are noisy):

# %%
fig, axes = plt.subplots(3, 1, figsize=(7.5, 7), sharex=True)
panels = [
    ("ppo/mean_scores", "mean reward (nothate logit)"),
    ("objective/kl", "KL(policy || reference) per summary"),
    ("env/toxicity", "mean toxicity of the rollouts"),
]
for ax, (column, title) in zip(axes, panels, strict=True):
    ax.plot(history.index, history[column], marker="o")
    ax.set(title=title)
axes[-1].set(xlabel="PPO step")
fig.tight_layout()
plt.show()
kl_final = round(history["objective/kl"].iloc[-1], 4)
print(
    f"KL at the first step: {history['objective/kl'].iloc[0]:.4f}; at the last step: "
    f"{kl_final:.4f} nats per summary. PPO took {ppo_runtime:.0f}s."
)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("ppo.kl_final", kl_final)


# %% [markdown]
# ### Did the KL coefficient adapt?
#
# The coefficient starts at 0.2, and the controller aims the KL at a target of 6 nats per
# summary. In the table above the coefficient only goes from 0.200 to 0.198. This is the
# controller (trl's old one, after Ziegler et al. 2019): after each step it multiplies the
# coefficient by `1 + error * n_steps / horizon`, where `n_steps` is the batch size (32), the
# horizon is 10,000 samples, and the error is the KL's relative distance to the target, clipped
# to ±20%:

# %%
show_source(ppo.AdaptiveKLController, docstring=False)

# %% [markdown]
# The target, the KL each step measured, and the coefficient it produced:

# %%
kl = history["objective/kl"]
far_below = int((kl < 0.8 * config.target).sum())  # error clipped to -20%
fastest = (1 - 0.2 * config.batch_size / config.horizon) ** PPO_STEPS
kl_coef_last = ppo_trainer.kl_ctl.value
print(
    f"target KL: {config.target:g} nats per summary; measured: {kl.min():.2f} to "
    f"{kl.max():.2f} (mean {kl.mean():.2f}); below 80% of the target at {far_below} of "
    f"{PPO_STEPS} steps"
)
print(
    f"KL coefficient: {config.init_kl_coef:g} at the start, {kl_coef_last:.4f} after "
    f"the last step ({kl_coef_last / config.init_kl_coef - 1:+.2%})"
)
print(
    f"the largest change the controller allows in {PPO_STEPS} steps of "
    f"{config.batch_size} summaries with a horizon of {config.horizon:,.0f} samples: "
    f"{config.init_kl_coef:g} x {fastest:.4f} = {config.init_kl_coef * fastest:.4f}"
)

# %% [markdown]
# The KL stayed below 80% of its target at all 16 steps (at most 4.31 nats against 6), so every
# update lowered the coefficient by the most the controller allows, a factor of
# 1 − 0.2 × 32 / 10,000 per step. Over the run's 512 summaries that compounds to 0.9898: the
# coefficient went from 0.2 to 0.1980, 1% down. The horizon of 10,000 samples (trl's default)
# suits runs of many thousands of samples; in a run this short the coefficient is adaptive in
# name only and acts as a fixed penalty of 0.2 per nat of KL. What held the policy near the
# reference here is that fixed penalty and the small number of steps, not the controller.

# %% [markdown]
# ## After PPO: the honest evaluation
#
# The same held-out dialogues, the same decoding, now with the trained adapter:

# %%
after = evaluate_summaries(policy, tokenizer, "after")

# %% [markdown]
# Each dialogue is summarized before and after, so the fair comparison is **paired**: the mean of
# the per-dialogue differences in toxicity (before − after), with a bootstrap 95% interval (we
# resample dialogues 10,000 times). The unit is the dialogue: `groups=` names each row's dialogue,
# and rows of one dialogue would be averaged into one unit before resampling (here every row is a
# distinct dialogue already; `n` counts them). An interval that lies above zero means the
# reduction is not luck of the sample.

# %%
rows = {}
for view in ("greedy", "sampled", "with_dialogue"):
    d = paired_difference(
        before[f"{view}.toxicity"],
        after[f"{view}.toxicity"],
        seed=SEED,
        groups=test["dialogue"],
    )
    rows[view] = {
        "toxicity before": d["mean_before"],
        "toxicity after": d["mean_after"],
        "relative reduction": 1 - d["mean_after"] / d["mean_before"],
        "mean drop (before - after)": d["mean_diff"],
        "spread of the drops (sd)": d["std_diff"],
        "drop, 95% interval low": d["ci95_low"],
        "drop, 95% interval high": d["ci95_high"],
    }
    if view == "greedy":
        greedy = d
print(f"each interval resamples {d['n']} dialogues")
comparison = pd.DataFrame.from_dict(rows, orient="index").rename(
    index={
        "greedy": "summary (greedy)",
        "sampled": "summary (sampled)",
        "with_dialogue": "dialogue + summary (greedy)",
    }
)
n_eval = greedy["n"]  # distinct dialogues: the bootstrap's units
reduction = round(1 - greedy["mean_after"] / greedy["mean_before"], 4)
shown = comparison.round(4) + 0.0  # + 0.0 prints a rounded -0.00001 as 0.0, not -0.0
shown["relative reduction"] = comparison["relative reduction"].map("{:.1%}".format)
shown

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("ppo.n_eval", n_eval)
record("ppo.toxicity_before", round(greedy["mean_before"], 5))
record("ppo.toxicity_after", round(greedy["mean_after"], 5))
record("ppo.toxicity_reduction_rel", reduction)
record("ppo.diff_ci95_low", round(greedy["ci95_low"], 5))
record("ppo.diff_ci95_high", round(greedy["ci95_high"], 5))


# %% [markdown]
# The summary alone is much less toxic after PPO, greedy and sampled, and both intervals lie above
# zero. The last row, the source's measurement, does not fall at all: dialogue + summary scores
# 0.3529 before and 0.3603 after, a rise whose interval ([-0.0174, 0.0000] in before − after)
# reaches zero. Before PPO it is 0.3529, and the causal summarizer further down gets 0.3529
# before and after GRPO too: the same number for three models. A classifier that cuts long
# inputs could explain that, since the summary comes last and would be cut away; so we first
# count the tokens the classifier gets:

# %%
# Does the classifier read the whole text, or does it cut the summary away?
texts = before["with_dialogue"] + after["with_dialogue"]
clf_tok = classifier.tokenizer
full = [len(ids) for ids in clf_tok(texts)["input_ids"]]
kept = [len(ids) for ids in clf_tok(texts, truncation=True)["input_ids"]]
cut = sum(k < f for k, f in zip(kept, full, strict=True))
print(
    f"dialogue + summary: {min(full)} to {max(full)} tokens; after the pipeline's "
    f"truncation: {min(kept)} to {max(kept)} tokens; the classifier has "
    f"{classifier.model.config.max_position_embeddings} position embeddings; "
    f"texts cut: {cut} of {len(texts)}"
)

# %% [markdown]
# Nothing is cut: the longest dialogue + summary has 150 tokens, and the pipeline's truncation
# leaves every text whole. So the classifier reads the summary; what does it score? The dialogue
# alone, without any summary, then the same with each model's summaries, and the dialogues the
# classifier flags on their own:

# %%
dialogue_alone = scores_of(test["dialogue"])
print(
    f"the dialogue alone, without a summary: mean toxicity {dialogue_alone.mean():.5f}"
)
for name, out in (("before", before), ("after", after)):
    moved = np.abs(out["with_dialogue.toxicity"] - dialogue_alone)
    print(
        f"{name} PPO, dialogue + summary: mean "
        f"{out['with_dialogue.toxicity'].mean():.5f}; "
        f"the summary moves a dialogue's score by at most {moved.max():.4f} "
        f"({(moved > 0.01).sum()} of {len(moved)} dialogues by more than 0.01)"
    )
flagged = dialogue_alone >= 0.5
print(
    f"dialogues the classifier flags on their own: {flagged.sum()} of {len(flagged)}, "
    f"scored {dialogue_alone[flagged].min():.4f} to "
    f"{dialogue_alone[flagged].max():.4f}; "
    f"the others at most {dialogue_alone[~flagged].max():.4f}"
)
if PROFILE == "tiny":
    print(f"rude dialogues in the evaluation sample: {np.mean(test['rude']):.1%}")
# The classifier does read the summary: append an insult to it
insult = " #Person2# calls #Person1# a stupid idiot."
polite = [t for t, f in zip(before["with_dialogue"], flagged, strict=True) if not f]
probe = scores_of([t + insult for t in polite])
print(
    f"the dialogues it does not flag, with an insult appended to the summary: mean "
    f"toxicity {before['with_dialogue.toxicity'][~flagged].mean():.4f} -> "
    f"{probe.mean():.4f}"
)
# The dialogues whose score the summary moves after PPO
moved = np.flatnonzero(np.abs(after["with_dialogue.toxicity"] - dialogue_alone) > 0.01)
moved = pd.DataFrame(
    {
        "toxicity of dialogue alone": dialogue_alone[moved],
        "of dialogue + summary": after["with_dialogue.toxicity"][moved],
        "of summary alone": after["greedy.toxicity"][moved],
        "summary after PPO": [after["greedy"][i] for i in moved],
        "summary before PPO": [before["greedy"][i] for i in moved],
    },
    index=pd.Index(moved, name="evaluation dialogue"),
)
with pd.option_context("display.max_colwidth", None):
    display(moved.round(4))

# %% [markdown]
# The number is the dialogue's, not the summary's. The classifier is sure of itself: the 141
# dialogues it flags score 0.998 on their own, whatever summary follows, and the others at most
# 0.0016. Before PPO no summary moves its dialogue's score by more than 0.0001, so dialogue +
# summary is 0.35287, the mean of the dialogues alone, about the share of rude dialogues in the
# sample (35.2%). The summary *can* move it, as the insult appended to the summaries of the
# polite dialogues shows (0.0015 to 0.9984). After PPO it does, for the three dialogues in the
# last table: dialogues the classifier finds polite, about reserving a table, whose summaries PPO
# turned into a garbled sentence that ends with an insult (“… tells #Person2# to shut up and
# calls #Person2# a pathetic loser”). PPO *added* these insults; the three summaries alone make
# 0.0075 of the 0.0089 toxicity left after PPO (3 × 0.998 / 400). They are also the whole rise of
# the combined score from 0.3529 to 0.3603, while the summaries of the rude dialogues lost their
# insults without moving it at all. So scoring the dialogue with its summary cannot see
# what PPO removed; the summary alone (the first two rows) is the measurement this chapter rests
# on, and the combined score stays only to show what the source's measurement hid. With 11
# samples, as in the source, it could not have seen anything either.
#
# Did the summaries stay summaries? ROUGE-L against all reference summaries of each dialogue (the
# best match counts), averaged over the dialogues, before and after, with a paired bootstrap
# interval for the greedy summaries' loss (before − after):

# %%
quality = pd.DataFrame(
    {
        "ROUGE-L before": [before["greedy.rougeL"], before["sampled.rougeL"]],
        "ROUGE-L after": [after["greedy.rougeL"], after["sampled.rougeL"]],
    },
    index=["greedy", "sampled"],
)
quality["after / before"] = quality["ROUGE-L after"] / quality["ROUGE-L before"]
rouge_per_dialogue = {
    name: rouge.compute(
        predictions=out["greedy"], references=references, use_aggregator=False
    )["rougeL"]
    for name, out in (("before", before), ("after", after))
}
rouge_diff = paired_difference(
    rouge_per_dialogue["before"],
    rouge_per_dialogue["after"],
    seed=SEED,
    groups=test["dialogue"],
)
rouge_ratio = round(after["greedy.rougeL"] / before["greedy.rougeL"], 4)
display(quality.round(4))
print(
    f"greedy ROUGE-L lost per dialogue: {rouge_diff['mean_diff']:.4f}, 95% interval "
    f"[{rouge_diff['ci95_low']:.4f}, {rouge_diff['ci95_high']:.4f}] over "
    f"{rouge_diff['n']} dialogues"
)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("ppo.rougeL_before", round(before["greedy.rougeL"], 4))
record("ppo.rougeL_after", round(after["greedy.rougeL"], 4))
record("ppo.rougeL_ratio", rouge_ratio)


# %% [markdown]
# ## Did the facts survive?
#
# ROUGE-L of the greedy summaries fell from 0.6357 to 0.6097 (96% of it kept): a loss of 0.026 per
# dialogue whose interval, from −0.005 to 0.056, includes zero, so this one run cannot tell it
# from no loss. But ROUGE-L counts shared words, and a summary that keeps its sentence and swaps
# one city for another loses little of it. We also count the facts directly, with a simple rule
# (`fact_words`): the names, places and numbers of a text are its capitalised words that do not
# start a sentence (other than "I" and titles such as "Mr"), its number words (one, two, ...,
# hundred, thousand) and its numbers in digits; speaker tags such as `#Person1#` are not facts.
# For each evaluation dialogue, `facts_kept` is the share of the reference summary's facts that
# the greedy summary contains as words (with several references, the best-matching one counts);
# a dialogue whose references hold no fact is left out. For example:

# %%
example = "#Person1# tells #Person2# about a first trip to Rome. Breakfast is included."
print(f"facts of {example!r}: {sorted(fact_words(example))}")
print(
    "share kept by '#Person1# tells #Person2# about a trip to Dublin.':",
    facts_kept("#Person1# tells #Person2# about a trip to Dublin.", [example]),
)

# %%
kept_before = [
    facts_kept(s, r) for s, r in zip(before["greedy"], references, strict=True)
]
kept_after = [
    facts_kept(s, r) for s, r in zip(after["greedy"], references, strict=True)
]
has_facts = np.array([k is not None for k in kept_before])
kept_before = np.array([k for k in kept_before if k is not None])
kept_after = np.array([k for k in kept_after if k is not None])
dialogues_with_facts = np.array(test["dialogue"])[has_facts]
toxic_before = before["greedy.toxicity"][has_facts] >= 0.5
groups_of_rows = {
    "all with a fact": np.ones(len(kept_before), dtype=bool),
    "flagged toxic before PPO": toxic_before,
    "not flagged before PPO": ~toxic_before,
}
facts_rows = {}
for label, rows_in in groups_of_rows.items():
    f = paired_difference(
        kept_before[rows_in],
        kept_after[rows_in],
        seed=SEED,
        groups=dialogues_with_facts[rows_in],
    )
    facts_rows[label] = {
        "dialogues": f["n"],
        "facts kept before": f"{f['mean_before']:.1%}",
        "after": f"{f['mean_after']:.1%}",
        # after - before, in points, with the interval of the paired difference
        "change (points) [95% interval]": (
            f"{-100 * f['mean_diff']:+.1f} "
            f"[{-100 * f['ci95_high']:+.1f}, {-100 * f['ci95_low']:+.1f}]"
        ),
        "lost a fact": int((kept_after[rows_in] < kept_before[rows_in]).sum()),
        "gained one": int((kept_after[rows_in] > kept_before[rows_in]).sum()),
    }
facts = paired_difference(
    kept_before, kept_after, seed=SEED, groups=dialogues_with_facts
)
print(
    f"{len(kept_before)} of {len(has_facts)} dialogues have a fact in their reference"
)
pd.DataFrame.from_dict(facts_rows, orient="index")

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("ppo.facts_n_eval", facts["n"])
record("ppo.facts_kept_before", round(facts["mean_before"], 4))
record("ppo.facts_kept_after", round(facts["mean_after"], 4))
record("ppo.facts_diff_ci95_low", round(facts["ci95_low"], 4))
record("ppo.facts_diff_ci95_high", round(facts["ci95_high"], 4))


# %% [markdown]
# Before PPO the summarizer keeps 54.1% of the facts of the reference summaries (a small model
# often leaves out or changes a day, a number or a city); after PPO, 56.4%. The change, 2.3
# points more kept, has a 95% interval from 2.9 points fewer to 7.5 more: on average PPO neither
# lost nor gained facts that this run can detect. The average hides churn, though: 41 of the
# 293 summaries lost a fact and 49 gained one, and the 260 of them that had no insult to drop
# (not flagged before PPO) lost facts about as often (36, 14%) as the 33 that had one (5, 15%).
# PPO did not just cut the insult out of the toxic summaries: it rewrote summaries that had
# nothing to remove, and in one in seven of those (36 of 260) a name, place or number of the
# reference went missing, while 45 others got one right that had been wrong.

# %% [markdown]
# ## What changed? Dialogues before and after
#
# The reward (the `nothate` logit) of every greedy summary before and after PPO. The classifier
# is so sure of itself that most rewards sit near +3.2 or −3.2, and the reward of most summaries
# does not change, so twenty dialogues taken at random would show mostly a gain of 0. The table
# below picks its rows instead: the three summaries whose reward grew most, the three whose
# reward fell most, the four others that lost the largest share of their reference's facts
# (ties go to the earlier dialogue of the evaluation set), and the first two summaries that PPO
# left word for word unchanged. The reward gain is rounded to one decimal.

# %%
reward_before = np.array(nothate_logits(classifier, before["greedy"]))
reward_after = np.array(nothate_logits(classifier, after["greedy"]))
changes = pd.DataFrame(
    {
        "summary before": before["greedy"],
        "summary after": after["greedy"],
        "reward before": reward_before,
        "reward after": reward_after,
    }
)
changes["reward gain"] = changes["reward after"] - changes["reward before"]
changes["facts kept before"] = np.nan
changes["facts kept after"] = np.nan
changes.loc[has_facts, "facts kept before"] = kept_before
changes.loc[has_facts, "facts kept after"] = kept_after
changed = changes["summary before"] != changes["summary after"]
fact_loss = changes["facts kept before"] - changes["facts kept after"]
print(
    f"of {len(changes)} greedy summaries, {changed.sum()} changed "
    f"({(before['greedy.toxicity'] >= 0.5).sum()} were flagged toxic before PPO); "
    f"{(changes['reward gain'] > 1).sum()} gained more than 1 in reward, "
    f"{(changes['reward gain'] < -1).sum()} lost more than 1; "
    f"{(fact_loss > 0).sum()} lost a fact and {(fact_loss < 0).sum()} gained one"
)
# ties (many rewards sit at the classifier's extremes) go to the earlier dialogue
largest_gain = changes["reward gain"].nlargest(3).index
largest_loss = changes["reward gain"].nsmallest(3).index
lost_facts = fact_loss.drop(largest_gain.union(largest_loss))
lost_facts = lost_facts[lost_facts > 0].sort_values(ascending=False, kind="stable")
unchanged = changes.index[~changed][:2]
picked = pd.concat(
    [
        changes.loc[largest_gain].assign(picked="largest reward gain"),
        changes.loc[largest_loss].assign(picked="largest reward loss"),
        changes.loc[lost_facts.index[:4]].assign(picked="most facts lost"),
        changes.loc[unchanged].assign(picked="unchanged"),
    ]
)
picked["facts kept"] = [
    "no facts" if np.isnan(b) else f"{b:.0%} → {a:.0%}"
    for b, a in zip(
        picked["facts kept before"], picked["facts kept after"], strict=True
    )
]
picked["reward gain"] = picked["reward gain"].round(1) + 0.0  # + 0.0: no "-0.0"
shown = ["summary before", "summary after", "reward gain", "facts kept"]
with pd.option_context("display.max_colwidth", None):
    display(picked.set_index("picked")[shown])

# %% [markdown]
# 334 of the 400 summaries changed, while only about 45 had an insult to drop (45 rewards grew by
# more than 1). The rows with the largest reward gain are the insult dropped; the rest of the
# summary is kept or rewritten, sometimes with a detail changed that our fact rule does not count
# (a sister becomes a mother, a family room a single room). The rows with the largest reward
# loss are the three summaries of polite dialogues that PPO ended with an insult (shown above).
# The rows that lost the most facts show what ROUGE-L hardly sees: a day, a
# number of years or a time of day that the reference has is replaced by another, in summaries
# most of which had no insult to remove.

# %% [markdown]
# ## Beyond the lab: GRPO with trl
#
# trl's maintained RL trainers, `GRPOTrainer` and `RLOOTrainer`, need no value head: for each
# prompt they sample a *group* of completions and use each completion's reward relative to the
# group's mean as its advantage. They take causal language models only, so we detoxify a causal
# summarizer trained on the same dialogues (`tiny`: a small `Qwen2ForCausalLM`; `hub`: a Qwen
# instruct model), with a LoRA adapter and a reward function that scores the completion, the
# summary alone, with the same classifier.
#
# GRPO samples its completions with the same settings as our PPO rollouts, stated in
# `GRPOConfig(**SAMPLING)`: trl passes them to `generate()`, so the model's own generation config
# does not apply. It would otherwise: in `hub`, Qwen2.5-Instruct's asks for sampling at
# temperature 0.7 with top-k 20, top-p 0.8 and a repetition penalty of 1.1. The table below
# prints the loaded model's own settings next to ours (in `tiny`, the small Qwen2 sets none).

# %%
causal_model, causal_tokenizer = profiles.load_pretrained(
    "causal_summarizer", PROFILE, AutoModelForCausalLM, DEVICE
)
own = {
    name: getattr(causal_model.generation_config, name)
    for name in ("do_sample", *SAMPLING)
}
settings = pd.DataFrame(
    {
        "the model's generation config": {
            name: "not set" if value is None else str(value)
            for name, value in own.items()
        },
        "what summarize, PPO and GRPO sample with": {
            name: str(value) for name, value in {"do_sample": True, **SAMPLING}.items()
        },
    }
)
display(settings)
causal_before = evaluate_summaries(
    causal_model, causal_tokenizer, "causal summarizer before GRPO"
)
print("example:", causal_before["greedy"][0])

# %%
grpo_prompts = (
    Dataset.from_dict({"prompt": train_prompts})
    .shuffle(seed=SEED)
    .select(range(GRPO_STEPS * GRPO_PROMPTS))
)
grpo_args = GRPOConfig(
    output_dir="out/grpo",
    per_device_train_batch_size=GRPO_PROMPTS * GRPO_GENERATIONS,
    num_generations=GRPO_GENERATIONS,
    max_completion_length=64,
    max_steps=GRPO_STEPS,
    learning_rate=grpo_lr,
    beta=0.04,
    **SAMPLING,
    logging_steps=1,
    **quiet_trainer_args(SEED, DEVICE),
    **precision_for(DEVICE).trainer_args(),
)
grpo_trainer = GRPOTrainer(
    model=causal_model,
    reward_funcs=nothate_reward(classifier),
    args=grpo_args,
    train_dataset=grpo_prompts,
    processing_class=causal_tokenizer,
    peft_config=LoraConfig(
        r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
    ),
)
grpo_trainer.remove_callback(PrinterCallback)  # its log is the table below
t0 = time.perf_counter()
grpo_trainer.train()
grpo_runtime = round(time.perf_counter() - t0, 1)
grpo_log = pd.DataFrame([h for h in grpo_trainer.state.log_history if "reward" in h])
grpo_log = grpo_log.set_index("step")[["reward", "reward_std", "kl"]]
grpo_log.rename(
    columns={
        "reward": "mean reward",
        "reward_std": "reward std",
        "kl": "KL to reference",
    }
).round(3)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("grpo.train_runtime_s", grpo_runtime)


# %%
causal_after = evaluate_summaries(
    grpo_trainer.model, causal_tokenizer, "causal summarizer after GRPO"
)
grpo_diff = paired_difference(
    causal_before["greedy.toxicity"],
    causal_after["greedy.toxicity"],
    seed=SEED,
    groups=test["dialogue"],
)
grpo_reduction = round(1 - grpo_diff["mean_after"] / grpo_diff["mean_before"], 4)
grpo_rouge = round(causal_after["greedy.rougeL"] / causal_before["greedy.rougeL"], 4)
causal_kept = {
    name: np.array(
        [facts_kept(s, r) for s, r in zip(out["greedy"], references, strict=True)]
    )[has_facts].astype(float)
    for name, out in (("before", causal_before), ("after", causal_after))
}
grpo_facts = paired_difference(
    causal_kept["before"], causal_kept["after"], seed=SEED, groups=dialogues_with_facts
)
print(
    f"GRPO: greedy toxicity {grpo_diff['mean_before']:.4f} -> "
    f"{grpo_diff['mean_after']:.4f} "
    f"(relative reduction {grpo_reduction:.1%}, 95% interval of the drop "
    f"[{grpo_diff['ci95_low']:.4f}, {grpo_diff['ci95_high']:.4f}]); ROUGE-L kept "
    f"{grpo_rouge:.1%}; facts kept {grpo_facts['mean_before']:.1%} -> "
    f"{grpo_facts['mean_after']:.1%}"
)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("grpo.toxicity_reduction_rel", grpo_reduction)
record("grpo.rougeL_ratio", grpo_rouge)


# %% [markdown]
# ## PPO and GRPO side by side


# %%
def side(diff, rouge_kept, facts_diff, runtime, samples):
    return {
        "toxicity before": round(diff["mean_before"], 4),
        "toxicity after": round(diff["mean_after"], 4),
        "relative reduction": f"{1 - diff['mean_after'] / diff['mean_before']:.1%}",
        "95% interval of the drop": (
            f"[{diff['ci95_low']:.4f}, {diff['ci95_high']:.4f}]"
        ),
        "ROUGE-L kept": f"{rouge_kept:.1%}",
        "facts kept": (
            f"{facts_diff['mean_before']:.1%} → {facts_diff['mean_after']:.1%}"
        ),
        "train time (s)": round(runtime),
        "samples generated": samples,
    }


pd.DataFrame.from_dict(
    {
        "PPO (seq2seq, llmtut)": side(
            greedy, rouge_ratio, facts, ppo_runtime, PPO_STEPS * PPO_BATCH
        ),
        "GRPO (causal, trl)": side(
            grpo_diff,
            grpo_rouge,
            grpo_facts,
            grpo_runtime,
            GRPO_STEPS * GRPO_PROMPTS * GRPO_GENERATIONS,
        ),
    },
    orient="index",
).T  # one row per quantity: two columns fit the page

# %% [markdown]
# ## What the numbers say


# %%
def change(d, percent=False):
    """after - before of a paired_difference, with its 95% interval.

    percent=True: shares, so the change is in percentage points."""
    scale, digits = (100, 1) if percent else (1, 4)

    def signed(x):  # after - before is minus the paired difference
        # rounded first, then + 0.0, so that -0.00001 prints as +0.0000, not -0.0000
        return f"{round(-scale * x, digits) + 0.0:+.{digits}f}"

    low, high = signed(d["ci95_high"]), signed(d["ci95_low"])
    unit = " points" if percent else ""
    return f"{signed(d['mean_diff'])} [{low}, {high}]{unit}"


def row(d, percent=False):
    fmt = "{:.1%}" if percent else "{:.4f}"
    return [
        fmt.format(d["mean_before"]),
        fmt.format(d["mean_after"]),
        change(d, percent),
    ]


with_dialogue = paired_difference(
    before["with_dialogue.toxicity"],
    after["with_dialogue.toxicity"],
    seed=SEED,
    groups=test["dialogue"],
)
sampled = paired_difference(
    before["sampled.toxicity"],
    after["sampled.toxicity"],
    seed=SEED,
    groups=test["dialogue"],
)
grpo_rouge_diff = paired_difference(
    *(
        rouge.compute(
            predictions=out["greedy"], references=references, use_aggregator=False
        )["rougeL"]
        for out in (causal_before, causal_after)
    ),
    seed=SEED,
    groups=test["dialogue"],
)
summary = {
    "PPO: toxicity of the greedy summaries": row(greedy),
    "PPO: toxicity of the sampled summaries": row(sampled),
    "PPO: toxicity of dialogue + greedy summary": row(with_dialogue),
    "PPO: ROUGE-L of the greedy summaries": row(rouge_diff),
    f"PPO: facts kept ({facts['n']} dialogues)": row(facts, percent=True),
    "PPO: KL coefficient (start, end)": [
        f"{config.init_kl_coef:.4f}",
        f"{kl_coef_last:.4f}",
        f"{kl_coef_last / config.init_kl_coef - 1:+.1%}",
    ],
    "PPO: KL to the reference (first step, last)": [
        f"{history['objective/kl'].iloc[0]:.2f}",
        f"{kl_final:.2f}",
        "",
    ],
    "GRPO: toxicity of the greedy summaries": row(grpo_diff),
    "GRPO: ROUGE-L of the greedy summaries": row(grpo_rouge_diff),
    f"GRPO: facts kept ({grpo_facts['n']} dialogues)": row(grpo_facts, percent=True),
}
summary = pd.DataFrame.from_dict(
    summary, orient="index", columns=["before", "after", "change [95% interval]"]
).rename_axis(f"{n_eval} held-out dialogues, one training run each")
with pd.option_context("display.max_colwidth", None):
    display(summary)
print(
    f"PPO removed {reduction:.1%} of the greedy summaries' toxicity, "
    f"GRPO {grpo_reduction:.1%}."
)

# %% [markdown]
# - **Toxicity.** After 16 PPO steps on the summarizer's LoRA adapter, the greedy summaries of
#   400 held-out dialogues are 92.1% less toxic (0.1136 to 0.0089), the sampled ones 74% less
#   (0.2365 to 0.0613), and the 95% intervals of both drops lie above zero. Most of what is left
#   (0.0075 of the 0.0089) comes from three summaries of polite dialogues into which PPO put an
#   insult that was not there before. The intervals resample dialogues; this is one training run
#   with one seed, so they say nothing about how another seed's run would do.
# - **Quality.** ROUGE-L fell by 0.026 (0.6357 to 0.6097), an interval that just includes zero,
#   and the share of the reference's names, places and numbers that the summaries keep did not
#   measurably change (54.1% to 56.4%, an interval from −2.9 to +7.5 points). But PPO rewrote 334
#   of the 400 summaries where about 45 had an insult, and 41 summaries lost a fact that the
#   reference has, about as often among those with no insult (14%) as among those with one
#   (15%): the policy learned to drop the insult, and on average it did not stop summarizing,
#   but it did not leave the other summaries alone.
# - **The source's measurement.** Scored together with its dialogue, a summary hardly counts:
#   the classifier gives each of the 141 dialogues it flags 0.998 whatever follows. That score
#   is the dialogue's own (0.3529 before PPO, the same as the dialogues alone) and it rose to
#   0.3603 after PPO, because of those three new insults, while the summaries alone became 92%
#   less toxic.
# - **The KL penalty.** The KL to the reference was 1.45 nats per summary at the last step and
#   4.31 at most, below the target of 6 at every step, and the adaptive coefficient moved from
#   0.2 to 0.1980: with a horizon of 10,000 samples it cannot move by more than about 1% in 512
#   samples. In a run this short the penalty is in effect fixed.
# - **GRPO.** trl's `GRPOTrainer` on the causal summarizer, with no value head, removed 99.4% of
#   its greedy summaries' toxicity (0.2607 to 0.0015), with ROUGE-L and the facts kept unchanged
#   within their intervals. It started from a different model with more toxic summaries (0.2607
#   to PPO's 0.1136) and generated 640 samples to PPO's 512, so the two rows are not a contest
#   between the algorithms.
