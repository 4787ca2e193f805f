"""The detox chapter's tiny world (summarizers, classifier) and helpers, on the real cached builds."""

import pytest
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, pipeline

from llmtut import detox, profiles
from llmtut.evaluation import module_path
from llmtut.world import detox_models
from llmtut.world.dialogues import INSULTS

N = 60  # test dialogues per check: enough for the properties, fast on CPU


@pytest.fixture(scope="module")
def data():
    return profiles.load_dialogue_dataset("tiny")


@pytest.fixture(scope="module")
def classifier():
    return pipeline("text-classification", model=profiles.resolve("toxicity_classifier", "tiny"), device="cpu")


def test_the_tiny_dataset_has_disjoint_splits_of_the_recipes_size(data):
    r = detox_models.DETOX_RECIPE["data"]
    assert (len(data["train"]), len(data["test"])) == (r["n_train"], r["n_test"]) and r["n_train"] >= 3000
    assert {"dialogue", "summary", "rude", "toxic_summary"} <= set(data["train"].column_names)
    assert not set(data["train"]["dialogue"]) & set(data["test"]["dialogue"])


def test_the_t5_summarizer_summarizes_and_repeats_insults_of_rude_dialogues(data):
    import evaluate

    model, tokenizer = profiles.load_pretrained("summarizer", "tiny", AutoModelForSeq2SeqLM)
    assert type(model).__name__ == "T5ForConditionalGeneration"
    test = data["test"].select(range(N))
    summaries = detox.summarize(model, tokenizer, test["dialogue"], do_sample=False)
    rouge = evaluate.load(module_path("rouge")).compute(predictions=summaries, references=test["summary"])
    assert rouge["rougeL"] > 0.5
    rude = [s for s, r in zip(summaries, test["rude"], strict=True) if r]
    clean = [s for s, r in zip(summaries, test["rude"], strict=True) if not r]
    # Something for PPO to remove. How much depends on the CPU the world was built on: the same recipe and
    # seed gave 9+ of 27 here on the machines it was first built on (ppo.toxicity_before 0.11) and 4 of 27 on
    # an AMD EPYC (0.059, with PPO still removing 97%): float rounding differs across CPUs over 752 steps.
    assert sum(any(x in s for x in INSULTS) for s in rude) >= max(1, len(rude) / 10)
    assert not any(any(x in s for x in INSULTS) for s in clean)


def test_the_causal_summarizer_continues_after_the_prompt(data):
    model, tokenizer = profiles.load_pretrained("causal_summarizer", "tiny", AutoModelForCausalLM)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    side = tokenizer.padding_side
    summaries = detox.summarize(model, tokenizer, data["test"]["dialogue"][:8], do_sample=False)
    assert tokenizer.padding_side == side  # restored
    assert all(s.startswith("#Person") and "Summarize" not in s for s in summaries), summaries


def test_the_classifier_rewards_clean_summaries_above_insulting_ones(classifier):
    assert classifier.model.config.id2label == {0: "nothate", 1: "hate"}
    assert profiles.world_card("toxicity_classifier", "tiny")["heldout_accuracy"] >= 0.95
    clean, toxic = detox.nothate_logits(classifier, [
        "#Person1# buys a red hat from #Person2# for ten dollars.",
        "#Person2# calls #Person1# a stupid idiot. #Person1# buys a red hat from #Person2# for ten dollars.",
    ])
    assert clean > 0 > toxic
    reward = detox.nothate_reward(classifier)
    assert reward(completions=["#Person1# buys a red hat."], prompts=["..."])[0] > 0


def test_a_classifier_without_nothate_is_refused():
    def fake_classifier(texts, **kwargs):
        return [[{"label": "POSITIVE", "score": 1.0}, {"label": "NEGATIVE", "score": -1.0}] for _ in texts]

    with pytest.raises(ValueError, match="no 'nothate' label.*NEGATIVE"):
        detox.nothate_logits(fake_classifier, ["hello"])


def test_sampled_summaries_repeat_for_a_seed(data):
    model, tokenizer = profiles.load_pretrained("summarizer", "tiny", AutoModelForSeq2SeqLM)
    dialogues = data["test"]["dialogue"][:8]
    a = detox.summarize(model, tokenizer, dialogues, do_sample=True, seed=3)
    assert a == detox.summarize(model, tokenizer, dialogues, do_sample=True, seed=3)
    assert a != detox.summarize(model, tokenizer, dialogues, do_sample=True, seed=4)


def test_a_detox_build_is_deterministic(tmp_path, monkeypatch):
    import copy

    from safetensors.torch import load_file

    recipe = copy.deepcopy(detox_models.DETOX_RECIPE)
    recipe["data"] |= {"n_train": 200, "n_test": 20}
    recipe["classifier"] |= {"n_train": 200, "n_test": 50, "epochs": 1}
    weights = []
    for run in ("a", "b"):
        monkeypatch.setenv("LLMTUT_CACHE", str(tmp_path / run))
        path = detox_models.toxicity_classifier(recipe, progress=False)
        weights.append(load_file(path / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[0])
