"""The stand-in Hub: every Hub id the book names has a stand-in, in the Hub's layout and with its quirks."""

import json
import re
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmtut import profiles
from llmtut.world import hub, pdss_models

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_every_hub_model_the_book_names_has_a_standin():
    named = {role.hub for role in profiles.ROLES.values()}
    for notebook in NOTEBOOKS.glob("*.py"):  # model parameters, e.g. chapter 01's JUDGE_MODEL
        named |= set(re.findall(r'^[A-Z_]*MODEL = "([\w.-]+/[\w.-]+)"', notebook.read_text(), re.M))
    assert "Qwen/Qwen2.5-3B-Instruct" in named  # chapter 01's judge
    assert named <= set(hub.MODELS), f"no stand-in for {sorted(named - set(hub.MODELS))}"


def test_generated_dialogsum_has_the_hubs_layout():
    splits = hub.generated_dialogsum()
    assert set(splits) == {"train", "validation", "test"}
    assert all(set(r) == {"id", "dialogue", "summary", "topic"} for rows in splits.values() for r in rows)
    test = splits["test"]  # each dialogue three times, ids test_N_1..3, as on the Hub
    assert len(test) % 3 == 0 and [r["id"] for r in test[:3]] == ["test_0_1", "test_0_2", "test_0_3"]
    assert len({r["dialogue"] for r in test}) == len(test) // 3


def test_generated_arc_has_the_quirks():
    rows = hub.generated_arc()
    assert all(set(r) == {"id", "question", "choices", "answerKey"} for r in rows)
    assert any(r["choices"]["label"][0] == "1" for r in rows) and any(r["choices"]["label"][0] == "A" for r in rows)
    assert all(r["answerKey"] in r["choices"]["label"] for r in rows)
    questions = [r["question"] for r in rows]
    assert len(set(questions)) < len(questions)  # repeated question texts
    assert len(rows) > len(pdss_models.questions())


def test_renamed_special_tokens_keep_their_ids():
    tiny = AutoTokenizer.from_pretrained(pdss_models.teacher())
    qwen = hub._qwen_tokenizer(tiny, "instruct")
    for old, new in hub.QWEN_INSTRUCT_NAMES.items():
        assert qwen.convert_tokens_to_ids(new) == tiny.convert_tokens_to_ids(old)
    assert qwen.eos_token == "<|im_end|>" and qwen.pad_token == "<|endoftext|>"
    assert qwen("So the answer is lever.")["input_ids"] == tiny("So the answer is lever.")["input_ids"]
    text = qwen.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


@pytest.fixture(scope="module")
def standin():
    """The stand-in Hub as the rehearsal builds it (cached), with the real rows when hub-samples is there."""
    return hub.standin_hub(hub.default_samples())


def load(cls, repo_id: str, standin: Path):
    """`cls.from_pretrained(repo_id)` from the stand-in Hub's cache, offline. (The rehearsal points the
    libraries there by environment variables, which huggingface_hub reads once, at import.)"""
    return cls.from_pretrained(repo_id, cache_dir=standin / "hub", local_files_only=True)


@pytest.mark.slow
def test_standins_load_by_hub_id_offline(standin):
    model = load(AutoModelForCausalLM, "Qwen/Qwen2.5-0.5B-Instruct", standin)
    tokenizer = load(AutoTokenizer, "Qwen/Qwen2.5-0.5B-Instruct", standin)
    assert str(model.dtype) == "torch.bfloat16"  # as the Hub checkpoint: transformers 5 loads dtype "auto"
    g = model.generation_config  # Qwen2.5-Instruct's: two stop tokens, sampling by default
    assert sorted(g.eos_token_id) == sorted(tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"]))
    assert (g.do_sample, g.temperature, g.top_p, g.top_k) == (True, 0.7, 0.8, 20)
    bloom = load(AutoModelForCausalLM, "bigscience/bloom-560m", standin)
    assert str(bloom.dtype) == "torch.float16"
    assert load(AutoTokenizer, "bigscience/bloom-560m", standin).padding_side == "left"
    card = json.loads(next((standin / "hub").glob("models--google--flan-t5-base/snapshots/*/STANDIN.json")).read_text())
    assert card["repo_id"] == "google/flan-t5-base"


@pytest.mark.slow
def test_gpt2_standin_uses_the_real_tokenizer_when_samples_are_there(standin):
    tokenizer = load(AutoTokenizer, "openai-community/gpt2-medium", standin)
    model = load(AutoModelForCausalLM, "openai-community/gpt2-medium", standin)
    assert tokenizer.pad_token is None and tokenizer.eos_token == "<|endoftext|>"
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    if hub.usable_samples(hub.default_samples()) is not None:
        assert len(tokenizer) == 50257 and tokenizer.eos_token_id == 50256
