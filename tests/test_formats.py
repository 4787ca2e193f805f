import json
import random

from llmtut import formats as ins
from llmtut.world import hub

WITH_INPUT = {"instruction": "Correct the spelling of the word.", "input": "baer", "output": "bear"}
NO_INPUT = {"instruction": "What is 7 + 5?", "input": "", "output": "12"}


# --- prompt styles -----------------------------------------------------------------------------


def test_alpaca_with_and_without_input():
    preamble = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    assert ins.format_alpaca(WITH_INPUT) == (
        f"{preamble}\n\n### Instruction:\nCorrect the spelling of the word.\n\n### Input:\nbaer"
    )
    assert ins.format_alpaca(WITH_INPUT, with_response=True) == ins.format_alpaca(WITH_INPUT) + "\n\n### Response:\nbear"
    assert ins.format_alpaca(NO_INPUT, with_response=True) == (
        f"{preamble}\n\n### Instruction:\nWhat is 7 + 5?\n\n### Response:\n12"
    )
    assert "### Input:" not in ins.format_alpaca(NO_INPUT)


def test_phi3_with_and_without_input():
    assert ins.format_phi3(WITH_INPUT) == "<|user|>\nCorrect the spelling of the word.\nbaer<|end|>"
    assert ins.format_phi3(WITH_INPUT, with_response=True) == (
        "<|user|>\nCorrect the spelling of the word.\nbaer<|end|>\n<|assistant|>\nbear"
    )
    assert ins.format_phi3(NO_INPUT, with_response=True) == "<|user|>\nWhat is 7 + 5?<|end|>\n<|assistant|>\n12"


def test_styles_end_prompt_where_the_response_header_starts():
    for name, fmt in ins.PROMPT_STYLES.items():
        for rec in (WITH_INPUT, NO_INPUT):
            assert fmt(rec, with_response=True) == fmt(rec) + ins.RESPONSE_HEADERS[name] + rec["output"]


def test_messages_with_and_without_input():
    assert ins.to_messages(WITH_INPUT) == [
        {"role": "user", "content": "Correct the spelling of the word.\nbaer"},
        {"role": "assistant", "content": "bear"},
    ]
    assert ins.to_messages(NO_INPUT)[0] == {"role": "user", "content": "What is 7 + 5?"}


# --- ARC answers (chapter 06) ------------------------------------------------------------------


def test_parse_answer_reads_the_rest_of_the_line_after_the_last_the_answer_is():
    assert ins.parse_answer(" A lever is a stiff bar. So the answer is lever.") == "lever"
    assert ins.parse_answer("A lever is a stiff bar.") is None
    assert ins.parse_answer("So the answer is ") is None  # nothing after the cue
    # the answer runs to the end of its line: a sentence answer keeps its own periods
    assert ins.parse_answer("So the answer is inclined plane. Extra") == "inclined plane. Extra"
    assert ins.parse_answer("So the answer is Washington, D.C.") == "Washington, D.C"
    assert ins.parse_answer("So the answer is It melts..") == "It melts"
    assert ins.parse_answer("So the answer is lever.\nQuestion: next one") == "lever"
    # the last cue counts, in any case, with or without a colon
    assert ins.parse_answer("So the answer is lever.\nNo: the answer is pulley.") == "pulley"
    assert ins.parse_answer("THE ANSWER IS: pulley") == "pulley"
    # the source's quoted style, with quotes of any kind around the answer, the period in or out
    assert ins.parse_answer("Therefore, the answer is 'dry palms'.") == "dry palms"
    assert ins.parse_answer("Therefore, the answer is 'a plant's leaves'") == "a plant's leaves"
    assert ins.parse_answer('So the answer is "It melts."') == "It melts"
    assert ins.parse_answer("So the answer is \u2018the students\u2019 notes\u2019.") == "the students\u2019 notes"
    assert ins.parse_answer("So the answer is the students'.") == "the students'"  # one quote is not a pair


def test_same_answer_ignores_case_and_final_periods_but_not_other_words():
    assert ins.same_answer("Lever", "lever") and ins.same_answer("it melts", "It melts.")
    assert not ins.same_answer(None, "lever")
    assert not ins.same_answer("lever arm", "lever") and not ins.same_answer("levers", "lever")


HUB_ARC = hub.default_samples() / "allenai--ai2_arc" / "ARC-Easy" / "train.jsonl"


def arc_first_half() -> list[dict]:
    """ARC-Easy's `train[:50%]`: the first 1126 real rows when ../shared/hub-samples is there, else generated
    rows of the same layout whose answers are, as ARC's often are, whole sentences that end with a period,
    with apostrophes, quotes and other labels (1-4, A-E)."""
    if HUB_ARC.is_file():
        with HUB_ARC.open() as f:
            rows = [json.loads(line) for line in f]
        return rows[: (len(rows) + 1) // 2]  # datasets' train[:50%] rounds up: 1126 of 2251
    rng = random.Random(0)
    things = ["a plant's leaves", "the students' notes", "Earth's moon", "the Sun", "ice", "a magnet", "water vapor"]
    verbs = ["melts", "grows toward light", "reflects light", "attracts iron", "cools", "doesn't change"]
    rows = []
    for i in range(1126):
        n = rng.choice([3, 4, 4, 4, 5])
        labels = rng.choice(["ABCDE", "12345"])[:n]
        texts = set()
        while len(texts) < n:
            kind = rng.random()
            if kind < 0.4:  # a sentence with its own period
                texts.add(f"{rng.choice(things).capitalize()} {rng.choice(verbs)}.")
            elif kind < 0.7:
                texts.add(rng.choice(things))
            else:
                texts.add(f"{rng.choice(things)} and {rng.choice(things)}, e.g. \"{rng.choice(verbs)}\"")
        texts = sorted(texts)
        rng.shuffle(texts)
        rows.append({"id": f"gen_{i}", "question": f"Which is true of item {i}?",
                     "choices": {"text": texts, "label": list(labels)}, "answerKey": rng.choice(labels)})
    return rows


def test_every_arc_answer_is_judged_right_in_both_styles_and_a_wrong_choice_is_not():
    rows = arc_first_half()
    assert len(rows) == 1126
    assert any(ins.answer_text(r).endswith(".") for r in rows) and any("'" in ins.answer_text(r) for r in rows)
    for r in rows:
        answer = ins.answer_text(r)
        ours, sources = f"Because ... So the answer is {answer}.", f"the answer is '{answer}'"
        assert ins.is_correct(ours, r), (ours, r)
        assert ins.is_correct(sources, r), (sources, r)
        for wrong in r["choices"]["text"]:
            if wrong.rstrip(".").casefold() != answer.rstrip(".").casefold():
                assert not ins.is_correct(f"Because ... So the answer is {wrong}.", r), (wrong, r)
                assert not ins.is_correct(f"the answer is '{wrong}'", r), (wrong, r)
