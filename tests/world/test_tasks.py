import re

import pytest

from llmtut import instructions
from llmtut.world import tasks as ins


@pytest.fixture(scope="module")
def records():
    return ins.tiny_instruction_records(with_task=True)


def test_at_least_1000_distinct_valid_records(records):
    plain = ins.tiny_instruction_records()
    assert len(plain) == 1100 and instructions.validate_records(plain) is plain
    assert len({(r["instruction"], r["input"], r["output"]) for r in plain}) == len(plain)
    assert all(set(r) == set(instructions.FIELDS) for r in plain)
    assert [{k: r[k] for k in instructions.FIELDS} for r in records] == plain  # with_task only adds the name


def test_same_seed_same_list_other_seed_other_list():
    assert ins.tiny_instruction_records(300, seed=1) == ins.tiny_instruction_records(300, seed=1)
    assert ins.tiny_instruction_records(300, seed=1) != ins.tiny_instruction_records(300, seed=2)


def test_fewer_records_are_a_subset_of_more(records):
    few = ins.tiny_instruction_records(200, with_task=True)
    assert len(few) == 200 and all(r in records for r in few)


def test_every_task_in_a_balanced_mix_with_and_without_input(records):
    counts = {t: sum(r["task"] == t for r in records) for t in ins.TASKS}
    assert set(counts) == {"spelling", "plural", "antonym", "translate", "capitalize", "uppercase", "arithmetic", "simile"}
    assert max(counts.values()) - min(counts.values()) <= 1
    for task in ins.TASKS:
        inputs = [r["input"] for r in records if r["task"] == task]
        assert "" in inputs and any(inputs), task  # both Alpaca forms occur in every task
    assert all(r["output"] and r["instruction"] for r in records)


def test_answers_are_the_correct_ones(records):
    by_task = {t: [r for r in records if r["task"] == t] for t in ins.TASKS}
    for r in by_task["translate"]:
        word = r["input"] or r["instruction"].split("'")[1]
        assert ins.WORD_PAIRS[word] == r["output"]
    for r in by_task["arithmetic"]:
        expr = r["input"] or r["instruction"].removeprefix("What is ").removeprefix("Calculate ")[:-1]
        assert str(eval(expr)) == r["output"]  # "7 + 5", "9 - 3", "4 * 6": plain integer expressions
    for r in by_task["uppercase"]:
        assert r["output"] == r["output"].upper() and r["output"].lower() in (r["input"] or r["instruction"]).lower()
    antonyms = dict(ins.ANTONYMS) | {b: a for a, b in ins.ANTONYMS}
    assert all(antonyms[r["input"] or r["instruction"].split("'")[1]] == r["output"] for r in by_task["antonym"])
    for r in by_task["spelling"]:
        assert (r["input"] or r["instruction"].split("'")[1]) in ins.misspellings(r["output"])


def test_plural_rules_and_irregulars():
    cases = {"dog": "dogs", "box": "boxes", "church": "churches", "city": "cities", "boy": "boys",
             "child": "children", "mouse": "mice", "leaf": "leaves", "potato": "potatoes", "sheep": "sheep"}
    assert {w: ins.plural(w) for w in cases} == cases


def test_misspellings_are_one_edit_and_never_the_word():
    assert ins.misspellings("bear") == ["baer", "bearr"]
    assert "aple" in ins.misspellings("apple") and "frend" in ins.misspellings("friend")
    assert "loin" in ins.misspellings("lion") and "loin" in ins.REAL_WORD_SLIPS  # made, then filtered
    assert all(m != "lion" for m in ins.misspellings("lion"))


def test_asking_for_more_records_than_the_world_has_is_an_error():
    with pytest.raises(ValueError, match="antonym.*only"):
        ins.tiny_instruction_records(n=8 * 600)


# --- validation and files ----------------------------------------------------------------------



def test_knowledge_prose_states_the_facts_without_the_instruction_format():
    docs = ins.knowledge_prose(200, seed=0)
    assert docs == ins.knowledge_prose(200, seed=0) and docs != ins.knowledge_prose(200, seed=1)
    text = " ".join(docs)
    assert "### " not in text and "Instruction" not in text
    pairs = {frozenset(p) for p in ins.ANTONYMS}
    stated = re.findall(r"The opposite of (\w+) is (\w+)\.", text)
    assert stated and all(frozenset(p) in pairs for p in stated)  # every stated opposite is a true one
    sums = re.findall(r"(\d+) plus (\d+) is (\d+)\.", text)
    assert sums and all(int(a) + int(b) == int(c) for a, b, c in sums)
    plurals = re.findall(r"One (\w+), two (\w+)\.", text)
    assert plurals and all(ins.plural(one) == many for one, many in plurals)
