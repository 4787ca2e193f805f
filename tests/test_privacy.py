import pytest
import torch

from llmtut.formats import format_question
from llmtut.inferdpt import InferDPTKit
from llmtut.privacy import content_words, leak_rate, perturb_record, raw_prompts_seen, record_content_words

RECORD = {"id": "q1", "question": "Which planet has rings around it?",
          "choices": {"text": ["saturn", "mercury", "venus", "mars"], "label": ["A", "B", "C", "D"]},
          "answerKey": "A"}


@pytest.fixture(scope="module")
def kit():
    words = ["planet", "rings", "around", "saturn", "mercury", "venus", "mars", "comet", "moon", "orbit", "star"]
    torch.manual_seed(0)
    embeddings = torch.randn(len(words), 8)
    delta_f = embeddings.max(dim=0).values - embeddings.min(dim=0).values
    return InferDPTKit(words, embeddings, delta_f)


def test_content_words_are_long_lowercased_and_not_function_words():
    assert content_words("Which Planet has rings around it? Mars.") == {"planet", "rings", "around", "mars"}
    assert content_words("It is on the way.") == set()


def test_leak_rate_pools_the_words_that_reach_each_received_text():
    private = ["Which planet has rings?", "Where does a comet orbit?"]  # content: planet rings | comet orbit
    assert leak_rate(private, private) == 1.0
    assert leak_rate(private, ["Which star has PLANET moons?", "Where does a moon spin?"]) == 0.25
    # a word counts only where it reaches the text sent for *that* question
    assert leak_rate(private, ["Where does a comet orbit?", "Which planet has rings?"]) == 0.0
    assert leak_rate(["It is so."], ["anything"]) == 0.0
    with pytest.raises(ValueError, match="one received text per private text"):
        leak_rate(private, private[:1])


def test_the_layout_words_of_a_prompt_are_not_content_words_of_a_record():
    # a record's content words are those of its question and choice texts only
    assert record_content_words(RECORD) == {"planet", "rings", "around", "saturn", "mercury", "venus", "mars"}
    assert "question" in content_words(format_question(RECORD))  # the rendered prompt would count them
    # a request that keeps the layout but none of the record's words leaks nothing ...
    other = {**RECORD, "question": "Where does a comet orbit?", "choices": {**RECORD["choices"], "text": list("wxyz")}}
    assert leak_rate([RECORD], [format_question(other)]) == 0.0
    assert leak_rate([format_question(RECORD)], [format_question(other)]) == 2 / 9  # "question", "choices"
    # ... and one that carries the question's text but none of its choices leaks 3 of 7
    assert leak_rate([RECORD], ["Which planet has rings around it?"]) == 3 / 7
    assert leak_rate([RECORD], [format_question(RECORD)]) == 1.0


def test_raw_prompts_seen_counts_requests_that_contain_a_private_question():
    requests = ["Question: Which planet has rings?\nAnswer:", "Question: Which star has moons?\nAnswer:", "x"]
    assert raw_prompts_seen(["Which planet has rings?  ", "Why?"], requests) == 1
    assert raw_prompts_seen(["Which comet?"], requests) == 0


def test_perturb_record_keeps_the_layout_and_is_deterministic(kit):
    out = perturb_record(kit, RECORD, 0.5, seed=(0, 1))
    assert out == perturb_record(kit, RECORD, 0.5, seed=(0, 1))
    assert out["answerKey"] == "A" and out["choices"]["label"] == RECORD["choices"]["label"] and out["id"] == "q1"
    assert out != RECORD  # at a small epsilon some words change
    assert RECORD["question"] == "Which planet has rings around it?"  # the input is not modified
    lines = format_question(out).splitlines()
    assert lines[0].startswith("Question: ") and lines[1] == "Choices:" and lines[2].startswith("A. ")
    assert perturb_record(kit, RECORD, None, seed=0) == RECORD
    assert any(perturb_record(kit, RECORD, 0.5, seed=s) != out for s in range(5))


def test_perturb_record_refuses_a_newline_inside_a_text(kit):
    broken = {**RECORD, "question": "Which planet\nhas rings?"}
    with pytest.raises(ValueError, match="newline"):
        perturb_record(kit, broken, 1.0, seed=0)
