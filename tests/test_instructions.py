import functools
import json

import pytest
import torch

from llmtut import bpe
from llmtut import instructions as ins
from llmtut.profiles import HubUnavailableError

P, M = 50256, -100
WITH_INPUT = {"instruction": "Correct the spelling of the word.", "input": "baer", "output": "bear"}
NO_INPUT = {"instruction": "What is 7 + 5?", "input": "", "output": "12"}


@pytest.fixture(scope="module")
def records():
    return ins.tiny_instruction_records(with_task=True)


# --- records -----------------------------------------------------------------------------------


def test_at_least_1000_distinct_valid_records(records):
    plain = ins.tiny_instruction_records()
    assert len(plain) == 1100 and ins.validate_records(plain) is plain
    assert len({(r["instruction"], r["input"], r["output"]) for r in plain}) == len(plain)
    assert all(set(r) == set(ins.FIELDS) for r in plain)
    assert [{k: r[k] for k in ins.FIELDS} for r in records] == plain  # with_task only adds the name


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


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ({"instruction": "x"}, "must be a list of records.*got dict"),
        ([WITH_INPUT, ["not", "an", "object"]], "record 1: expected an object"),
        ([WITH_INPUT, NO_INPUT, {"instruction": "a", "input": ""}], "record 2: field 'output' is missing"),
        ([NO_INPUT, {**WITH_INPUT, "output": 12}], "record 1: field 'output' is int, expected str"),
        ([{**NO_INPUT, "input": None}], "record 0: field 'input' is NoneType, expected str"),
    ],
)
def test_validation_names_the_record_and_the_field(records, message):
    with pytest.raises(ValueError, match=message):
        ins.validate_records(records)


def test_write_then_load_round_trips_utf8_json(tmp_path, records):
    recs = ins.tiny_instruction_records(50)
    path = ins.write_records(recs, tmp_path / "sub" / "data.json")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("[\n") and json.loads(text) == recs
    assert ins.load_records(path) == recs
    ins.write_records([{"instruction": "Translate the word into Spanish.", "input": "child", "output": "niño"}], path)
    assert "niño" in path.read_text(encoding="utf-8")  # accents written as they are


def test_load_records_validates(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([WITH_INPUT, {"instruction": "x", "output": "y"}]))
    with pytest.raises(ValueError, match="record 1: field 'input' is missing"):
        ins.load_records(path)


def test_tiny_profile_writes_then_loads_back(tmp_path):
    data = ins.load_instruction_data(tmp_path / "instruction-data.json", "tiny", n=100, seed=3)
    assert data == ins.tiny_instruction_records(100, seed=3)
    assert ins.load_records(tmp_path / "instruction-data.json") == data


def test_download_failure_names_the_url_and_tiny(tmp_path):
    url = "http://127.0.0.1:9/x.json"  # nothing listens on the discard port: no real network
    path = tmp_path / "instruction-data.json"
    with pytest.raises(HubUnavailableError, match=r"127\.0\.0\.1:9/x\.json.*PROFILE = 'tiny'"):
        ins.download_instruction_data(path, url=url, timeout=5)
    assert not path.exists() and not list(tmp_path.iterdir())  # no partial file left to trust


def test_download_uses_an_existing_file_without_network(tmp_path):
    path = ins.write_records([WITH_INPUT], tmp_path / "instruction-data.json")
    assert ins.download_instruction_data(path, url="http://127.0.0.1:9/x.json") == [WITH_INPUT]


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


# --- split -------------------------------------------------------------------------------------


def test_split_is_85_10_5_disjoint_complete_and_reproducible(records):
    train, test, val = ins.split_records(records, seed=123)
    assert (len(train), len(test), len(val)) == (935, 110, 55)
    keys = [json.dumps(r, sort_keys=True) for r in train + test + val]
    assert sorted(keys) == sorted(json.dumps(r, sort_keys=True) for r in records)  # each exactly once
    assert ins.split_records(records, seed=123) == (train, test, val)
    assert ins.split_records(records, seed=124)[0] != train
    assert train != records[:935]  # shuffled, not the first 85%


def test_split_rejects_bad_fractions(records):
    with pytest.raises(ValueError, match="summing to 1"):
        ins.split_records(records, seed=0, fractions=(0.8, 0.1, 0.05))


# --- dataset -----------------------------------------------------------------------------------


def char_encode(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_dataset_tokenizes_prompt_plus_response_like_the_source():
    ds = ins.InstructionDataset([WITH_INPUT, NO_INPUT], char_encode)
    assert len(ds) == 2 and ds[0] == char_encode(ins.format_alpaca(WITH_INPUT, with_response=True))
    masked = ins.InstructionDataset([WITH_INPUT, NO_INPUT], char_encode, ins.format_phi3, mask_instructions=True)
    item = masked[1]
    assert isinstance(item, ins.InstructionItem)
    assert item.input_ids == char_encode(ins.format_phi3(NO_INPUT, with_response=True))
    assert item.prompt_len == len(ins.format_phi3(NO_INPUT))


@pytest.fixture(scope="module")
def bloom_like():
    texts = [ins.format_alpaca(r, with_response=True) for r in ins.tiny_instruction_records(300)]
    return bpe.train_bloom_like_tokenizer(texts, 500)


def test_dataset_with_a_bpe_tokenizer_masks_only_the_prompt(bloom_like):
    recs = ins.tiny_instruction_records(40, seed=5)
    ds = ins.InstructionDataset(recs, bloom_like, mask_instructions=True)
    inputs, targets = ins.collate([ds[i] for i in range(8)], pad_token_id=bloom_like.pad_token_id, mask_instructions=True)
    for row, (ids, prompt_len) in enumerate(ds[i] for i in range(8)):
        kept = targets[row][targets[row] != M].tolist()
        assert kept == ids[prompt_len:] + [bloom_like.pad_token_id]  # the response, then end-of-text
        text = bloom_like.decode(ids[prompt_len:])
        assert text.endswith(recs[row]["output"]) and "### Instruction" not in text
    # BPE merges across the boundary (".\n\n" is one token), so the prompt alone tokenizes longer
    # than its share of the full text; the dataset counts only the shared prefix.
    merged = [i for i, r in enumerate(recs) if ds[i].prompt_len < len(bloom_like.encode(ins.format_alpaca(r)))]
    assert merged and all(ds[i].prompt_len == len(bloom_like.encode(ins.format_alpaca(recs[i]))) - 1 for i in merged)


# --- collate -----------------------------------------------------------------------------------


def test_toy_batch_truncated_to_4_is_exactly_the_source():
    inputs, targets = ins.collate(ins.TOY_BATCH, allowed_max_length=4)
    assert inputs.tolist() == [[0, 1, 2, 3], [5, 6, P, P], [7, 8, 9, P]]
    assert targets.tolist() == [[1, 2, 3, 4], [6, P, M, M], [8, 9, P, M]]
    expected = ins.toy_collate_expected()
    assert torch.equal(inputs, expected[0]) and torch.equal(targets, expected[1])
    assert inputs.dtype == targets.dtype == torch.long


def test_toy_batch_untruncated():
    inputs, targets = ins.collate(ins.TOY_BATCH)
    assert inputs.tolist() == [[0, 1, 2, 3, 4], [5, 6, P, P, P], [7, 8, 9, P, P]]
    assert targets.tolist() == [[1, 2, 3, 4, P], [6, P, M, M, M], [8, 9, P, M, M]]
    expected = ins.toy_collate_expected(allowed_max_length=None)
    assert torch.equal(inputs, expected[0]) and torch.equal(targets, expected[1])


def test_only_the_first_pad_of_each_row_is_a_target():
    _, targets = ins.collate([[1], [1, 2, 3, 4, 5, 6]], pad_token_id=0, ignore_index=-1)
    assert targets.tolist() == [[0, -1, -1, -1, -1, -1], [2, 3, 4, 5, 6, 0]]
    assert all((row == 0).sum() == 1 for row in targets)  # every row learns to stop exactly once
    expected = ins.toy_collate_expected(pad=0, allowed_max_length=3, ignore_index=-1)
    assert all(torch.equal(a, b) for a, b in zip(ins.collate(ins.TOY_BATCH, 0, -1, 3), expected, strict=True))


def test_device_argument_and_partial():
    fn = functools.partial(ins.collate, device="meta", allowed_max_length=4)
    inputs, targets = fn(ins.TOY_BATCH)
    assert inputs.device.type == targets.device.type == "meta" and inputs.shape == (3, 4)
    inputs, _ = ins.collate(ins.TOY_BATCH, device=torch.device("cpu"))
    assert inputs.device.type == "cpu"


def test_mask_instructions_masks_exactly_the_prompt_positions():
    items = [ins.InstructionItem([10, 11, 12, 20, 21], 3), ins.InstructionItem([10, 20], 1)]
    inputs, targets = ins.collate(items, pad_token_id=0, mask_instructions=True)
    assert inputs.tolist() == [[10, 11, 12, 20, 21], [10, 20, 0, 0, 0]]
    # targets predicting tokens 1 .. prompt_len - 1 (11, 12) are ignored; 20 (the first response
    # token), 21 and the end-of-text are kept; a one-token prompt masks nothing.
    assert targets.tolist() == [[M, M, 20, 21, 0], [20, 0, M, M, M]]
    unmasked = ins.collate(items, pad_token_id=0)[1]
    assert unmasked.tolist() == [[11, 12, 20, 21, 0], [20, 0, M, M, M]]  # items work unmasked too


def test_mask_instructions_needs_prompt_lengths():
    with pytest.raises(ValueError, match=r"item 0 is a plain list.*mask_instructions=True"):
        ins.collate(ins.TOY_BATCH, mask_instructions=True)


def test_an_all_masked_item_is_an_error_saying_what_to_change():
    items = [ins.InstructionItem([1, 2, 3, 4, 5], 2), ins.InstructionItem([1, 2, 3, 4, 5, 6, 7], 6)]
    assert ins.collate(items, pad_token_id=0, allowed_max_length=6, mask_instructions=True)[1][1].tolist() == [M] * 5 + [7]
    with pytest.raises(ValueError, match=r"item 1 has no target.*prompt is 6 tokens.*allowed_max_length=5.*at least 6"):
        ins.collate(items, pad_token_id=0, allowed_max_length=5, mask_instructions=True)


@pytest.mark.parametrize("bad", [0, -1])
def test_allowed_max_length_must_be_positive(bad):
    with pytest.raises(ValueError, match="at least 1"):
        ins.collate(ins.TOY_BATCH, allowed_max_length=bad)


def test_knowledge_prose_states_the_facts_without_the_instruction_format():
    docs = ins.knowledge_prose(200, seed=0)
    assert docs == ins.knowledge_prose(200, seed=0) and docs != ins.knowledge_prose(200, seed=1)
    text = " ".join(docs)
    assert "### " not in text and "Instruction" not in text
    import re

    pairs = {frozenset(p) for p in ins.ANTONYMS}
    stated = re.findall(r"The opposite of (\w+) is (\w+)\.", text)
    assert stated and all(frozenset(p) in pairs for p in stated)  # every stated opposite is a true one
    sums = re.findall(r"(\d+) plus (\d+) is (\d+)\.", text)
    assert sums and all(int(a) + int(b) == int(c) for a, b, c in sums)
    plurals = re.findall(r"One (\w+), two (\w+)\.", text)
    assert plurals and all(ins.plural(one) == many for one, many in plurals)
