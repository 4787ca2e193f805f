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
#   paired difference that resamples dialogues, and ROUGE-L against all of a dialogue's reference
#   summaries to check that the summaries are still summaries;
# - the same detox with trl's `GRPOTrainer` on a causal summarizer, for comparison.
#
# **On a T4.** On a free Colab T4 (15 GB) the `hub` profile needs about 10 GiB of GPU memory at its
# fullest and about 6 minutes (estimated from the real models' shapes and its `hub` settings by
# `llmtut.t4_plan`; nothing was measured on a GPU). The `tiny` profile runs on a CPU.

# %%
# Colab only: install llmtut, the book's package (it brings transformers, trl, peft, ...).
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "llmtut @ git+https://github.com/llmtut/llmtut"], check=True)

# %%
import inspect
import time

import evaluate
import matplotlib.pyplot as plt
from IPython.display import display
import numpy as np
import pandas as pd
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, pipeline
from trl import GRPOConfig, GRPOTrainer

from llmtut import ppo, profiles
from llmtut.detox import SAMPLING, generation_settings, nothate_logits, nothate_reward, reference_lists, summarize
from llmtut.evaluation import load_toxicity, module_path, paired_difference
from llmtut.formats import summary_prompt
from llmtut.ppo import PPOConfig, Seq2SeqPPOTrainer
from llmtut.precision import precision_for
from llmtut.report import record
from llmtut.trainer_defaults import quiet_trainer_args

# %% [markdown]
# The chapter's parameters. `PROFILE = "hub"` runs it on the source's models (google/flan-t5-base,
# facebook/roberta-hate-speech-dynabench-r4-target, knkarthick/dialogsum, and a Qwen instruct model
# for GRPO), on a GPU. `PROFILE = "tiny"` runs it offline on the tiny world's models, which
# `llmtut` trains itself on generated conversations. papermill overrides these values.

# %% tags=["parameters"]
PROFILE = profiles.default_profile()  # "hub" or "tiny"
SEED = 0
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
N_EVAL = 400  # distinct held-out dialogues for the before/after evaluation (at most the test split's)
PPO_STEPS = 16  # PPO steps of PPO_BATCH rollouts each
PPO_BATCH = 32
PPO_LR = None  # None: the profile's default below
GRPO_STEPS = 20  # GRPO steps of GRPO_PROMPTS prompts x GRPO_GENERATIONS completions
GRPO_PROMPTS = 4
GRPO_GENERATIONS = 8
GRPO_LR = None

# %%
profiles.check_profile(PROFILE)
# LoRA adapters take larger steps than full fine-tuning (the source's 1.41e-5 was for the whole model).
ppo_lr = PPO_LR or {"tiny": 1e-3, "hub": 1e-4}[PROFILE]
grpo_lr = GRPO_LR or {"tiny": 3e-3, "hub": 5e-5}[PROFILE]
torch.manual_seed(SEED)
print(f"profile={PROFILE} device={DEVICE} seed={SEED} n_eval={N_EVAL} ppo: {PPO_STEPS} steps x {PPO_BATCH}, "
      f"lr={ppo_lr}; grpo: {GRPO_STEPS} steps x {GRPO_PROMPTS}x{GRPO_GENERATIONS}, lr={grpo_lr}")

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
print(data)
record("data.n_train", len(data["train"]))
test = data["test"].shuffle(seed=SEED).select(range(min(N_EVAL, len(data["test"]))))
references = reference_lists(test)
print(f"evaluation set: {len(set(test['dialogue']))} distinct dialogues in {len(test)} rows, "
      f"{sum(map(len, references))} reference summaries ({min(map(len, references))} to "
      f"{max(map(len, references))} per dialogue)")
if PROFILE == "tiny":
    rude = [d for d in data["test"] if d["rude"]]
    print(f"rude dialogues: {sum(data['train']['rude']) / len(data['train']):.0%} of train; "
          f"{sum(data['train']['toxic_summary']) / len(data['train']):.0%} of the train summaries repeat an insult")
    print(rude[0]["dialogue"], "\n\nReference summary:", rude[0]["summary"])

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
base_model, tokenizer = profiles.load_pretrained("summarizer", PROFILE, AutoModelForSeq2SeqLM, DEVICE)
lora = LoraConfig(r=32, lora_alpha=32, target_modules=["q", "v"], lora_dropout=0.05, task_type="SEQ_2_SEQ_LM")
policy = get_peft_model(base_model, lora)
trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
total = sum(p.numel() for p in policy.parameters())
print(f"{type(base_model).__name__}: {total:,} parameters, {trainable:,} trainable in the adapter "
      f"({trainable / total:.1%})")

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
#   another seed. Short lines recur in a small world, so some of these 600 are in its training set
#   too: the number checks that it learned its task, not how it generalizes.
# - `hub`: facebook/roberta-hate-speech-dynabench-r4-target never saw this generator. The number
#   says whether it flags the tiny world's insults in synthetic sentences shaped like the
#   dialogues: a sanity check, **not a benchmark of the Hub classifier** (it was built and
#   evaluated on the Dynabench hate-speech data).

# %%
classifier_path = profiles.resolve("toxicity_classifier", PROFILE)
classifier = pipeline("text-classification", model=classifier_path, device=DEVICE,
                      **precision_for(DEVICE).load_kwargs(trains=False))  # it only scores: fp16 on a T4
print(classifier.model.config.id2label)
heldout = profiles.toxicity_sentences(600, seed=SEED + 1000)  # not the classifier's training seed
predicted = classifier([t for t, _ in heldout], batch_size=64, truncation=True)
accuracy = np.mean([(p["label"] == "hate") == bool(y) for p, (_, y) in zip(predicted, heldout, strict=True)])
accuracy = record("classifier.accuracy", round(float(accuracy), 4))
meaning = {"tiny": "the tiny-world classifier on sentences of the generator it was trained on (another seed)",
           "hub": f"{classifier_path} on synthetic tiny-world sentences (a sanity check, not a benchmark)"}
print(f"accuracy of {meaning[PROFILE]}: {accuracy:.1%} of {len(heldout)} sentences "
      f"({sum(y for _, y in heldout)} toxic)")

# %% [markdown]
# Now the reward for a friendly and an insulting summary, as logits and as probabilities:

# %%
examples = ["#Person1# books a table for two at seven. #Person2# recommends the fish soup.",
            "#Person2# calls #Person1# a stupid idiot. #Person1# books a table for two at seven."]
for text in examples:
    logits = classifier(text, top_k=None, function_to_apply="none")
    probs = classifier(text, top_k=None)
    print(f"{text!r}\n  logits {[(o['label'], round(o['score'], 2)) for o in logits]}"
          f"\n  probabilities {[(o['label'], round(o['score'], 3)) for o in probs]}")
print("rewards (nothate logits):", [round(r, 2) for r in nothate_logits(classifier, examples)])

# %% [markdown]
# ## Measuring toxicity with `evaluate`
#
# The source measures toxicity with `evaluate.load("toxicity", ...)`, a script that `evaluate`
# downloads from the Hugging Face Hub. `llmtut` ships the same measurement (and ROUGE) as local
# modules, so `evaluate.load(<path>)` works offline in both profiles. The toxicity of a text is the
# classifier's probability of `hate`; the module can also aggregate to the maximum, or to the
# share of texts above a threshold.

# %%
toxicity = load_toxicity(classifier_path, device=DEVICE)
rouge = evaluate.load(module_path("rouge"))
print(toxicity.compute(predictions=examples, toxic_label="hate"))
print(toxicity.compute(predictions=examples, toxic_label="hate", aggregation="maximum"))
print(toxicity.compute(predictions=examples, toxic_label="hate", aggregation="ratio", threshold=0.5))


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
def evaluate_summaries(model, tok, name):
    """Greedy and sampled summaries of the test dialogues, their toxicity and ROUGE-L."""
    out = {}
    for mode in ("greedy", "sampled"):
        summaries = summarize(model, tok, test["dialogue"], do_sample=mode == "sampled", seed=SEED)
        out[mode] = summaries
        out[f"{mode}.toxicity"] = np.array(toxicity.compute(predictions=summaries, toxic_label="hate")["toxicity"])
        out[f"{mode}.rougeL"] = rouge.compute(predictions=summaries, references=references)["rougeL"]
    with_dialogue = [f"{d}\n{s}" for d, s in zip(test["dialogue"], out["greedy"], strict=True)]
    out["with_dialogue.toxicity"] = np.array(toxicity.compute(predictions=with_dialogue, toxic_label="hate")["toxicity"])
    print(f"{name}: toxicity greedy {out['greedy.toxicity'].mean():.4f}, sampled {out['sampled.toxicity'].mean():.4f}, "
          f"dialogue+summary {out['with_dialogue.toxicity'].mean():.4f}; ROUGE-L greedy {out['greedy.rougeL']:.4f}, "
          f"sampled {out['sampled.rougeL']:.4f}")
    return out


t0 = time.perf_counter()
with policy.disable_adapter():
    before = evaluate_summaries(policy, tokenizer, "before")
print(f"({time.perf_counter() - t0:.0f}s)")

# %% [markdown]
# ## PPO, written out
#
# PPO treats generation as a sequence of decisions, one per token. For each batch of prompts:
#
# 1. **Rollout**: the policy samples a summary for each prompt, to its end-of-sequence token.
# 2. **Reward**: the classifier scores each summary; its `nothate` logit is the reward at the last
#    token. Every token also pays a KL penalty, `-kl_coef * (log p_policy - log p_reference)`,
#    so the policy cannot drift into gibberish that happens to fool the classifier.
# 3. **Advantages**: a value head on the decoder predicts the return at every token; generalized
#    advantage estimation (GAE) turns rewards and values into per-token advantages.
# 4. **Update**: a few epochs of minibatch steps on the clipped policy loss (the probability ratio
#    to the rollout policy is clipped to 1 ± 0.2) plus a clipped value loss.
# 5. **KL control**: the KL coefficient adapts towards a target KL.
#
# The reference is the same model with the adapter switched off, so there is no second copy of the
# weights, and every forward pass runs with dropout off. With dropout on, policy and reference
# disagree even with identical weights: the lab's large KL at its very first step came from that.
# The heart of it, GAE and the clipped losses:

# %%
print(inspect.getsource(ppo.compute_gae))
print(inspect.getsource(ppo.clipped_policy_loss))

# %% [markdown]
# `Seq2SeqPPOTrainer.step` puts these together and returns statistics under trl's old names. Our
# loop samples a batch of training dialogues, generates, scores and steps, and also tracks the
# toxicity of each batch's summaries:

# %%
config = PPOConfig(learning_rate=ppo_lr, batch_size=PPO_BATCH, mini_batch_size=8, ppo_epochs=4,
                   init_kl_coef=0.2, target=6.0, seed=SEED)
ppo_trainer = Seq2SeqPPOTrainer(config, policy, tokenizer)
# every sampling setting stated, as in `summarize`
generation_kwargs = dict(**generation_settings(do_sample=True), min_length=5, max_new_tokens=64)
train_prompts = [summary_prompt(d) for d in data["train"]["dialogue"]]
rng = np.random.default_rng(SEED)
torch.manual_seed(SEED)
history = []
t0 = time.perf_counter()
for _ in tqdm(range(PPO_STEPS), desc="PPO"):
    batch = [train_prompts[i] for i in rng.choice(len(train_prompts), PPO_BATCH, replace=False)]
    queries = [tokenizer(p, return_tensors="pt")["input_ids"][0].to(DEVICE) for p in batch]
    responses = ppo_trainer.generate(queries, **generation_kwargs)
    summaries = tokenizer.batch_decode(responses, skip_special_tokens=True)
    rewards = [torch.tensor(r) for r in nothate_logits(classifier, summaries)]
    stats = ppo_trainer.step(queries, responses, rewards)
    stats["env/toxicity"] = float(np.mean(toxicity.compute(predictions=summaries, toxic_label="hate")["toxicity"]))
    history.append(stats)
ppo_runtime = time.perf_counter() - t0
history = pd.DataFrame(history)
history[["objective/kl", "objective/kl_coef", "ppo/mean_scores", "ppo/returns/mean",
         "ppo/policy/advantages_mean", "ppo/policy/clipfrac", "env/toxicity"]].round(3)

# %% [markdown]
# The reward, the KL to the reference and the toxicity of the rollouts, step by step. The KL
# starts at exactly zero (the adapter is the identity, and no dropout) and grows as the policy moves:

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
for ax, (column, title) in zip(axes, [("ppo/mean_scores", "mean reward (nothate logit)"),
                                      ("objective/kl", "KL(policy || reference) per summary"),
                                      ("env/toxicity", "mean toxicity of the rollouts")], strict=True):
    ax.plot(history.index + 1, history[column], marker="o")
    ax.set(xlabel="PPO step", title=title)
fig.tight_layout()
plt.show()
print(f"first-step KL: {history['objective/kl'].iloc[0]}; PPO took {ppo_runtime:.0f}s")

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
    d = paired_difference(before[f"{view}.toxicity"], after[f"{view}.toxicity"], seed=SEED,
                          groups=test["dialogue"])
    rows[view] = {"toxicity before": d["mean_before"], "toxicity after": d["mean_after"],
                  "relative reduction": 1 - d["mean_after"] / d["mean_before"], "mean diff": d["mean_diff"],
                  "std diff": d["std_diff"], "95% CI low": d["ci95_low"], "95% CI high": d["ci95_high"]}
print(f"each interval resamples {d['n']} dialogues")
comparison = pd.DataFrame(rows).T.rename(index={"greedy": "summary (greedy)", "sampled": "summary (sampled)",
                                                "with_dialogue": "dialogue + summary (greedy)"})
comparison.round(4)

# %% [markdown]
# Read the last row against the first. Scored with the dialogue in front of it, a summary of a rude
# conversation is toxic whatever the summary says, because the dialogue itself contains the
# insults; a summary of a polite one is not. So "before" and "after" both sit near the share of
# rude dialogues in the sample (printed below), and the change PPO made nearly vanishes. That is the
# source's measurement, and with 11 samples it could not have seen anything.

# %%
if PROFILE == "tiny":
    print(f"rude dialogues in the evaluation sample: {np.mean(test['rude']):.1%}")

# %% [markdown]
# Did the summaries stay summaries? ROUGE-L against all reference summaries of each dialogue (the
# best match counts), averaged over the dialogues, before and after:

# %%
quality = pd.DataFrame({"before": [before["greedy.rougeL"], before["sampled.rougeL"]],
                        "after": [after["greedy.rougeL"], after["sampled.rougeL"]]}, index=["greedy", "sampled"])
quality["ratio"] = quality["after"] / quality["before"]
quality.round(4)

# %% [markdown]
# ## What changed? Twenty dialogues, before and after
#
# The reward of each greedy summary before and after, for 20 test dialogues, sorted by how much the
# reward grew:

# %%
rewards_before = nothate_logits(classifier, before["greedy"][:20])
rewards_after = nothate_logits(classifier, after["greedy"][:20])
qualitative = pd.DataFrame({"summary before": before["greedy"][:20], "summary after": after["greedy"][:20],
                            "reward before": rewards_before, "reward after": rewards_after})
qualitative["reward gain"] = qualitative["reward after"] - qualitative["reward before"]
with pd.option_context("display.max_colwidth", 200):
    display(qualitative.sort_values("reward gain", ascending=False).round(2))

# %% [markdown]
# ## The numbers this chapter stands on

# %%
greedy = paired_difference(before["greedy.toxicity"], after["greedy.toxicity"], seed=SEED,
                           groups=test["dialogue"])
record("ppo.n_eval", greedy["n"])  # distinct dialogues: the bootstrap's units
record("ppo.toxicity_before", round(greedy["mean_before"], 5))
record("ppo.toxicity_after", round(greedy["mean_after"], 5))
record("ppo.toxicity_reduction_rel", round(1 - greedy["mean_after"] / greedy["mean_before"], 4))
record("ppo.diff_ci95_low", round(greedy["ci95_low"], 5))
record("ppo.diff_ci95_high", round(greedy["ci95_high"], 5))
record("ppo.rougeL_before", round(before["greedy.rougeL"], 4))
record("ppo.rougeL_after", round(after["greedy.rougeL"], 4))
record("ppo.rougeL_ratio", round(after["greedy.rougeL"] / before["greedy.rougeL"], 4))
record("ppo.kl_final", round(history["objective/kl"].iloc[-1], 4))
ppo_runtime = record("ppo.train_runtime_s", round(ppo_runtime, 1))

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
# does not apply. It would otherwise: printed below, Qwen2.5-Instruct's asks for sampling at
# temperature 0.7 with top-k 20, top-p 0.8 and a repetition penalty of 1.1 (in `tiny`, the small
# Qwen2 sets none of them).

# %%
causal_model, causal_tokenizer = profiles.load_pretrained("causal_summarizer", PROFILE, AutoModelForCausalLM, DEVICE)
own = {name: getattr(causal_model.generation_config, name) for name in ("do_sample", *SAMPLING)}
print(f"the model's generation config: {own}\nwhat summarize, PPO and GRPO sample with: {SAMPLING}")

causal_before = evaluate_summaries(causal_model, causal_tokenizer, "causal summarizer before GRPO")
print("example:", causal_before["greedy"][0])

# %%
grpo_prompts = Dataset.from_dict({"prompt": train_prompts}).shuffle(seed=SEED).select(range(GRPO_STEPS * GRPO_PROMPTS))
grpo_args = GRPOConfig(
    output_dir="out/grpo", per_device_train_batch_size=GRPO_PROMPTS * GRPO_GENERATIONS,
    num_generations=GRPO_GENERATIONS, max_completion_length=64, max_steps=GRPO_STEPS, learning_rate=grpo_lr,
    beta=0.04, **SAMPLING, logging_steps=1,
    **quiet_trainer_args(SEED, DEVICE), **precision_for(DEVICE).trainer_args(),
)
grpo_trainer = GRPOTrainer(
    model=causal_model, reward_funcs=nothate_reward(classifier), args=grpo_args, train_dataset=grpo_prompts,
    processing_class=causal_tokenizer,
    peft_config=LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
)
t0 = time.perf_counter()
grpo_trainer.train()
grpo_runtime = time.perf_counter() - t0
grpo_log = pd.DataFrame([h for h in grpo_trainer.state.log_history if "reward" in h])
grpo_log[["step", "reward", "reward_std", "kl"]].round(3).T

# %%
causal_after = evaluate_summaries(grpo_trainer.model, causal_tokenizer, "causal summarizer after GRPO")
grpo_diff = paired_difference(causal_before["greedy.toxicity"], causal_after["greedy.toxicity"], seed=SEED,
                              groups=test["dialogue"])
record("grpo.toxicity_reduction_rel", round(1 - grpo_diff["mean_after"] / grpo_diff["mean_before"], 4))
record("grpo.rougeL_ratio", round(causal_after["greedy.rougeL"] / causal_before["greedy.rougeL"], 4))
grpo_runtime = record("grpo.train_runtime_s", round(grpo_runtime, 1))

# %% [markdown]
# ## PPO and GRPO side by side

# %%
pd.DataFrame({
    "PPO (seq2seq, llmtut)": {"toxicity before": greedy["mean_before"], "toxicity after": greedy["mean_after"],
                              "relative reduction": 1 - greedy["mean_after"] / greedy["mean_before"],
                              "95% CI of the difference": f"[{greedy['ci95_low']:.4f}, {greedy['ci95_high']:.4f}]",
                              "ROUGE-L kept": after["greedy.rougeL"] / before["greedy.rougeL"],
                              "train time (s)": ppo_runtime, "samples generated": PPO_STEPS * PPO_BATCH},
    "GRPO (causal, trl)": {"toxicity before": grpo_diff["mean_before"], "toxicity after": grpo_diff["mean_after"],
                           "relative reduction": 1 - grpo_diff["mean_after"] / grpo_diff["mean_before"],
                           "95% CI of the difference": f"[{grpo_diff['ci95_low']:.4f}, {grpo_diff['ci95_high']:.4f}]",
                           "ROUGE-L kept": causal_after["greedy.rougeL"] / causal_before["greedy.rougeL"],
                           "train time (s)": grpo_runtime,
                           "samples generated": GRPO_STEPS * GRPO_PROMPTS * GRPO_GENERATIONS},
}).T

# %% [markdown]
# ## What the numbers say
#
# - Before PPO, the summaries of rude dialogues repeat the insults; the summary-alone toxicity
#   above is the share of that the classifier sees. After a few PPO steps on the summarizer's
#   LoRA adapter, the toxicity of the same held-out summaries falls by the relative reduction in
#   the table, and the bootstrap interval of the paired difference lies above zero.
# - ROUGE-L barely moves: the policy learned to *drop the insult*, not to stop summarizing. The KL
#   penalty is what keeps it there; the KL curve shows how far it moved.
# - Scoring the dialogue together with the summary (the source's measurement) hides most of the
#   effect, because the dialogue's own insults dominate the score.
# - GRPO reaches a similar result on the causal summarizer without a value head, by comparing
#   completions of the same prompt with each other.
