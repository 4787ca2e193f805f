"""The T4 plan: real shapes, every chapter within a free Colab T4, and the chapters saying so."""

import json
import re
from pathlib import Path

import pytest

from llmtut import t4_plan
from llmtut.formats import format_alpaca, format_phi3, format_question, summary_prompt
from llmtut.world import hub

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = hub.default_samples()

# Parameter counts the model cards and papers publish (flan-t5-base: 222,903,552 as transformers 5
# builds it, with the output layer tied to the input embeddings).
PUBLISHED = {
    "bigscience/bloom-560m": 559_214_592,
    "openai-community/gpt2-medium": 354_823_168,
    "google/flan-t5-base": 222_903_552,
    "facebook/roberta-hate-speech-dynabench-r4-target": 124_647_170,
    "Qwen/Qwen2.5-0.5B": 494_032_768,
    "Qwen/Qwen2.5-1.5B-Instruct": 1_543_714_304,
    "Qwen/Qwen2.5-3B-Instruct": 3_085_938_688,
    "Qwen/Qwen2.5-7B-Instruct": 7_615_616_512,
}


@pytest.mark.parametrize("hub_id", sorted(PUBLISHED))
def test_the_configs_give_the_published_parameter_counts(hub_id):
    assert t4_plan.shape(hub_id).n_params == PUBLISHED[hub_id]


def test_every_chapter_has_a_plan_that_fits_a_t4():
    chapters = sorted(p.stem for p in (ROOT / "notebooks").glob("*.py"))
    plans = t4_plan.plans()
    assert [p.chapter for p in plans] == chapters
    for p in plans:
        assert p.peak_gib <= t4_plan.BUDGET_GIB, f"{p.chapter}: {p.peak_gib:.1f} GiB\n{t4_plan.report([p])}"
        assert p.minutes <= 1.1 * t4_plan.TIME_BUDGET_MIN, f"{p.chapter}: {p.minutes:.0f} min\n{t4_plan.report([p])}"
        assert p.fits()


def test_the_plan_catches_what_does_not_fit():
    """The terms are large where they should be: a 7B judge in fp16, or 06's batch of 16 rows at once."""
    assert t4_plan.weights_gib("Qwen/Qwen2.5-7B-Instruct", 2) > t4_plan.BUDGET_GIB
    assert t4_plan.weights_gib("Qwen/Qwen2.5-3B-Instruct", 2) < 6
    student, rows = "Qwen/Qwen2.5-0.5B", 16 * (2 * t4_plan.LONGEST["arc_question"] * 2 + 2 * t4_plan.RATIONALE + 90)
    assert t4_plan.logits_gib(student, rows) + t4_plan.weights_gib(student, 4) + t4_plan.full_training_gib(
        student) > t4_plan.BUDGET_GIB
    # checkpointing keeps one vector per layer and token instead of all of them
    assert t4_plan.activations_gib(student, 1000, checkpointing=True) < t4_plan.activations_gib(student, 1000) / 5


def test_the_judge_of_chapter_01_fits_a_t4():
    source = (ROOT / "notebooks" / "01_instruction_data.py").read_text()
    judge = re.search(r'^JUDGE_MODEL = "([^"]+)"', source, re.M).group(1)
    assert judge in t4_plan.HUB_CONFIGS
    assert t4_plan.weights_gib(judge, 2) + t4_plan.kv_cache_gib(judge, 1, 1000) + 2 * t4_plan.CUDA_CONTEXT_GIB \
        <= t4_plan.BUDGET_GIB


# The hub settings each plan assumes, as the chapter's source states them.
SETTINGS = {
    "01_instruction_data": [r"^BATCH_SIZE = 8\b", r'"hub": dict\(epochs=2,', r'new_tokens=256\)',
                            r'^JUDGE_MODEL = "Qwen/Qwen2.5-3B-Instruct"'],
    "02_label_masking": [r"^MAX_EPOCHS = 60\b", r"^BATCH_SIZE = 1\b", r"^LORA_R = 8\b"],
    "03_special_tokens": [r"^MAX_EPOCHS = 60\b", r"^BATCH_SIZE = 1\b", r"keep_model=True\)\n"],
    "04_multi_turn": [r"^MAX_EPOCHS = 60\b", r"^BATCH_SIZE = 1\b"],
    "05_ppo_detox": [r"^N_EVAL = 400\b", r"^PPO_STEPS = 16\b", r"^PPO_BATCH = 32\b", r"mini_batch_size=8\b",
                     r"^GRPO_STEPS = 20\b", r"^GRPO_PROMPTS = 4\b", r"^GRPO_GENERATIONS = 8\b",
                     r"max_completion_length=64\b"],
    "06_pdss": [r"^N_TEST = 100\b", r"^PDSS_EPOCHS = 6\b", r"^DISTILL_EPOCHS = 10\b", r"max_tokens=60\b",
                r'"hub": [^\n]*"n_public": 150, "n_train": 150, "n_sweep": 50'],
    "07_fast_sft": [r'"hub": \{"batch": 32, "epochs": 1, "sweep": \(8, 16, 32\)'],
}


@pytest.mark.parametrize("chapter", sorted(SETTINGS))
def test_the_plan_assumes_the_chapters_hub_settings(chapter):
    source = (ROOT / "notebooks" / f"{chapter}.py").read_text()
    missing = [s for s in SETTINGS[chapter] if not re.search(s, source, re.M)]
    assert not missing, f"{chapter} changed {missing}: update its plan in llmtut/t4_plan.py and this list"


@pytest.mark.parametrize("plan", t4_plan.plans(), ids=lambda p: p.chapter)
def test_each_chapter_opening_states_its_t4_plan(plan):
    """The chapter's opening quotes its plan: memory and time, so a learner knows before running it."""
    source = (ROOT / "notebooks" / f"{plan.chapter}.py").read_text()
    text = " ".join(line.lstrip("# ").strip() for line in source.splitlines())
    assert plan.opening() in text, f"{plan.chapter}'s opening should say: {plan.opening()}"


def test_the_longest_rows_are_those_of_the_real_data():
    """LONGEST was measured on the real files with the real GPT-2 tokenizer; measure it again."""
    if hub.usable_samples(SAMPLES) is None:
        pytest.skip(f"no usable {SAMPLES} (a fresh clone has no ../shared); CI measures it")
    from transformers import GPT2TokenizerFast

    tok = GPT2TokenizerFast.from_pretrained(str(SAMPLES / "openai-community--gpt2"))

    def longest(texts):
        return max(len(ids) for ids in tok(list(texts))["input_ids"])

    records = json.loads((SAMPLES / "rasbt--instruction-data" / "instruction-data.json").read_text())
    alpaca = longest(f"{format_alpaca(r)}\n\n### Response:\n{r['output']}" for r in records) + 1
    dialogues = [json.loads(line)["dialogue"] for split in ("train", "test", "validation")
                 for line in (SAMPLES / "knkarthick--dialogsum" / f"{split}.jsonl").read_text().splitlines()]
    arc = [json.loads(line) for line in (SAMPLES / "allenai--ai2_arc" / "ARC-Easy" / "train.jsonl").read_text()
           .splitlines()]
    assert {"instruction_alpaca": alpaca,
            "instruction_phi3": longest(format_phi3(r, with_response=True) for r in records),
            "dialogsum_prompt": longest(summary_prompt(d) for d in dialogues if 200 <= len(d) <= 1000),
            "arc_question": longest(format_question(r) for r in arc)} == t4_plan.LONGEST


def test_the_readme_gives_each_chapters_t4_plan():
    readme = (ROOT / "README.md").read_text()
    missing = [row for row in t4_plan.readme_rows(t4_plan.plans()) if row not in readme]
    assert not missing, "README's 'Running on Colab' table should read:\n" + "\n".join(missing)
