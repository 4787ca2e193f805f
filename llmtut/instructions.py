"""Instruction data: records in JSON, splits, a dataset and a padding collate.

The data side of chapter 01, after rasbt/LLMs-from-scratch ch07. A record is a dict
`{"instruction": str, "input": str, "output": str}` (`input` may be empty); its prompt styles are in
`llmtut.formats`. `llmtut.profiles.load_instruction_data` gives the chapter its records: the
source's 1100 (`hub`) or as many from the tiny world (`tiny`), written to JSON and loaded back the
same way.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch.utils.data import Dataset

from llmtut.formats import Formatter, Record, format_alpaca

FIELDS = ("instruction", "input", "output")

# ---------------------------------------------------------------------------------------------
# JSON files, as in the source: one list of objects.
# ---------------------------------------------------------------------------------------------


def validate_records(records: Any) -> list[Record]:
    """`records` itself if it is a list of objects with string fields instruction, input and output;
    otherwise a ValueError naming the record index and the field. Extra keys are allowed."""
    if not isinstance(records, list):
        raise ValueError(f"instruction data must be a list of records (JSON objects), got {type(records).__name__}.")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise ValueError(f"record {i}: expected an object with fields {FIELDS}, got {type(rec).__name__}.")
        for field in FIELDS:
            if field not in rec:
                raise ValueError(f"record {i}: field {field!r} is missing.")
            if not isinstance(rec[field], str):
                raise ValueError(f"record {i}: field {field!r} is {type(rec[field]).__name__}, expected str.")
    return records


def write_records(records: list[Record], path: str | Path) -> Path:
    """Validate `records` and write them as an indented UTF-8 JSON list (accents kept as they are)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(validate_records(records), indent=4, ensure_ascii=False), encoding="utf-8")
    return path


def load_records(path: str | Path) -> list[Record]:
    """Records from a JSON file, validated."""
    return validate_records(json.loads(Path(path).read_text(encoding="utf-8")))


# ---------------------------------------------------------------------------------------------
# Splitting, the dataset and the collate.
# ---------------------------------------------------------------------------------------------


def split_records(
    records: Sequence[Record],
    *,
    shuffle_seed: int | None,
    fractions: tuple[float, float, float] = (0.85, 0.10, 0.05),
) -> tuple[list[Record], list[Record], list[Record]]:
    """(train, test, validation): the first int(n * train) records for training, the next int(n * test)
    for testing and the rest (about 5%) for validation, as the source splits them.

    `shuffle_seed=None` keeps the records' order, exactly as the source (rasbt/LLMs-from-scratch ch07):
    its 1100 records split into `data[:935]`, `data[935:1045]` and `data[1045:]`, so a test set of
    the same file is the source's test set. An integer shuffles a copy reproducibly by that seed
    first (`random.Random(shuffle_seed).shuffle`); `records` itself is never reordered.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative shares (train, test, val) summing to 1, got {fractions}.")
    if shuffle_seed is not None and (isinstance(shuffle_seed, bool) or not isinstance(shuffle_seed, int)):
        raise ValueError(f"shuffle_seed must be an int (shuffle) or None (keep the order), got {shuffle_seed!r}.")
    ordered = list(records)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(ordered)
    n_train, n_test = int(len(ordered) * fractions[0]), int(len(ordered) * fractions[1])
    return (
        ordered[:n_train],
        ordered[n_train : n_train + n_test],
        ordered[n_train + n_test :],
    )


class InstructionItem(NamedTuple):
    """A tokenized example and the length of its prompt (instruction + input), for masking."""

    input_ids: list[int]
    prompt_len: int


Encoder = Callable[[str], list[int]]


def _encoder(tokenizer: Any) -> Encoder:
    # A Hugging Face or tiktoken tokenizer has .encode (and HF tokenizers are callable too, but
    # return a BatchEncoding); anything else must be a text -> ids function.
    return tokenizer.encode if hasattr(tokenizer, "encode") else tokenizer


def _common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class InstructionDataset(Dataset):
    """Records pre-tokenized as `formatter(record, with_response=True)`, as in the source.

    An item is a list of token ids, or with `mask_instructions` an `InstructionItem` that also holds
    the prompt length, so `collate(..., mask_instructions=True)` can ignore the prompt's targets.
    The prompt is `formatter(record)`: for Alpaca the preamble, the instruction and the input, but
    not the `### Response:` header, which `with_response=True` adds in front of the output. So a
    masked example still trains on the header, the output and the end-of-text token, exactly as the
    source's exercise 7.2 (its `instruction_length` is that of `format_input(entry)`, which also
    stops before the header). The prompt length counts the prompt's tokens that are also the first tokens of the full text:
    when BPE merges a token across the prompt/response boundary, that token is trained on rather
    than a response token masked.
    """

    def __init__(
        self,
        records: Sequence[Record],
        tokenizer: Any,
        formatter: Formatter = format_alpaca,
        mask_instructions: bool = False,
    ):
        encode = _encoder(tokenizer)
        self.records = list(records)
        self.mask_instructions = mask_instructions
        self.encoded_texts: list[list[int]] = []
        self.prompt_lengths: list[int] = []
        for rec in self.records:
            ids = list(encode(formatter(rec, with_response=True)))
            self.encoded_texts.append(ids)
            if mask_instructions:
                self.prompt_lengths.append(_common_prefix_len(encode(formatter(rec)), ids))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> list[int] | InstructionItem:
        if self.mask_instructions:
            return InstructionItem(self.encoded_texts[index], self.prompt_lengths[index])
        return self.encoded_texts[index]


def collate(
    batch: Sequence[Sequence[int] | InstructionItem],
    pad_token_id: int = 50256,
    ignore_index: int = -100,
    allowed_max_length: int | None = None,
    device: str | torch.device = "cpu",
    mask_instructions: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for next-token training, as the source's `custom_collate_fn`.

    Each item gets one end-of-text token (`pad_token_id`, which the model must learn to emit) and is
    padded to the batch's longest item + 1; inputs are all but the last position, targets are shifted
    by one. In targets every pad token but the first becomes `ignore_index`. With `allowed_max_length`
    both are truncated to that length. With `mask_instructions` (items must be `InstructionItem`s)
    the targets that predict prompt tokens, the first prompt_len - 1, are ignored too.

    Raises ValueError for an item left with no target to train on, rather than return it silently.
    """
    if not batch:
        raise ValueError("collate got an empty batch.")
    if allowed_max_length is not None and allowed_max_length < 1:
        raise ValueError(f"allowed_max_length must be at least 1, got {allowed_max_length}.")
    items = []
    for i, item in enumerate(batch):
        if isinstance(item, InstructionItem):
            ids, prompt_len = list(item.input_ids), item.prompt_len
            if not 0 <= prompt_len <= len(ids):
                raise ValueError(f"item {i}: prompt_len={prompt_len} is outside its {len(ids)} tokens.")
        elif mask_instructions:
            raise ValueError(
                f"item {i} is a plain list of ids, so its prompt length is unknown and mask_instructions "
                "cannot mask it. Build the dataset with InstructionDataset(..., mask_instructions=True)."
            )
        else:
            ids, prompt_len = list(item), 0
        items.append((ids, prompt_len))

    batch_max_length = max(len(ids) + 1 for ids, _ in items)
    inputs_lst, targets_lst = [], []
    for i, (ids, prompt_len) in enumerate(items):
        new_item = ids + [pad_token_id]  # the end-of-text token to learn
        padded = new_item + [pad_token_id] * (batch_max_length - len(new_item))
        inputs = torch.tensor(padded[:-1], dtype=torch.long)
        targets = torch.tensor(padded[1:], dtype=torch.long)
        # Keep the first pad target (learn to stop), ignore the padding after it.
        pad_positions = torch.nonzero(targets == pad_token_id).flatten()
        if pad_positions.numel() > 1:
            targets[pad_positions[1:]] = ignore_index
        if mask_instructions and prompt_len > 1:
            # Target j predicts token j + 1, so targets 0 .. prompt_len - 2 predict
            # prompt tokens.
            targets[: prompt_len - 1] = ignore_index
        if allowed_max_length is not None:
            inputs, targets = inputs[:allowed_max_length], targets[:allowed_max_length]
        if bool((targets == ignore_index).all()):
            if mask_instructions and allowed_max_length is not None and prompt_len - 1 >= allowed_max_length:
                why = (
                    f"its prompt is {prompt_len} tokens and allowed_max_length={allowed_max_length} cuts the "
                    f"example before its response starts. Raise allowed_max_length to at least {prompt_len} "
                    f"({len(ids) + 1} keeps the whole response and its end-of-text token), or drop the example"
                )
            else:
                why = "every target is ignore_index. Check pad_token_id, prompt_len and allowed_max_length"
            raise ValueError(f"item {i} has no target to train on: {why}.")
        inputs_lst.append(inputs)
        targets_lst.append(targets)
    return torch.stack(inputs_lst).to(device), torch.stack(targets_lst).to(device)


# The source's toy batch, and what `collate` must make of it (written out by hand, not computed).
TOY_BATCH: tuple[list[int], ...] = ([0, 1, 2, 3, 4], [5, 6], [7, 8, 9])


def toy_collate_expected(
    pad: int = 50256, allowed_max_length: int | None = 4, ignore_index: int = -100
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) that `collate(TOY_BATCH, pad, ignore_index, allowed_max_length)` must return."""
    p, m = pad, ignore_index
    inputs = [[0, 1, 2, 3, 4], [5, 6, p, p, p], [7, 8, 9, p, p]]
    targets = [[1, 2, 3, 4, p], [6, p, m, m, m], [8, 9, p, m, m]]
    if allowed_max_length is not None:
        inputs = [row[:allowed_max_length] for row in inputs]
        targets = [row[:allowed_max_length] for row in targets]
    return torch.tensor(inputs), torch.tensor(targets)
