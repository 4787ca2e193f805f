import functools
import json

import pytest
import torch

from llmtut import instructions as ins
from llmtut.formats import RESPONSE_HEADERS, format_alpaca, format_phi3
from llmtut.world import bpe, hub, tasks

P, M = 50256, -100
WITH_INPUT = {"instruction": "Correct the spelling of the word.", "input": "baer", "output": "bear"}
NO_INPUT = {"instruction": "What is 7 + 5?", "input": "", "output": "12"}


@pytest.fixture(scope="module")
def records():
    return tasks.tiny_instruction_records(with_task=True)



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
    recs = tasks.tiny_instruction_records(50)
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


# --- split -------------------------------------------------------------------------------------


def test_split_is_85_10_5_disjoint_complete_and_reproducible(records):
    train, test, val = ins.split_records(records, shuffle_seed=123)
    assert (len(train), len(test), len(val)) == (935, 110, 55)
    keys = [json.dumps(r, sort_keys=True) for r in train + test + val]
    assert sorted(keys) == sorted(json.dumps(r, sort_keys=True) for r in records)  # each exactly once
    assert ins.split_records(records, shuffle_seed=123) == (train, test, val)
    assert ins.split_records(records, shuffle_seed=124)[0] != train
    assert train != records[:935]  # shuffled, not the first 85%


def test_split_without_a_seed_keeps_the_order_as_the_source():
    recs = [{"instruction": f"i{k}", "input": "", "output": f"o{k}"} for k in range(1100)]
    before = [dict(r) for r in recs]
    train, test, val = ins.split_records(recs, shuffle_seed=None)
    assert (train, test, val) == (recs[:935], recs[935:1045], recs[1045:])
    ins.split_records(recs, shuffle_seed=5)
    assert recs == before  # the caller's list is never reordered
    # int(n * share) as the source, for other sizes too: 85 + 10 + the rest
    assert [len(part) for part in ins.split_records(recs[:99], shuffle_seed=None)] == [84, 9, 6]


def test_split_needs_an_explicit_shuffle_seed(records):
    with pytest.raises(TypeError, match="shuffle_seed"):
        ins.split_records(records)
    with pytest.raises(ValueError, match="shuffle_seed must be an int.*or None"):
        ins.split_records(records, shuffle_seed="123")


def test_split_rejects_bad_fractions(records):
    with pytest.raises(ValueError, match="summing to 1"):
        ins.split_records(records, shuffle_seed=0, fractions=(0.8, 0.1, 0.05))


HUB_SAMPLES = hub.default_samples()
HUB_INSTRUCTIONS = HUB_SAMPLES / "rasbt--instruction-data" / "instruction-data.json"
needs_hub_instructions = pytest.mark.skipif(
    not HUB_INSTRUCTIONS.exists(), reason="../shared/hub-samples has no instruction-data.json (a fresh clone has none)"
)


@needs_hub_instructions
def test_the_source_file_splits_as_the_source_935_110_55():
    data = ins.load_records(HUB_INSTRUCTIONS)
    assert len(data) == 1100
    train, test, val = ins.split_records(data, shuffle_seed=None)
    assert (len(train), len(test), len(val)) == (935, 110, 55)
    assert train == data[:935] and test == data[935:1045] and val == data[1045:]
    # a seeded shuffle would give another test set: the source's published test answers would not line up
    assert ins.split_records(data, shuffle_seed=123)[1] != data[935:1045]


# --- dataset -----------------------------------------------------------------------------------


def char_encode(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_dataset_tokenizes_prompt_plus_response_like_the_source():
    ds = ins.InstructionDataset([WITH_INPUT, NO_INPUT], char_encode)
    assert len(ds) == 2 and ds[0] == char_encode(format_alpaca(WITH_INPUT, with_response=True))
    masked = ins.InstructionDataset([WITH_INPUT, NO_INPUT], char_encode, format_phi3, mask_instructions=True)
    item = masked[1]
    assert isinstance(item, ins.InstructionItem)
    assert item.input_ids == char_encode(format_phi3(NO_INPUT, with_response=True))
    assert item.prompt_len == len(format_phi3(NO_INPUT))


@pytest.fixture(scope="module")
def bloom_like():
    texts = [format_alpaca(r, with_response=True) for r in tasks.tiny_instruction_records(300)]
    return bpe.train_bloom_like_tokenizer(texts, 500)


def test_dataset_with_a_bpe_tokenizer_masks_only_the_prompt(bloom_like):
    recs = tasks.tiny_instruction_records(40, seed=5)
    ds = ins.InstructionDataset(recs, bloom_like, mask_instructions=True)
    inputs, targets = ins.collate([ds[i] for i in range(8)], pad_token_id=bloom_like.pad_token_id, mask_instructions=True)
    for row, (ids, prompt_len) in enumerate(ds[i] for i in range(8)):
        kept = targets[row][targets[row] != M].tolist()
        assert kept == ids[prompt_len:] + [bloom_like.pad_token_id]  # the response, then end-of-text
        text = bloom_like.decode(ids[prompt_len:])
        assert text.endswith(recs[row]["output"]) and "### Instruction" not in text
    # BPE merges across the boundary (".\n\n" is one token), so the prompt alone tokenizes longer
    # than its share of the full text; the dataset counts only the shared prefix.
    merged = [i for i, r in enumerate(recs) if ds[i].prompt_len < len(bloom_like.encode(format_alpaca(r)))]
    assert merged and all(ds[i].prompt_len == len(bloom_like.encode(format_alpaca(recs[i]))) - 1 for i in merged)


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


def test_masked_alpaca_examples_train_the_response_header_the_output_and_end_of_text():
    """What `mask_instructions=True` leaves to the loss, exactly: the prompt is `format_alpaca(record)`
    (preamble, instruction, input), so the `### Response:` header is trained, as in the source's ex. 7.2."""
    ds = ins.InstructionDataset([WITH_INPUT, NO_INPUT], char_encode, mask_instructions=True)
    _, targets = ins.collate([ds[0], ds[1]], pad_token_id=0, mask_instructions=True)
    for row, rec in enumerate([WITH_INPUT, NO_INPUT]):
        kept = targets[row][targets[row] != M].tolist()
        assert kept == char_encode(RESPONSE_HEADERS["alpaca"] + rec["output"]) + [0]


@needs_hub_instructions
def test_with_gpt2s_tokenizer_masking_leaves_exactly_header_output_and_end_of_text():
    transformers = pytest.importorskip("transformers")
    gpt2_dir = HUB_SAMPLES / "openai-community--gpt2"
    if not (gpt2_dir / "merges.txt").exists():
        pytest.skip("../shared/hub-samples has no GPT-2 tokenizer files")
    tokenizer = transformers.GPT2TokenizerFast.from_pretrained(gpt2_dir)
    assert tokenizer.eos_token_id == P
    data = ins.load_records(HUB_INSTRUCTIONS)
    ds = ins.InstructionDataset(data, tokenizer, mask_instructions=True)
    for i, rec in enumerate(data):  # GPT-2 never merges a token across the prompt/response boundary here
        _, targets = ins.collate([ds[i]], mask_instructions=True)
        kept = targets[0][targets[0] != M].tolist()
        assert tokenizer.decode(kept) == RESPONSE_HEADERS["alpaca"] + rec["output"] + "<|endoftext|>", i
