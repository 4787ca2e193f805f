"""What each chapter needs on a free Colab T4, planned from the real models' shapes before a GPU is used.

Memory is counted from the real configs (`HUB_CONFIGS`, copied from each model's `config.json` on the
Hub): the parameters are counted exactly by building the model on the meta device (no weights, no
download), and the rest follows from the chapter's `hub` settings (batch, lengths, what it keeps
loaded). Time is an estimate from FLOPs at a T4's rates and from its memory bandwidth for generation;
the assumptions are the constants below. A T4 has 15 GiB that torch can use; a plan must stay within
`BUDGET_GIB`, which leaves room for fragmentation.

The terms, per model: weights in their dtype (`llmtut.precision`: fp32 for a model that trains, fp16
for one that only infers); for full training, fp32 gradients and AdamW's two fp32 moments, plus the
fp16 copy of the weights that autocast keeps during the forward pass; activations saved for the
backward pass (per layer and token: 10 x hidden + 2 x intermediate values in fp16, or one fp32
hidden vector per layer with gradient checkpointing, after Korthikanti et al. 2022); the training
logits (fp16 logits, their fp32 log-softmax and two gradients: 12 bytes per batch x length x vocab);
the KV cache of generation; and each CUDA process's context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
)

GIB = 2**30
BUDGET_GIB = 14.0  # of the T4's 15 GiB, the rest is slack for the allocator's fragmentation
TIME_BUDGET_MIN = 20.0  # "about 20 minutes": an estimate, so within 10% of it (`Plan.fits`)
CUDA_CONTEXT_GIB = 0.5  # per process: the CUDA runtime and torch's kernels

# A T4 (compute capability 7.5): NVIDIA's data sheet figures and what a run reaches of them.
T4_FP16_TFLOPS = 65.0  # tensor cores, mixed precision
T4_FP32_TFLOPS = 8.1
T4_BANDWIDTH_GBS = 320.0
MFU = 0.3  # share of the peak a transformers training step reaches (assumed)
STEP_OVERHEAD_S = 0.02  # per generated token or optimizer step: Python, kernel launches (assumed)
DOWNLOAD_MBS = 100.0  # Colab's download rate from the Hub (assumed)

# The real models' configs: the values from each model's config.json on the Hugging Face Hub that
# decide its shapes (the rest are the architecture's defaults), and the dtype of its checkpoint.
HUB_CONFIGS: dict[str, dict] = {
    "bigscience/bloom-560m": dict(model_type="bloom", vocab_size=250880, hidden_size=1024, n_layer=24,
                                  n_head=16),
    "openai-community/gpt2-medium": dict(model_type="gpt2", vocab_size=50257, n_embd=1024, n_layer=24, n_head=16,
                                         n_positions=1024),
    # (its config says tie_word_embeddings false; transformers 5 ties T5's output layer anyway)
    "google/flan-t5-base": dict(model_type="t5", vocab_size=32128, d_model=768, d_kv=64, d_ff=2048, num_layers=12,
                                num_decoder_layers=12, num_heads=12, feed_forward_proj="gated-gelu",
                                tie_word_embeddings=False),
    "facebook/roberta-hate-speech-dynabench-r4-target": dict(
        model_type="roberta", vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, num_labels=2),
    "Qwen/Qwen2.5-0.5B": dict(model_type="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864,
                              num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                              tie_word_embeddings=True),
    "Qwen/Qwen2.5-1.5B-Instruct": dict(model_type="qwen2", vocab_size=151936, hidden_size=1536,
                                       intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                                       num_key_value_heads=2, tie_word_embeddings=True),
    "Qwen/Qwen2.5-3B-Instruct": dict(model_type="qwen2", vocab_size=151936, hidden_size=2048, intermediate_size=11008,
                                     num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2,
                                     tie_word_embeddings=True),
    "Qwen/Qwen2.5-7B-Instruct": dict(model_type="qwen2", vocab_size=152064, hidden_size=3584, intermediate_size=18944,
                                     num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                                     tie_word_embeddings=False),
}
HUB_CONFIGS["Qwen/Qwen2.5-0.5B-Instruct"] = HUB_CONFIGS["Qwen/Qwen2.5-0.5B"]
CHECKPOINT_BYTES_PER_PARAM = {"bigscience/bloom-560m": 2, "Qwen/Qwen2.5-0.5B": 2, "Qwen/Qwen2.5-0.5B-Instruct": 2,
                              "Qwen/Qwen2.5-1.5B-Instruct": 2, "Qwen/Qwen2.5-3B-Instruct": 2,
                              "Qwen/Qwen2.5-7B-Instruct": 2}  # the others are stored in fp32
_AUTO_CLASS = {"t5": AutoModelForSeq2SeqLM, "roberta": AutoModelForSequenceClassification}


@dataclass(frozen=True)
class Shape:
    """What the plan needs of a model: its parameter count and its layer shapes."""

    n_params: int
    vocab: int
    hidden: int
    intermediate: int
    layers: int
    kv_width: int  # keys (or values) per token and layer: kv heads x head dim

    @property
    def checkpoint_gib(self) -> float:
        return self.n_params * 4 / GIB


@cache
def shape(hub_id: str) -> Shape:
    """The shapes of the Hub model `hub_id`, its parameters counted on the meta device (no weights)."""
    values = dict(HUB_CONFIGS[hub_id])
    config = AutoConfig.for_model(values.pop("model_type"), **values)
    with torch.device("meta"):
        model = _AUTO_CLASS.get(config.model_type, AutoModelForCausalLM).from_config(config)
    n_params = sum(p.numel() for p in model.parameters())  # shared (tied) tensors are listed once
    text = config.get_text_config()
    hidden = getattr(text, "hidden_size", None) or text.d_model
    heads = getattr(text, "num_attention_heads", None) or text.num_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "d_kv", None) or hidden // heads
    layers = getattr(text, "num_hidden_layers", None) or text.num_layers
    if config.model_type == "t5":
        layers += text.num_decoder_layers
    intermediate = (getattr(text, "intermediate_size", None) or getattr(text, "d_ff", None)
                    or getattr(text, "n_inner", None) or 4 * hidden)
    return Shape(n_params, text.vocab_size, hidden, intermediate, layers, kv_heads * head_dim)


def checkpoint_download_gib(hub_id: str) -> float:
    return shape(hub_id).n_params * CHECKPOINT_BYTES_PER_PARAM.get(hub_id, 4) / GIB


# ---------------------------------------------------------------------------------------------
# Memory terms, in GiB
# ---------------------------------------------------------------------------------------------


def weights_gib(hub_id: str, bytes_per_param: int) -> float:
    return shape(hub_id).n_params * bytes_per_param / GIB


def full_training_gib(hub_id: str, mixed: bool = True) -> float:
    """fp32 gradients, AdamW's two fp32 moments and (mixed precision) autocast's fp16 weight copies."""
    return shape(hub_id).n_params * (4 + 8 + (2 if mixed else 0)) / GIB


def activations_gib(hub_id: str, tokens: int, checkpointing: bool = False, mixed: bool = True) -> float:
    """What a training step saves for its backward pass, for `tokens` tokens (batch x padded length)."""
    s = shape(hub_id)
    if checkpointing:  # each layer's fp32 input, plus one layer recomputed at a time
        return tokens * (4 * s.hidden * s.layers + 2 * (10 * s.hidden + 2 * s.intermediate)) / GIB
    return tokens * s.layers * (10 * s.hidden + 2 * s.intermediate) * (2 if mixed else 4) / GIB


def logits_gib(hub_id: str, tokens: int, mixed: bool = True) -> float:
    """The training logits over the vocabulary: the logits, their fp32 log-softmax and two gradients."""
    return tokens * shape(hub_id).vocab * (12 if mixed else 16) / GIB


def kv_cache_gib(hub_id: str, sequences: int, length: int, bytes_per_value: int = 2) -> float:
    s = shape(hub_id)
    return 2 * s.layers * s.kv_width * sequences * length * bytes_per_value / GIB


# ---------------------------------------------------------------------------------------------
# Time terms, in seconds
# ---------------------------------------------------------------------------------------------


def training_s(hub_id: str, tokens: int, steps: int, mixed: bool = True, checkpointing: bool = False,
               trainable_share: float = 1.0) -> float:
    """`tokens` tokens in total over `steps` optimizer steps: 6 FLOPs per parameter and token (2 without
    weight gradients, for the frozen part of a LoRA model; +2 to recompute with checkpointing)."""
    n = shape(hub_id).n_params
    flops = tokens * n * (4 + 2 * trainable_share + (2 if checkpointing else 0))
    rate = (T4_FP16_TFLOPS if mixed else T4_FP32_TFLOPS) * 1e12 * MFU
    return flops / rate + steps * STEP_OVERHEAD_S


def generation_s(hub_id: str, batches: int, new_tokens: int, bytes_per_param: int = 2) -> float:
    """`batches` batches of `new_tokens` decoding steps, each reading every weight once."""
    per_step = weights_gib(hub_id, bytes_per_param) * GIB / (T4_BANDWIDTH_GBS * 1e9) + STEP_OVERHEAD_S
    return batches * new_tokens * per_step


def forward_s(hub_id: str, tokens: int, bytes_per_param: int = 2) -> float:
    """Scoring `tokens` tokens (no generation): 2 FLOPs per parameter and token."""
    rate = (T4_FP16_TFLOPS if bytes_per_param == 2 else T4_FP32_TFLOPS) * 1e12 * MFU
    return 2 * shape(hub_id).n_params * tokens / rate


# ---------------------------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """A chapter at its `hub` settings on a T4: the memory at its fullest moment, term by term, and the
    time of its phases."""

    chapter: str
    settings: str
    peak_moment: str
    memory: dict[str, float]  # term -> GiB at the peak moment
    time_s: dict[str, float]  # phase -> seconds
    models: list[str] = field(default_factory=list)

    @property
    def peak_gib(self) -> float:
        return sum(self.memory.values())

    @property
    def minutes(self) -> float:
        return sum(self.time_s.values()) / 60

    def fits(self) -> bool:
        return self.peak_gib <= BUDGET_GIB and self.minutes <= 1.1 * TIME_BUDGET_MIN

    def opening(self) -> str:
        """The sentence a chapter's opening gives about a T4 (tests/test_t4_plan.py checks it is there)."""
        minutes = f"{self.minutes:.0f} minute" + ("" if round(self.minutes) == 1 else "s")
        return (f"On a free Colab T4 (15 GB) the `hub` profile needs about {self.peak_gib:.0f} GiB of GPU memory "
                f"at its fullest and about {minutes}")


def downloads_s(models: list[str]) -> float:
    return sum(checkpoint_download_gib(m) for m in models) * GIB / (DOWNLOAD_MBS * 1e6)


# The longest rows of the real data, in tokens of the real GPT-2 tokenizer (Qwen2.5's and T5's
# byte-level or sentencepiece tokenizers give similar counts for English). Measured on the files of
# `../shared/hub-samples`; tests/test_t4_plan.py measures them again where those files are present.
LONGEST = {
    "instruction_alpaca": 92,  # chapter 01: a record in the Alpaca format with its response, plus <|endoftext|>
    "instruction_phi3": 79,  # chapter 07: a record in Phi-3's format with its response
    "dialogsum_prompt": 355,  # chapter 05: the summary prompt of the longest dialogue kept (200-1000 characters)
    "arc_question": 195,  # chapter 06: a formatted ARC-Easy question with its choices
}
TRANSLATION_ROW = 48  # chapters 02-04: a one-word translation exchange in a chat template (tiny rows)
RATIONALE = 60  # chapter 06: the teacher's max_tokens, and the longest rationale a row holds
SUMMARY = 64  # chapter 05: max_new_tokens of every summary


def _plan(chapter: str, settings: str, models: list[str], moments: dict[str, dict[str, float]],
          time_s: dict[str, float]) -> Plan:
    """A plan whose memory is its fullest moment's."""
    moment = max(moments, key=lambda m: sum(moments[m].values()))
    return Plan(chapter, settings, moment, {k: round(v, 3) for k, v in moments[moment].items()},
                {"download the models": downloads_s(models), **time_s}, models)


def plan_01() -> Plan:
    gpt2, judge = "openai-community/gpt2-medium", "Qwen/Qwen2.5-3B-Instruct"
    batch, length, epochs, n_train, n_test, new_tokens, eval_freq, eval_iter = 8, LONGEST["instruction_alpaca"], 2, 935, 110, 256, 5, 5
    steps = epochs * (n_train // batch)
    training = {  # the source's own loop, in fp32, as the source; the base and the first fine-tune stay loaded
        "gpt2-medium x3 (base, fine-tuned, training), fp32": 3 * weights_gib(gpt2, 4),
        "gradients and AdamW state": full_training_gib(gpt2, mixed=False),
        "activations": activations_gib(gpt2, batch * length, mixed=False),
        "logits": logits_gib(gpt2, batch * length, mixed=False),
        "CUDA context": CUDA_CONTEXT_GIB,
    }
    judging = {  # after the three models are freed, a second process serves the judge in fp16
        "judge Qwen2.5-3B-Instruct, fp16": weights_gib(judge, 2),
        "judge's KV cache (one request of 1,000 tokens)": kv_cache_gib(judge, 1, 1000),
        "CUDA context x2 (notebook, judge server)": 2 * CUDA_CONTEXT_GIB,
    }
    evals = 2 * (steps // eval_freq) * 2 * eval_iter * batch * length
    time_s = {
        "two fine-tunes (fp32)": 2 * training_s(gpt2, steps * batch * length, steps, mixed=False),
        "loss evaluations": forward_s(gpt2, evals, bytes_per_param=4),
        "answers of 3 models": 3 * generation_s(gpt2, math.ceil(n_test / 32), new_tokens, bytes_per_param=4),
        "judge: 330 scores": generation_s(judge, 3 * n_test, 4) + forward_s(judge, 3 * n_test * 400),
    }
    return _plan("01_instruction_data", f"batch {batch}, {epochs} epochs, rows up to {length} tokens",
                 [gpt2, judge], {"training the second model": training, "judging": judging}, time_s)


def _lora_chapter(chapter: str, kept_models: int, runs: int, extra: str) -> Plan:
    """Chapters 02-04: bloom-560m with LoRA on five one-word examples, batch 1, at most 60 epochs per run;
    `kept_models` copies stay loaded while the last run trains (the base, earlier runs compared later)."""
    bloom, epochs, examples = "bigscience/bloom-560m", 60, 5
    steps = epochs * examples
    memory = {
        f"bloom-560m x{kept_models + 1} (kept, training), fp32": (kept_models + 1) * weights_gib(bloom, 4),
        "autocast's fp16 weight copies": weights_gib(bloom, 2),
        "activations and logits": activations_gib(bloom, TRANSLATION_ROW) + logits_gib(bloom, TRANSLATION_ROW),
        "CUDA context": CUDA_CONTEXT_GIB,
    }
    time_s = {  # at most: every run to its last epoch, answering the five prompts after each epoch
        f"{runs} runs, training": runs * training_s(bloom, steps * TRANSLATION_ROW, steps, trainable_share=0.01),
        f"{runs} runs, answers after each epoch": runs * generation_s(bloom, epochs, 8, bytes_per_param=4),
    }
    return _plan(chapter, f"LoRA r=8, batch 1, at most {epochs} epochs per run, {runs} runs{extra}", [bloom],
                 {"the last run training": memory}, time_s)


def plan_05() -> Plan:
    t5, clf, qwen = "google/flan-t5-base", "facebook/roberta-hate-speech-dynabench-r4-target", "Qwen/Qwen2.5-0.5B-Instruct"
    prompt, n_eval, ppo_steps, ppo_batch, mini, ppo_epochs = LONGEST["dialogsum_prompt"], 400, 16, 32, 8, 4
    grpo_steps, prompts, generations = 20, 4, 8
    micro = prompts * generations  # one step's completions in one batch
    t5_kept = {  # the policy is the summarizer with a LoRA adapter (off: the reference); two classifiers
        "flan-t5-base with LoRA, fp32": weights_gib(t5, 4),
        "hate-speech classifier x2 (reward fp16, toxicity measure fp32)": weights_gib(clf, 2) + weights_gib(clf, 4),
    }
    ppo = {**t5_kept,
           "PPO activations (mini-batch of 8, fp32: the hand-written loop does not autocast)": activations_gib(t5, mini * (prompt + SUMMARY), mixed=False),
           "PPO logits": logits_gib(t5, mini * SUMMARY, mixed=False),
           "CUDA context": CUDA_CONTEXT_GIB}
    grpo = {**t5_kept,
            "Qwen2.5-0.5B-Instruct, fp32, LoRA": weights_gib(qwen, 4),
            "autocast's fp16 weight copies": weights_gib(qwen, 2),
            f"GRPO activations (micro-batch {micro}, checkpointed)": activations_gib(qwen, micro * (prompt + SUMMARY),
                                                                                      checkpointing=True),
            "GRPO logits (completions only)": logits_gib(qwen, micro * SUMMARY),
            "generation KV cache (32 completions)": kv_cache_gib(qwen, prompts * generations, prompt + SUMMARY),
            "CUDA context": CUDA_CONTEXT_GIB}
    typical = 190  # a kept dialogue's prompt is 186 tokens long on average
    evaluations = 2 * 4 * math.ceil(n_eval / 64)  # greedy and sampled, four models, batches of 64
    time_s = {
        "summaries for the evaluations": evaluations * SUMMARY * (weights_gib(t5, 4) * GIB / (T4_BANDWIDTH_GBS * 1e9)
                                                                   + STEP_OVERHEAD_S),
        "PPO rollouts": ppo_steps * generation_s(t5, 1, SUMMARY, bytes_per_param=4),
        "PPO updates (fp32)": training_s(t5, ppo_steps * ppo_epochs * ppo_batch * (typical + SUMMARY),
                                         ppo_steps * ppo_epochs * ppo_batch // mini, mixed=False,
                                         trainable_share=0.01),
        "GRPO generation": grpo_steps * generation_s(qwen, 1, SUMMARY, bytes_per_param=4),
        "GRPO updates": training_s(qwen, grpo_steps * prompts * generations * (typical + SUMMARY),
                                   grpo_steps * prompts * generations // micro, checkpointing=True,
                                   trainable_share=0.01),
    }
    return _plan("05_ppo_detox", f"PPO {ppo_steps} steps x {ppo_batch} (mini-batch {mini}); GRPO {grpo_steps} steps "
                 f"x {prompts} prompts x {generations} completions (micro-batch {micro}); {n_eval} evaluation dialogues",
                 [t5, clf, qwen], {"PPO update": ppo, "GRPO update": grpo}, time_s)


def plan_06() -> Plan:
    student, teacher = "Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-1.5B-Instruct"
    n_public, n_train, n_test, n_sweep, n_eps, micro, accumulation = 150, 150, 100, 50, 4, 2, 8
    pdss_epochs, distill_epochs, question = 6, 10, LONGEST["arc_question"]
    encoder_row, decoder_row = 2 * question + 30, 2 * question + 2 * RATIONALE + 60  # prompt template included
    training = {  # the PDSS student; then each distilled student, one at a time, after the PDSS one is freed
        "student Qwen2.5-0.5B, fp32, trains": weights_gib(student, 4),
        "gradients, AdamW state, fp16 weight copies": full_training_gib(student),
        f"activations (micro-batch {micro}, encoder and decoder rows, checkpointed)": activations_gib(
            student, micro * (encoder_row + decoder_row), checkpointing=True),
        "logits of both rows": logits_gib(student, micro * (encoder_row + decoder_row)),
        "CUDA context": CUDA_CONTEXT_GIB,
    }
    serving = {  # the teacher is stopped while the student trains, and started again for the PDSS flow
        "student Qwen2.5-0.5B, fp32, and its AdamW state": weights_gib(student, 4) + full_training_gib(student) * 8 / 14,
        "student's KV cache (64 rows)": kv_cache_gib(student, 64, decoder_row + RATIONALE),
        "teacher server Qwen2.5-1.5B-Instruct, fp16": weights_gib(teacher, 2),
        "teacher's KV cache": kv_cache_gib(teacher, 1, 1000),
        "CUDA context x2 (notebook, teacher server)": 2 * CUDA_CONTEXT_GIB,
    }
    # public: clean, the sweep, perturbed; private: the PDSS flow (test and training); the test's references
    teacher_calls = n_public + n_eps * n_sweep + n_public + n_test + n_train + n_test
    typical_rationale = 35
    time_s = {
        f"teacher: {teacher_calls} completions, one at a time": generation_s(teacher, teacher_calls, typical_rationale),
        "PDSS training": training_s(student, pdss_epochs * n_public * (encoder_row + decoder_row) // 2,
                                    pdss_epochs * n_public // micro, checkpointing=True),
        "distillation and baseline training": 2 * training_s(student, distill_epochs * n_train * decoder_row // 2,
                                                             distill_epochs * n_train // micro, checkpointing=True),
        "student generation (encoder, decoder, answers)": generation_s(
            student, 2 * math.ceil((n_test + n_train) / 64) + math.ceil(n_test / 64), RATIONALE),
        # ~1 GB/s from the disk cache: the teacher twice, the reference server once
        "teacher server started three times": 3 * weights_gib(teacher, 2) * GIB / 1e9,
    }
    return _plan("06_pdss", f"{n_public} public, {n_train} private training and {n_test} test questions, sweep of "
                 f"{n_sweep} x {n_eps} budgets; "
                 f"batch {micro} x {accumulation} accumulation, gradient checkpointing", [student, teacher],
                 {"training the student (teacher stopped)": training, "the PDSS flow": serving}, time_s)


def plan_07() -> Plan:
    gpt2, batch, length, n_examples, held_out = "openai-community/gpt2-medium", 32, LONGEST["instruction_phi3"], 1100, 100
    steps, repeats, sweep = (n_examples - held_out) // batch, 2, (8, 16, 32)
    training = {
        "gpt2-medium x2 (the kept padding-free run, training), fp32": 2 * weights_gib(gpt2, 4),
        "gradients, AdamW state, fp16 weight copies": full_training_gib(gpt2),
        f"activations (padded batch of {batch})": activations_gib(gpt2, batch * length),
        "logits": logits_gib(gpt2, batch * length),
        "CUDA context": CUDA_CONTEXT_GIB,
    }
    runs = 3 * repeats + 1  # three layouts, repeated; the packed run in one row
    time_s = {
        f"{runs} training runs of {steps} steps": runs * training_s(gpt2, steps * batch * length, steps),
        "padding sweep (6 steps per layout and batch size)": sum(3 * repeats * training_s(gpt2, 6 * b * length, 6)
                                                                 for b in sweep),
    }
    return _plan("07_fast_sft", f"batch {batch}, rows up to {length} tokens, {steps} steps per run", [gpt2],
                 {"training a run": training}, time_s)


def plans() -> list[Plan]:
    """Every chapter's plan at its `hub` settings."""
    return [plan_01(),
            _lora_chapter("02_label_masking", kept_models=3, runs=10,
                          extra=" (three methods and a probe; the methods again on 2 more seeds)"),
            _lora_chapter("03_special_tokens", kept_models=3, runs=7, extra=" (only the two runs that section 4 "
                          "compares are kept)"),
            _lora_chapter("04_multi_turn", kept_models=4, runs=9, extra=" (the two methods again on 3 more seeds)"),
            plan_05(), plan_06(), plan_07()]


def table(rows: list[Plan]) -> str:
    """The plans as a markdown table."""
    lines = ["| chapter | hub settings | fullest moment | peak (GiB) | time (min) | fits |", "|---|---|---|---|---|---|"]
    lines += [f"| {p.chapter} | {p.settings} | {p.peak_moment} | {p.peak_gib:.1f} | {p.minutes:.0f} | "
              f"{'yes' if p.fits() else 'NO'} |" for p in rows]
    return "\n".join(lines)


def report(rows: list[Plan]) -> str:
    """The plans in markdown: the summary table, then each chapter's memory terms and time phases."""
    lines = [f"## Plan for a free Colab T4 (`llmtut.t4_plan`): at most {BUDGET_GIB:g} GiB, about "
             f"{TIME_BUDGET_MIN:g} minutes", "",
             "Memory from the real models' configs (parameters counted on the meta device) and the chapters' "
             "`hub` settings; time estimated from FLOPs and memory bandwidth (a T4: "
             f"{T4_FP16_TFLOPS:g} TFLOPS fp16, {T4_FP32_TFLOPS:g} fp32, {T4_BANDWIDTH_GBS:g} GB/s; {MFU:.0%} of the "
             f"peak, {STEP_OVERHEAD_S * 1000:g} ms per step or generated token, downloads at {DOWNLOAD_MBS:g} MB/s). "
             "Nothing here was measured on a GPU.", "", table(rows)]
    for p in rows:
        lines += ["", f"**{p.chapter}**, at its fullest ({p.peak_moment}): "
                  + "; ".join(f"{k} {v:.2f}" for k, v in p.memory.items()) + " GiB. Time: "
                  + "; ".join(f"{k} {v / 60:.1f}" for k, v in p.time_s.items()) + " min."]
    return "\n".join(lines)


def readme_rows(rows: list[Plan]) -> list[str]:
    """One line per chapter for the README's "Running on Colab" table (tests/test_t4_plan.py checks it)."""
    return [f"| {p.chapter} | about {p.peak_gib:.0f} GiB | about {p.minutes:.0f} min | {p.settings} |" for p in rows]
