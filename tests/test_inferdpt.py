import random
import re

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from llmtut.inferdpt import WORD, InferDPTKit, changed_fraction

NOUNS = "planet river mountain forest comet magnet crystal engine garden island valley ocean desert".split()
VERBS = "heats cools moves pulls grows melts freezes spins orbits reflects absorbs".split()
ADJECTIVES = "bright heavy small frozen ancient quiet rapid green".split()
SHORT = "the a of is on in and to".split()


def sentences(n: int, seed: int = 0) -> list[str]:
    """Made-up science sentences: long words, short words, numbers, punctuation, capitals."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.sample(NOUNS, 2)
        text = f"The {rng.choice(ADJECTIVES)} {a} {rng.choice(VERBS)} the {b} in {rng.randint(2, 99)} days"
        out.append(text + rng.choice([".", "!", "?", ", and it is fine."]))
    return out


@pytest.fixture(scope="module")
def tokenizer():
    """A GPT-2-style byte-level BPE ("Ġplanet") trained on the made-up sentences."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Some texts start with a bare lower-case word, so "planet" also exists without its "Ġ".
    texts = sentences(300) + [s.split(" ", 1)[1] for s in sentences(100, seed=1)]
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    return Qwen2ForCausalLM(config)


@pytest.fixture(scope="module")
def kit(model, tokenizer):
    return InferDPTKit.from_model(model, tokenizer)


TEXT = "The bright planet orbits the comet in 42 days, and the ancient river melts: 3 ok!"


# ----- building the kit -----


def test_the_vocabulary_holds_only_alphabetic_words_of_at_least_four_letters(kit, model, tokenizer):
    assert all(w.isalpha() and len(w) >= 4 for w in kit.words)
    assert len(set(kit.words)) == len(kit.words)
    assert set(NOUNS + VERBS + ADJECTIVES) <= set(kit.words)
    assert not set(SHORT) & set(kit.words)
    assert "The" not in kit.words and "days" in kit.words  # 3 letters out, 4 in

    weight = model.get_input_embeddings().weight.detach()
    vocab = tokenizer.get_vocab()
    for word, token_id, row in zip(kit.words, kit.token_ids, kit.embeddings, strict=True):
        assert tokenizer.decode([token_id]).lstrip() == word
        assert torch.equal(row, weight[token_id])
    # Where "Ġplanet" and "planet" both exist, the word-initial token stands for the word.
    both = [w for w in kit.words if w in vocab and "Ġ" + w in vocab]
    assert both
    assert all(kit.token_ids[kit.index[w]] == vocab["Ġ" + w] for w in both)

    assert kit.delta_f.shape == (32,)  # per dimension: max - min over the kit's words
    assert torch.allclose(kit.delta_f.float(), kit.embeddings.max(0).values - kit.embeddings.min(0).values)
    assert "the" in InferDPTKit.from_model(model, tokenizer, min_letters=3).words
    flat = InferDPTKit.from_model(model, tokenizer, sensitivity="global")
    assert flat.delta_f.shape == () and flat.delta_f == kit.embeddings.max() - kit.embeddings.min()


def test_word_initial_only_drops_word_pieces(kit, model, tokenizer):
    vocab = tokenizer.get_vocab()
    pieces = [w for w in kit.words if "Ġ" + w not in vocab]  # kept only as a piece inside words
    assert pieces, "the test tokenizer should have some 4+ letter pieces that never start a word"
    strict = InferDPTKit.from_model(model, tokenizer, word_initial_only=True)
    assert set(strict.words) == set(kit.words) - set(pieces)
    assert all(tokenizer.convert_ids_to_tokens(i).startswith("Ġ") for i in strict.token_ids)


# ----- perturbing -----


def test_a_seed_gives_the_same_perturbation_and_other_seeds_give_others(kit):
    assert kit.perturb(TEXT, 1.0, seed=7) == kit.perturb(TEXT, 1.0, seed=7)
    assert kit.perturb(TEXT, 1.0, seed=(7, 3)) == kit.perturb(TEXT, 1.0, seed=(7, 3))
    outputs = {kit.perturb(TEXT, 1.0, seed=s) for s in range(10)}
    assert len(outputs) >= 5 and TEXT not in outputs


def test_no_budget_means_no_perturbation_and_a_budget_must_be_positive(kit):
    assert kit.perturb(TEXT, None, seed=0) == TEXT
    assert kit.perturb(TEXT, float("inf"), seed=0) == TEXT
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="epsilon must be > 0"):
            kit.perturb(TEXT, bad, seed=0)


def test_only_vocabulary_words_change_and_everything_else_passes_through(kit):
    gaps, words = re.split(WORD, TEXT), WORD.findall(TEXT)
    for seed in range(10):
        out = kit.perturb(TEXT, 0.5, seed=seed)
        assert re.split(WORD, out) == gaps  # spaces, punctuation and numbers, exactly
        new = WORD.findall(out)
        assert len(new) == len(words)
        for before, after in zip(words, new, strict=True):
            if kit.lookup(before) is None:  # short words ("the", "in", "ok") and unknown ones
                assert after == before
            else:
                assert after[0].isupper() == before[0].isupper()  # "The" and "Bright" stay capitalized
                assert after.lower() in {w.lower() for w in kit.words}
    assert kit.perturb("12 + 7 = 19, ok?", 0.5, seed=0) == "12 + 7 = 19, ok?"


def test_the_candidate_set_always_holds_the_word_itself_as_its_likeliest_member(kit):
    for epsilon in (0.5, 1, 3, 50, 1e6):
        for seed in range(5):
            candidates = kit.candidates("planet", epsilon, seed)
            assert "planet" in candidates
            assert max(candidates, key=candidates.get) == "planet"  # similarity 1 has the largest weight
            assert sum(candidates.values()) == pytest.approx(1.0)
    # Less budget, more noise: a larger candidate set.
    sizes = {eps: sum(len(kit.candidates(w, eps, 0)) for w in NOUNS) for eps in (0.5, 50)}
    assert sizes[0.5] > 5 * sizes[50]


def test_a_capitalised_word_is_found_and_its_candidates_are_keyed_by_the_kits_spelling(kit):
    assert "Mountain" not in kit.words and "mountain" in kit.words
    assert kit.vocab_word("Mountain") == kit.vocab_word("mountain") == "mountain"
    assert kit.vocab_word("zyxwv") is None and kit.vocab_word("ok") is None
    # the longest perturbable word of a question that starts with it, as the chapter picks its example
    question = "Mountain rivers cool the comet?"
    word = kit.longest_word(question)
    assert word == "mountain"
    candidates = kit.candidates(word, 1.0, 0)
    assert candidates[word] == max(candidates.values())
    assert kit.candidates("Mountain", 1.0, 0) == candidates
    assert kit.longest_word("Bright frozen comet") == "bright"  # the first of the longest, in the kit's spelling
    assert kit.longest_word("ok, 42 zyxwv!") is None


def test_a_smaller_budget_changes_more_words(kit):
    texts = sentences(20, seed=2)

    def changed(epsilon: float) -> float:
        fractions = [
            changed_fraction(t, kit.perturb(t, epsilon, seed=(s, i)), min_letters=4)
            for i, t in enumerate(texts)
            for s in range(3)
        ]
        return sum(fractions) / len(fractions)

    rates = {eps: changed(eps) for eps in (0.5, 3, 50)}
    assert rates[0.5] > 0.8 and rates[50] < 0.1
    assert rates[0.5] > rates[3] + 0.1 and rates[3] > rates[50] + 0.1, rates


def test_a_saved_and_loaded_kit_perturbs_identically(kit, tmp_path):
    loaded = InferDPTKit.load(kit.save(tmp_path / "kit"))
    assert loaded.words == kit.words and loaded.token_ids == kit.token_ids
    assert torch.equal(loaded.embeddings, kit.embeddings) and torch.equal(loaded.delta_f, kit.delta_f)
    for epsilon in (0.5, 1, 6):
        for seed in range(3):
            assert loaded.perturb(TEXT, epsilon, seed) == kit.perturb(TEXT, epsilon, seed)


def test_coverage_is_the_share_of_long_words_the_kit_can_perturb(kit):
    assert kit.coverage("The bright planet") == 1.0
    assert kit.coverage("The bright zyxwv planet, ok") == pytest.approx(2 / 3)
    assert kit.coverage("ok 42") == 1.0


# ----- measuring the change -----


def test_changed_fraction():
    assert changed_fraction("the red planet spins", "the red comet spins") == 0.25
    assert changed_fraction("the red planet spins", "the blue comet spins", min_letters=4) == 0.5
    assert changed_fraction("Planet, 42!", "Planet, 42!") == 0.0
    assert changed_fraction("", "anything") == 0.0
    # A rewrite with a different word count is aligned: "planet" and "spins" are kept, "red" is not.
    assert changed_fraction("red planet spins", "a planet slowly spins") == pytest.approx(1 / 3)
