import math
from pathlib import Path

import evaluate
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaForSequenceClassification

from llmtut.evaluation import bootstrap_ci, group_means, load_toxicity, module_path, paired_difference

# ----- module_path -----


def test_module_path_finds_the_shipped_modules():
    for name in ("rouge", "toxicity"):
        assert (Path(module_path(name)) / f"{name}.py").is_file()
    with pytest.raises(ValueError, match=r"ships \['rouge', 'toxicity'\]"):
        module_path("bleu")


# ----- ROUGE -----


@pytest.fixture(scope="module")
def rouge():
    return evaluate.load(module_path("rouge"), keep_in_memory=True)


def test_rouge_identical_texts_score_one(rouge):
    texts = ["hello there", "general kenobi, you are\na bold one"]
    assert rouge.compute(predictions=texts, references=texts) == {
        "rouge1": 1.0,
        "rouge2": 1.0,
        "rougeL": 1.0,
        "rougeLsum": 1.0,
    }


def test_rouge_word_order_example_from_lin_2004(rouge):
    # The same four words, reordered: every unigram matches, one bigram of three ("the gunman")
    # matches, and the longest common subsequence is "the gunman" (2 of 4 tokens).
    result = rouge.compute(predictions=["the gunman killed police"], references=["police killed the gunman"])
    assert result["rouge1"] == 1.0
    assert result["rouge2"] == pytest.approx(1 / 3)
    assert result["rougeL"] == pytest.approx(2 * 2 / (4 + 4))


def test_rouge_lcs_with_different_lengths(rouge):
    # LCS "the cat on mat" = 4 tokens: precision 4/5, recall 4/6, F = 2 * 4 / (5 + 6).
    result = rouge.compute(predictions=["the cat on a mat"], references=["the cat sat on the mat"])
    assert result["rougeL"] == pytest.approx(8 / 11)
    # bigrams: "the cat" and "cat ..." -> only "the cat" is shared: P = 1/4, R = 1/5.
    assert result["rouge2"] == pytest.approx(2 * (1 / 4) * (1 / 5) / (1 / 4 + 1 / 5))


def test_rouge_lsum_unions_lcs_over_sentences(rouge):
    # Lin 2004, section 3.2: the reference sentence's LCS with each predicted sentence is
    # w1 w2 and w1 w3 w5; their union has 4 tokens: P = 4/10, R = 4/5, F = 8/15.
    # The best single sentence alone would give 3 hits and F = 0.4.
    result = rouge.compute(
        predictions=["w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5"],
        references=["w1 w2 w3 w4 w5"],
        rouge_types=["rougeLsum"],
    )
    assert result["rougeLsum"] == pytest.approx(8 / 15)


def test_rouge_lsum_ignores_sentence_order_but_rouge_l_does_not(rouge):
    result = rouge.compute(predictions=["d e f\na b c"], references=["a b c\nd e f"])
    assert result["rougeLsum"] == 1.0
    assert result["rougeL"] == pytest.approx(0.5)  # flat LCS "a b c" or "d e f": 3 of 6


def test_rouge_ignores_case_and_punctuation(rouge):
    result = rouge.compute(predictions=["The CAT, sat!"], references=["the cat sat"])
    assert set(result.values()) == {1.0}
    # "don't" is two tokens and non-ASCII letters are separators, as in rouge_score.
    result = rouge.compute(predictions=["Don't stop-now: café"], references=["don t stop now caf"])
    assert set(result.values()) == {1.0}


def test_rouge_per_example_scores_and_their_mean(rouge):
    predictions, references = ["a b c d", "a b x y"], ["a b c d", "a b c d"]
    per_example = rouge.compute(predictions=predictions, references=references, use_aggregator=False)
    assert per_example["rouge1"] == [1.0, 0.5]
    assert per_example["rouge2"] == [1.0, pytest.approx(1 / 3)]
    mean = rouge.compute(predictions=predictions, references=references)
    assert mean["rouge1"] == pytest.approx(0.75)


def test_rouge_takes_the_best_of_several_references(rouge):
    result = rouge.compute(
        predictions=["a b c", "x y"], references=[["q r s", "a b c"], ["x z", "w"]], use_aggregator=False
    )
    assert result["rouge1"] == [1.0, 0.5]


def test_rouge_against_several_references_takes_the_best_per_prediction_and_per_type(rouge):
    # Chapter 05 scores a summary against all of its dialogue's references (DialogSum: three). By hand:
    # prediction "the cat sat on the mat" (6 tokens, 5 bigrams)
    # - vs "a cat sat" (3 tokens, 2 bigrams): LCS "cat sat" = 2 -> rougeL F = 2*(2/6)(2/3)/(2/6+2/3) = 4/9;
    #   one shared bigram "cat sat" -> rouge2 P = 1/5, R = 1/2, F = 2/7
    # - vs "the cat lay on a mat" (6 tokens, 5 bigrams): LCS "the cat on mat" = 4 -> rougeL F = 4/6 = 2/3;
    #   one shared bigram "the cat" -> rouge2 F = 1/5
    # The best reference differs per type: rougeL = 2/3 (the second), rouge2 = 2/7 (the first).
    pred, refs = "the cat sat on the mat", ["a cat sat", "the cat lay on a mat"]
    best = rouge.compute(predictions=[pred], references=[refs], rouge_types=["rouge2", "rougeL"])
    assert best["rougeL"] == pytest.approx(2 / 3) and best["rouge2"] == pytest.approx(2 / 7)
    for ref, rouge_l, rouge_2 in ((refs[0], 4 / 9, 2 / 7), (refs[1], 2 / 3, 1 / 5)):
        alone = rouge.compute(predictions=[pred], references=[ref], rouge_types=["rouge2", "rougeL"])
        assert alone == {"rouge2": pytest.approx(rouge_2), "rougeL": pytest.approx(rouge_l)}
    # The mean is over predictions (dialogues), each with its own number of references: a second
    # prediction with one reference it matches exactly scores 1, so the mean is (2/3 + 1) / 2.
    mean = rouge.compute(predictions=[pred, "x y"], references=[refs, ["x y"]], rouge_types=["rougeL"])
    assert mean["rougeL"] == pytest.approx((2 / 3 + 1) / 2)
    # One reference in a list is the same as that reference alone (the tiny profile's case).
    assert rouge.compute(predictions=[pred], references=[[refs[1]]]) == rouge.compute(
        predictions=[pred], references=[refs[1]]
    )


def test_rouge_refuses_what_it_cannot_compute(rouge):
    with pytest.raises(ValueError, match="rougeW"):
        rouge.compute(predictions=["a"], references=["a"], rouge_types=["rougeW"])


def test_rouge_clips_repeated_tokens_by_hand(rouge):
    # "the cat the cat" (4 tokens, 3 bigrams) against "the cat sat on the mat" (6 tokens, 5 bigrams):
    # - rouge1: "the" min(2, 2) + "cat" min(2, 1) = 3 hits: P = 3/4, R = 3/6, F = 2 * (3/4)(1/2) / (5/4) = 3/5
    # - rouge2: "the cat" min(2, 1) = 1 hit ("cat the" is not in the reference): P = 1/3, R = 1/5, F = 1/4
    # - rougeL: LCS "the cat ... the" = 3 ("the cat the cat" would need a "cat" after the second "the"):
    #   P = 3/4, R = 3/6, F = 3/5; rougeLsum: one sentence each, so the same
    result = rouge.compute(
        predictions=["the cat the cat"], references=["the cat sat on the mat"], use_aggregator=False
    )
    assert result == {
        "rouge1": [pytest.approx(3 / 5)],
        "rouge2": [pytest.approx(1 / 4)],
        "rougeL": [pytest.approx(3 / 5)],
        "rougeLsum": [pytest.approx(3 / 5)],
    }


def test_rouge_stemmer_matches_word_forms_by_hand(rouge):
    # The Porter stemmer (nltk's, no data download) turns "running" and "runs" into "run"; words of 3
    # characters or fewer ("was") are left alone. Prediction "he was running home" (4 tokens, 3 bigrams),
    # reference "he runs home" (3 tokens, 2 bigrams):
    # - stemmed, "he run home" is all in the prediction: rouge1 P = 3/4, R = 3/3, F = 6/7; bigram "run home"
    #   is shared: rouge2 P = 1/3, R = 1/2, F = 2/5; rougeL: LCS "he run home" = 3, F = 6/7
    # - unstemmed, only "he" and "home" match: rouge1 P = 2/4, R = 2/3, F = 4/7; no bigram: rouge2 = 0
    pred, ref = ["He was running home"], ["he runs home"]
    stemmed = rouge.compute(predictions=pred, references=ref, use_stemmer=True, use_aggregator=False)
    assert stemmed["rouge1"] == [pytest.approx(6 / 7)] and stemmed["rougeL"] == [pytest.approx(6 / 7)]
    assert stemmed["rouge2"] == [pytest.approx(2 / 5)]
    plain = rouge.compute(predictions=pred, references=ref, use_aggregator=False)
    assert plain["rouge1"] == [pytest.approx(4 / 7)] and plain["rouge2"] == [0.0]
    # "ran" is irregular: the stemmer does not map it to "run"
    assert rouge.compute(predictions=["ran"], references=["run"], use_stemmer=True)["rouge1"] == 0.0
    # the stemmer belongs to the default tokens: a tokenizer of one's own replaces them, stemming too
    own_tokens = rouge.compute(
        predictions=["running"], references=["runs"], use_stemmer=True, tokenizer=str.split
    )
    assert own_tokens["rouge1"] == 0.0


def test_rouge_custom_tokenizer_replaces_lowercasing_and_punctuation_rules(rouge):
    # str.split keeps case: "The" != "the", so 1 of 2 unigrams match each way: F = 1/2
    result = rouge.compute(predictions=["The cat"], references=["the cat"], tokenizer=str.split)
    assert result["rouge1"] == 0.5 and result["rouge2"] == 0.0
    assert rouge.compute(predictions=["The cat"], references=["the cat"])["rouge1"] == 1.0


def test_rouge_empty_prediction_or_reference_scores_zero(rouge):
    # No tokens (an empty text, or punctuation only) means no hits: every score is 0, even for "" against "".
    result = rouge.compute(predictions=["", "!!!", ""], references=["a b", "a b", ""], use_aggregator=False)
    assert result == {
        rouge_type: [0.0, 0.0, 0.0] for rouge_type in ("rouge1", "rouge2", "rougeL", "rougeLsum")
    }
    assert all(type(v) is float for values in result.values() for v in values)
    # an empty prediction among others pulls the mean down: (1 + 0) / 2
    assert rouge.compute(predictions=["a b", ""], references=["a b", "a b"])["rougeL"] == 0.5


def test_rouge_per_example_output_follows_the_requested_types_and_the_predictions(rouge):
    predictions = ["a b c", "a b", "c", "x y z"]
    result = rouge.compute(
        predictions=predictions,
        references=["a b c"] * 4,
        rouge_types=["rougeL", "rouge3"],
        use_aggregator=False,
    )
    assert list(result) == ["rougeL", "rouge3"]
    assert all(
        len(values) == len(predictions) and all(type(v) is float for v in values)
        for values in result.values()
    )
    # rougeL: LCS 3, 2, 1, 0 of 3 reference tokens: F = 1, 2*(1)(2/3)/(5/3) = 4/5, 2*(1)(1/3)/(4/3) = 1/2, 0
    assert result["rougeL"] == [1.0, pytest.approx(4 / 5), pytest.approx(1 / 2), 0.0]
    # rouge3: only "a b c" has a trigram
    assert result["rouge3"] == [1.0, 0.0, 0.0, 0.0]


def test_rouge_mean_is_deterministic_and_leaves_numpy_random_state_alone(rouge):
    # The Hub metric's bootstrap median draws from np.random's global state; this module takes the plain mean.
    predictions, references = ["a b c", "a b", "c", "x y z"], ["a b c"] * 4
    state = np.random.get_state()
    first = rouge.compute(predictions=predictions, references=references, rouge_types=["rougeL"])
    second = rouge.compute(predictions=predictions, references=references, rouge_types=["rougeL"])
    assert first == second == {"rougeL": pytest.approx((1 + 4 / 5 + 1 / 2 + 0) / 4)}
    assert type(first["rougeL"]) is float
    after = np.random.get_state()
    assert after[2] == state[2] and (after[1] == state[1]).all()


# ----- toxicity -----

HATE_BIAS = 2.0


def make_classifier(path: Path, zero_head: bool) -> Path:
    """A tiny RoBERTa hate-speech classifier with labels {0: nothate, 1: hate}, saved to `path`.

    With zero_head the output layer ignores the text: every text gets logits (0, HATE_BIAS), so
    p(hate) = sigmoid(HATE_BIAS) exactly. Otherwise the weights are random, and large enough (std 0.5
    instead of 0.02) that the scores differ clearly from text to text.
    """
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # roberta's, with roberta's ids 0..4
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(["the cat sat on the mat", "you are a rude fool", "what a lovely day"], trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        cls_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=62,  # 64 positions, less roberta's offset of 2: longer texts are truncated
    )
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        id2label={0: "nothate", 1: "hate"},
        label2id={"nothate": 0, "hate": 1},
        initializer_range=0.02 if zero_head else 0.5,
    )
    model = RobertaForSequenceClassification(config).eval()
    if zero_head:
        with torch.no_grad():
            model.classifier.out_proj.weight.zero_()
            model.classifier.out_proj.bias.copy_(torch.tensor([0.0, HATE_BIAS]))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def constant_classifier(tmp_path_factory):
    return make_classifier(tmp_path_factory.mktemp("constant_clf"), zero_head=True)


@pytest.fixture(scope="module")
def random_classifier(tmp_path_factory):
    return make_classifier(tmp_path_factory.mktemp("random_clf"), zero_head=False)


TEXTS = ["the cat sat on the mat", "you are a rude fool", "what a lovely day", "the fool sat " * 40]


def test_toxicity_scores_are_the_hate_probability(constant_classifier, tmp_path):
    files = sorted(p.name for p in constant_classifier.iterdir())
    # An absolute path with slashes as config_name, as the chapter passes the tiny classifier.
    toxicity = evaluate.load(
        module_path("toxicity"), str(constant_classifier), module_type="measurement", cache_dir=str(tmp_path)
    )
    p_hate = 1 / (1 + math.exp(-HATE_BIAS))
    scores = toxicity.compute(predictions=TEXTS)["toxicity"]
    assert scores == pytest.approx([p_hate] * len(TEXTS), rel=1e-6)
    assert toxicity.compute(predictions=TEXTS, toxic_label="nothate")["toxicity"] == pytest.approx(
        [1 - p_hate] * len(TEXTS), rel=1e-5
    )
    assert toxicity.compute(predictions=TEXTS, aggregation="maximum") == {
        "max_toxicity": pytest.approx(p_hate)
    }
    assert toxicity.compute(predictions=TEXTS, aggregation="ratio") == {"toxicity_ratio": 1.0}
    assert toxicity.compute(predictions=TEXTS, aggregation="ratio", threshold=0.9) == {"toxicity_ratio": 0.0}
    # evaluate's cache went under cache_dir, not into the classifier's folder.
    assert sorted(p.name for p in constant_classifier.iterdir()) == files
    assert toxicity.classifier == str(constant_classifier)


def test_toxicity_aggregations_follow_each_texts_score(random_classifier):
    model = RobertaForSequenceClassification.from_pretrained(random_classifier).eval()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(random_classifier)
    with torch.no_grad():
        expected = [
            model(**tokenizer(text, truncation=True, return_tensors="pt")).logits.softmax(-1)[0, 1].item()
            for text in TEXTS
        ]
    low, high = sorted(expected)[1:3]
    assert high - low > 0.05, "the random classifier should give clearly different scores"

    toxicity = load_toxicity(random_classifier, device="cpu", keep_in_memory=True)
    assert toxicity.compute(predictions=TEXTS)["toxicity"] == pytest.approx(expected, abs=1e-5)
    assert toxicity.compute(predictions=TEXTS, aggregation="maximum", batch_size=2) == {
        "max_toxicity": pytest.approx(max(expected), abs=1e-5)
    }
    ratio = toxicity.compute(predictions=TEXTS, aggregation="ratio", threshold=(low + high) / 2)
    assert ratio == {"toxicity_ratio": 0.5}


def test_toxicity_rejects_a_label_the_classifier_lacks(constant_classifier):
    toxicity = load_toxicity(constant_classifier, keep_in_memory=True)
    with pytest.raises(ValueError, match=r"whose labels are \['nothate', 'hate'\]"):
        toxicity.compute(predictions=["hello"], toxic_label="toxic")
    with pytest.raises(ValueError, match="aggregation"):
        toxicity.compute(predictions=["hello"], aggregation="max")


# ----- bootstrap -----


def test_bootstrap_ci_is_deterministic_per_seed():
    values = np.random.default_rng(1).normal(size=50)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(list(values), seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)


def test_bootstrap_ci_matches_the_normal_approximation_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small, large = rng.normal(1.0, 2.0, size=25), rng.normal(1.0, 2.0, size=2500)
    for values in (small, large):
        low, high = bootstrap_ci(values)
        assert low < values.mean() < high
        # For a mean, the 95% percentile interval is close to mean +- 1.96 standard errors.
        half_width = 1.96 * values.std(ddof=1) / math.sqrt(len(values))
        assert (high - low) / 2 == pytest.approx(half_width, rel=0.15)
    (low_s, high_s), (low_l, high_l) = bootstrap_ci(small), bootstrap_ci(large)
    assert high_l - low_l < (high_s - low_s) / 5  # 100x the data: about 10x narrower


def test_bootstrap_ci_of_constant_values_is_a_point_and_bad_input_is_refused():
    assert bootstrap_ci([0.25] * 10) == (0.25, 0.25)
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_ci([1.0])
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci([1.0, 2.0], alpha=1.5)


def test_paired_difference_summarises_before_minus_after():
    before, after = [0.9, 0.8, 0.7, 0.6], [0.1, 0.2, 0.3, 0.4]
    result = paired_difference(before, after, seed=0)
    assert result["n"] == 4
    assert result["mean_before"] == pytest.approx(0.75)
    assert result["mean_after"] == pytest.approx(0.25)
    assert result["mean_diff"] == pytest.approx(0.5)
    assert result["std_diff"] == pytest.approx(math.sqrt(0.2 / 3))  # differences 0.8 0.6 0.4 0.2
    assert (result["ci95_low"], result["ci95_high"]) == bootstrap_ci(np.subtract(before, after), seed=0)
    assert 0.2 <= result["ci95_low"] < 0.5 < result["ci95_high"] <= 0.8


def test_paired_difference_refuses_unpaired_or_too_few_values():
    with pytest.raises(ValueError, match="same items"):
        paired_difference([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        paired_difference([1.0], [0.0])


def test_group_means_average_each_group_in_first_seen_order():
    assert group_means([1.0, 3.0, 5.0, 10.0], ["a", "b", "a", "c"]).tolist() == [3.0, 3.0, 10.0]
    values = [0.1, 0.7, 0.3]
    assert group_means(values, ["x", "y", "z"]).tolist() == values  # groups of one keep their values exactly
    with pytest.raises(ValueError, match="one group per value"):
        group_means([1.0, 2.0], ["a"])


def test_paired_difference_by_dialogue_counts_each_dialogue_once():
    # Rows of dialogues a, a, b, c: a's two rows (e.g. two references' worth of rows) average into one unit.
    # Units: a before 1, after 0 (diff 1); b 0 -> 0 (diff 0); c 0.5 -> 0.5 (diff 0), so
    # mean_before = 1.5/3, mean_after = 0.5/3, mean_diff = 1/3 (row by row it would be 2/4),
    # std_diff = sd(1, 0, 0) = sqrt(1/3), and the interval is the bootstrap of the 3 unit differences.
    before, after, dialogues = [1.0, 1.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.5], ["a", "a", "b", "c"]
    result = paired_difference(before, after, seed=0, groups=dialogues)
    assert result["n"] == 3
    assert result["mean_before"] == pytest.approx(0.5)
    assert result["mean_after"] == pytest.approx(1 / 6)
    assert result["mean_diff"] == pytest.approx(1 / 3)
    assert result["std_diff"] == pytest.approx(math.sqrt(1 / 3))
    assert (result["ci95_low"], result["ci95_high"]) == bootstrap_ci([1.0, 0.0, 0.0], seed=0)
    assert paired_difference(before, after, seed=0)["mean_diff"] == pytest.approx(0.5)  # rows as units


def test_paired_difference_by_dialogue_is_blind_to_repeated_rows_and_equals_rows_when_all_distinct():
    rng = np.random.default_rng(0)
    before, after = rng.uniform(size=100), rng.uniform(size=100) * 0.5
    dialogues = [f"dialogue {i}" for i in range(100)]
    per_dialogue = paired_difference(before, after, seed=1)
    # distinct dialogues: grouping changes nothing, to the bit
    assert paired_difference(before, after, seed=1, groups=dialogues) == per_dialogue
    # each dialogue three times (DialogSum's test split, one row per reference): the same result by dialogue...
    tripled = paired_difference(
        np.repeat(before, 3), np.repeat(after, 3), seed=1, groups=np.repeat(dialogues, 3)
    )
    assert tripled == pytest.approx(per_dialogue)
    # ... while rows as units would count 300 samples and give an interval about sqrt(3) times too narrow
    rows = paired_difference(np.repeat(before, 3), np.repeat(after, 3), seed=1)
    assert rows["n"] == 300 and rows["mean_diff"] == pytest.approx(per_dialogue["mean_diff"])
    ratio = (per_dialogue["ci95_high"] - per_dialogue["ci95_low"]) / (rows["ci95_high"] - rows["ci95_low"])
    assert ratio == pytest.approx(math.sqrt(3), rel=0.15)


def test_paired_difference_by_dialogue_needs_two_dialogues_and_a_group_per_row():
    with pytest.raises(ValueError, match="at least 2"):
        paired_difference([1.0, 0.5], [0.0, 0.0], groups=["a", "a"])
    with pytest.raises(ValueError, match="one group per value"):
        paired_difference([1.0, 0.5, 0.2], [0.0, 0.0, 0.0], groups=["a", "b"])
