import re
from collections import Counter

import pytest

from llmtut.formats import answer_text, format_question
from llmtut.world import science

QUESTIONS = science.make_questions(1200, seed=0)
RECORDS = science.to_arc_records(QUESTIONS)


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", text)


def _readings() -> dict[str, list[tuple[science.Relation, str, str]]]:
    """Question text -> every (relation, side given, term given) that renders to it, from the templates."""
    out: dict[str, list[tuple[science.Relation, str, str]]] = {}
    for r in science.RELATIONS:
        objects = sorted({o for _, o in r.facts} if r.asked is None else set(r.asked))
        for template in r.ask_subject:
            for o in objects:
                out.setdefault(science.render(template, o=o), []).append((r, "object", o))
        for template in r.ask_object:
            for s, _ in r.facts:
                out.setdefault(science.render(template, s=s), []).append((r, "subject", s))
    return out


def test_knowledge_base_is_large_varied_and_well_formed():
    assert len(science.FACTS) >= 120
    assert len(science.FAMILIES) >= 8
    assert len({f.sentence for f in science.FACTS}) == len(science.FACTS)
    for r in science.RELATIONS:
        subjects = [s for s, _ in r.facts]
        assert len(set(subjects)) == len(subjects), r.name  # one object per subject
        objects = {o for _, o in r.facts}
        if r.ask_object:
            assert len(objects) >= 4, r.name
        for o in objects if r.asked is None else r.asked:
            assert sum(o2 != o for _, o2 in r.facts) >= 3, (r.name, o)


def test_questions_are_deterministic_and_seed_dependent():
    assert science.make_questions(300, seed=0) == science.make_questions(300, seed=0)
    assert science.make_questions(300, seed=0) == QUESTIONS[:300]  # a longer list extends a shorter one
    assert [q.question for q in science.make_questions(300, seed=1)] != [q.question for q in QUESTIONS[:300]]
    assert science.science_prose(20, seed=1) == science.science_prose(20, seed=1)
    assert science.science_prose(20, seed=1) != science.science_prose(20, seed=2)


def test_at_least_1000_distinct_questions_over_every_family():
    assert len(QUESTIONS) == 1200
    assert len({(q.question, tuple(q.choices["text"])) for q in QUESTIONS}) >= 1000
    assert len({q.question for q in QUESTIONS}) >= 400  # varied texts, not only reshuffled choices
    assert {q.family for q in QUESTIONS} == set(science.FAMILIES)
    assert len({q.id for q in QUESTIONS}) == 1200


def test_exactly_one_choice_is_true_under_the_knowledge_base_and_the_key_names_it():
    readings = _readings()
    for q in QUESTIONS:
        texts, labels = q.choices["text"], q.choices["label"]
        assert q.question in readings, q.question
        for r, given, term in readings[q.question]:
            facts = set(r.facts)
            if given == "object":
                true = [c for c in texts if (c, term) in facts]
            else:
                true = [c for c in texts if (term, c) in facts]
            assert len(true) == 1, (q.question, texts)
            assert labels[texts.index(true[0])] == q.answerKey, q.question


def test_answer_positions_are_roughly_uniform():
    counts = Counter(q.answerKey for q in QUESTIONS)
    assert set(counts) == set("ABCD")
    assert all(0.15 <= c / len(QUESTIONS) <= 0.35 for c in counts.values()), counts


def test_four_distinct_choices_and_the_answer_is_not_in_the_question():
    for q, rec in zip(QUESTIONS, RECORDS, strict=True):
        assert len(q.choices["text"]) == 4 and len(set(q.choices["text"])) == 4
        answer = answer_text(rec)
        assert not re.search(rf"\b{re.escape(answer)}\b", q.question, re.IGNORECASE), q.question


def test_rationales_state_the_fact_and_conclude_with_the_answer():
    sentences = {f.sentence for f in science.FACTS}
    for q, rec in zip(QUESTIONS, RECORDS, strict=True):
        answer = answer_text(rec)
        assert q.fact in sentences
        assert q.rationale == f"{q.fact} So the answer is {answer}."
        assert answer.lower() in q.fact.lower()


def test_the_words_that_decide_an_answer_have_four_letters_or_more():
    readings = _readings()
    for q in QUESTIONS:
        for text in q.choices["text"]:  # every choice, so a perturbation can reach any of them
            assert all(len(w) >= 4 for w in _words(text)), text
        for _, _, term in readings[q.question]:  # what the question gives: a word of it can be perturbed
            assert any(len(w) >= 4 for w in _words(term)), term


def test_records_have_the_arc_structure():
    for q, rec in zip(QUESTIONS, RECORDS, strict=True):
        assert set(rec) == {"id", "question", "choices", "answerKey"}
        assert set(rec["choices"]) == {"text", "label"}
        assert rec["choices"]["label"] == ["A", "B", "C", "D"]
        assert rec["answerKey"] in rec["choices"]["label"]
        assert all(isinstance(t, str) and t for t in rec["choices"]["text"])
        assert (rec["id"], rec["question"], rec["choices"], rec["answerKey"]) == (
            q.id, q.question, q.choices, q.answerKey
        )
    RECORDS[0]["choices"]["text"][0] = "changed"  # records are copies
    assert QUESTIONS[0].choices["text"][0] != "changed"


def test_format_question_and_answer_text():
    record = {
        "id": "x",
        "question": "Which tool is used to measure temperature?",
        "choices": {"text": ["ruler", "thermometer", "balance", "stopwatch"], "label": ["A", "B", "C", "D"]},
        "answerKey": "B",
    }
    assert format_question(record) == (
        "Question: Which tool is used to measure temperature?\nChoices:\n"
        "A. ruler\nB. thermometer\nC. balance\nD. stopwatch\n"
    )
    assert answer_text(record) == "thermometer"
    hub_style = {"question": "Q?", "choices": {"text": ["x", "y", "z"], "label": ["1", "2", "3"]},
                 "answerKey": "3"}
    assert format_question(hub_style) == "Question: Q?\nChoices:\n1. x\n2. y\n3. z\n"
    assert answer_text(hub_style) == "z"


def test_every_fact_appears_in_the_prose():
    docs = science.science_prose(len(science.FACTS) // 3 + 1, seed=0)
    text = "\n".join(docs)
    assert [f.sentence for f in science.FACTS if f.sentence not in text] == []
    assert all(3 <= len(re.findall(r"[.?!](?:\s|$)", d)) <= 6 for d in docs)
    assert "Question:" not in text and "So the answer is" not in text


def test_families_filter():
    qs = science.make_questions(100, seed=0, families=["tools", "space"])
    assert {q.family for q in qs} == {"tools", "space"}
    docs = science.science_prose(50, seed=0, families=["body"])
    assert all(d.startswith(("The job of", "People use")) for d in docs)
    with pytest.raises(ValueError, match="unknown families"):
        science.make_questions(10, seed=0, families=["chemistry"])


def test_asking_for_more_questions_than_a_family_has_fails_clearly():
    with pytest.raises(ValueError, match="distinct questions"):
        science.make_questions(8000, seed=0, families=["plants"])  # about 7200 exist
