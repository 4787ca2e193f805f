"""The detox chapter's tiny world (summarizers, classifier) and helpers, on the real cached builds; and the
helpers that need no world (references, decoding settings) on small random models."""

import json

import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
    pipeline,
)
from transformers.generation.utils import GenerationMixin

from llmtut import detox, profiles
from llmtut.evaluation import module_path
from llmtut.world import detox_models, hub
from llmtut.world.dialogues import INSULTS

HUB_SAMPLES = hub.default_samples()

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


@pytest.mark.slow
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


# ----- reference summaries per dialogue (no world needed) -----


def test_reference_lists_reads_the_references_column_or_makes_one_of_the_summary():
    hub = Dataset.from_dict({"dialogue": ["d1", "d2"], "summary": ["a", "c"], "references": [["a", "b"], ["c"]]})
    assert detox.reference_lists(hub) == [["a", "b"], ["c"]]
    tiny = Dataset.from_dict({"dialogue": ["d1", "d2"], "summary": ["a", "c"]})
    assert detox.reference_lists(tiny) == [["a"], ["c"]]
    assert detox.reference_lists({"summary": ["a"]}) == [["a"]]  # a mapping of columns works too
    with pytest.raises(ValueError, match="`references` or a `summary` column.*dialogue"):
        detox.reference_lists(Dataset.from_dict({"dialogue": ["d1"]}))
    with pytest.raises(ValueError, match="empty `references`"):
        detox.reference_lists({"references": [["a"], []]})


def _dialogsum_test_rows() -> tuple[list[dict], bool]:
    """DialogSum's test split as the Hub serves it (one row per reference): the real rows when
    ../shared/hub-samples is there, else generated rows of that layout."""
    real = HUB_SAMPLES / "knkarthick--dialogsum" / "test.jsonl"
    if real.is_file():
        return [json.loads(line) for line in real.read_text().splitlines()], True
    rows = [{"id": f"test_{i}_{k}", "dialogue": f"#Person1#: dialogue {i} " + "x" * 300,
             "summary": f"#Person{k}# says thing {i} in words {'abc'[k - 1]} {k}", "topic": "t"}
            for i in range(5) for k in (1, 2, 3)]
    return rows, False


def test_rouge_against_all_references_of_hub_dialogues():
    rows, real = _dialogsum_test_rows()
    rows = [r for r in rows if profiles.MIN_CHARS < len(r["dialogue"]) <= profiles.MAX_CHARS]
    test = profiles.distinct_dialogues(Dataset.from_list(rows))
    references = detox.reference_lists(test)
    assert len(references) == len(set(test["dialogue"])) == len(rows) // 3
    assert all(len(refs) == 3 and refs[0] == s for refs, s in zip(references, test["summary"], strict=True))
    if real:
        assert len(references) == 384  # the 1152 filtered rows of ../shared/hub-samples' README
    # The second annotator's summary is a perfect summary by the references, not by the first one alone.
    import evaluate

    rouge = evaluate.load(module_path("rouge"), keep_in_memory=True)
    second = [refs[1] for refs in references]
    assert rouge.compute(predictions=second, references=references)["rougeL"] == 1.0
    assert rouge.compute(predictions=second, references=test["summary"])["rougeL"] < 0.9


# ----- decoding settings: every one stated, so a model's generation config cannot change them -----

# Qwen2.5-0.5B-Instruct's generation_config.json sampling settings (the hub GRPO model), and beams on top.
HOSTILE = dict(do_sample=True, temperature=0.7, top_k=20, top_p=0.8, repetition_penalty=1.1)
WORDS = ["<pad>", "</s>", "<unk>", "<|im_end|>", *(f"w{i}" for i in range(28))]


def _tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def _hostile_models() -> list:
    """A random tiny T5 and Qwen2 whose generation configs sample like Qwen2.5-Instruct's and use 3 beams."""
    torch.manual_seed(0)
    t5 = T5ForConditionalGeneration(T5Config(vocab_size=len(WORDS), d_model=16, d_ff=32, d_kv=8, num_layers=1,
                                             num_heads=2, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1))
    qwen = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32,
                                        num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                        pad_token_id=0, eos_token_id=3))
    qwen.generation_config.eos_token_id = [3, 1]  # Qwen2.5-Instruct stops at <|im_end|> and <|endoftext|>
    for model in (t5, qwen):
        for name, value in {**HOSTILE, "num_beams": 3}.items():
            setattr(model.generation_config, name, value)
    return [t5.eval(), qwen.eval()]


@pytest.fixture
def effective_generation_configs(monkeypatch):
    """Every generation config `generate()` actually runs with (after filling in the model's defaults)."""
    seen = []
    prepare = GenerationMixin._prepare_generation_config

    def spy(self, generation_config, **kwargs):
        config, model_kwargs = prepare(self, generation_config, **kwargs)
        seen.append(config)
        return config, model_kwargs

    monkeypatch.setattr(GenerationMixin, "_prepare_generation_config", spy)
    return seen


def test_summarize_states_every_decoding_setting(effective_generation_configs):
    seen, tokenizer = effective_generation_configs, _tokenizer()
    for model in _hostile_models():
        model.generate(**tokenizer(["w3 w4"], return_tensors="pt"), max_new_tokens=2, do_sample=True)
        assert (seen[-1].temperature, seen[-1].top_k, seen[-1].num_beams) == (0.7, 20, 3)  # the trap is set
        detox.summarize(model, tokenizer, ["w5 w6", "w7"], do_sample=True, max_new_tokens=3)
        config = seen[-1]
        assert (config.do_sample, config.num_beams, config.temperature, config.top_k, config.top_p,
                config.repetition_penalty) == (True, 1, 1.0, 0, 1.0, 1.0)
        assert config.eos_token_id == model.generation_config.eos_token_id  # the model's own stop tokens
        detox.summarize(model, tokenizer, ["w5 w6", "w7"], do_sample=False, max_new_tokens=3)
        config = seen[-1]
        assert (config.do_sample, config.num_beams, config.repetition_penalty) == (False, 1, 1.0)  # plain greedy


def test_grpo_samples_with_the_stated_settings_not_the_models(effective_generation_configs, tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    from llmtut.trainer_defaults import quiet_trainer_args

    qwen = _hostile_models()[1]
    qwen.generation_config.num_beams = 1  # trl leaves num_beams to the model: Qwen2.5-Instruct sets none
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2,
                      max_completion_length=4, max_steps=1, learning_rate=1e-3, **detox.SAMPLING,
                      **quiet_trainer_args(0, "cpu"))
    trainer = GRPOTrainer(model=qwen, reward_funcs=lambda completions, **kw: [0.0] * len(completions), args=args,
                          train_dataset=Dataset.from_dict({"prompt": ["w3 w4", "w5", "w6 w7 w8", "w9"]}),
                          processing_class=_tokenizer())
    trainer.train()
    sampled = [c for c in effective_generation_configs if c.do_sample]
    assert sampled and all((c.temperature, c.top_k, c.top_p, c.repetition_penalty) == (1.0, 0, 1.0, 1.0)
                           for c in sampled)


def test_generation_settings_name_what_grpo_config_takes():
    from trl import GRPOConfig

    assert set(detox.SAMPLING) <= set(GRPOConfig.__dataclass_fields__)
    assert detox.generation_settings(True) == {"do_sample": True, "num_beams": 1, **detox.SAMPLING}
    assert detox.generation_settings(False) == {"do_sample": False, "num_beams": 1, "repetition_penalty": 1.0}


def test_fact_words_are_names_places_and_numbers_not_sentence_starts():
    text = ("Breakfast is included. #Person1# pays forty dollars in Rome at 7:30 on Monday, "
            "and I meet Mr. Smith with 1,500 euros! Then #Person2# leaves.")
    assert detox.fact_words(text) == {"forty", "rome", "7:30", "monday", "smith", "1,500"}
    assert detox.fact_words("#Person1# and #Person2# talk about the weather.") == set()
    assert detox.fact_words("Two tickets to Paris.") == {"two", "paris"}  # a number word counts anywhere


def test_facts_kept_is_the_share_of_the_best_references_facts():
    assert detox.facts_kept("#Person1# flies to Dublin at seven.", ["#Person1# flies to Rome at seven."]) == 0.5
    assert detox.facts_kept("Rome, at seven: #Person1# flies.", ["#Person1# flies to Rome at seven."]) == 1.0
    # the best of several references counts; one without facts is left out
    refs = ["#Person1# books a table.", "#Person1# books a table for two in Lisbon.", "A table for five."]
    assert detox.facts_kept("#Person1# books a table for two in London.", refs) == 0.5
    assert detox.facts_kept("#Person1# books a table.", ["#Person1# books a table."]) is None
    assert detox.facts_kept("", ["#Person1# pays ten dollars."]) == 0.0
