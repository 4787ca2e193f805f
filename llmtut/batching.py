"""Batch layouts for fine-tuning (chapter 07): padded, padding-free and packed, and how to measure them.

The layouts themselves come from the libraries: trl's `DataCollatorForLanguageModeling` pads,
transformers' `DataCollatorWithFlattening` flattens a batch into one row, trl's `pack_dataset`
packs examples into rows. This module holds what a fair comparison of them needs: the padding
share of a batch, packing into exactly as many rows as the other layouts take steps, a count of
the real tokens a collator receives, per-step wall times, and the memory a step holds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from transformers import TrainerCallback
from trl import pack_dataset


def pad_fraction(lengths: Sequence[int], batch_size: int) -> float:
    """The share of padding in padded batches: the examples of `lengths`, in order, `batch_size` at a
    time, each batch padded to its longest example; the mean over batches."""
    if batch_size < 1 or not len(lengths):
        raise ValueError(f"need at least one example and batch_size >= 1, got {len(lengths)} and {batch_size}.")
    lengths = np.asarray(lengths)
    batches = [lengths[i : i + batch_size] for i in range(0, len(lengths), batch_size)]
    return float(np.mean([1 - b.sum() / (len(b) * b.max()) for b in batches]))


def pack_into_rows(
    examples: Dataset, n_rows: int, strategy: str = "bfd"
) -> tuple[Dataset, int]:
    """trl's `pack_dataset` (what `SFTTrainer(packing=True)` runs), with the shortest
    row length that packs every example into at most `n_rows` rows; (packed rows, that
    length).

    Packed runs then take as many optimizer steps as the padded ones, over the same
    examples: a row length of total tokens / `n_rows` leaves no room for the gaps that
    best-fit leaves, so it would need more rows (more steps) or, for a fixed number of
    steps, leave examples unseen.
    """

    def n_packed(length: int) -> int:
        return len(pack_dataset(examples, length, strategy=strategy))

    lengths = [len(x) for x in examples["input_ids"]]
    # no row length below this can do it
    lo = max(max(lengths), math.ceil(sum(lengths) / n_rows))
    hi = lo
    while n_packed(hi) > n_rows:
        lo, hi = hi + 1, 2 * hi
    while lo < hi:  # bisect: with more room, best-fit needs no more rows (in practice)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if n_packed(mid) <= n_rows else (mid + 1, hi)
    return pack_dataset(examples, hi, strategy=strategy), hi


class CountingCollator:
    """Wraps a collator and records the real tokens (pads not counted) of each batch it is given."""

    def __init__(self, collator: Callable[[list[dict]], dict]):
        self.collator = collator
        self.per_batch: list[int] = []

    def __call__(self, features: list[dict]) -> dict:
        self.per_batch.append(sum(len(f["input_ids"]) for f in features))
        return self.collator(features)


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step (forward, backward, update; batches are collated before the
    step begins), waiting for the GPU when there is one."""

    def __init__(self):
        self.times: list[float] = []

    @staticmethod
    def _sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kwargs):
        self._sync()
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._sync()
        self.times.append(time.perf_counter() - self._t0)


def tokens_per_second(tokens_per_step: Sequence[int], step_times: Sequence[float], skip: int) -> float:
    """Real tokens per second of optimizer steps, leaving out the first `skip` (warm-up) steps."""
    if not 0 <= skip < len(step_times) <= len(tokens_per_step):
        raise ValueError(f"cannot skip {skip} of {len(step_times)} timed steps ({len(tokens_per_step)} batches).")
    return sum(tokens_per_step[skip : len(step_times)]) / sum(step_times[skip:])


class CudaPeakMemory:
    """Peak bytes that torch allocated on the GPU during a `with` block, above what was allocated
    before it (`.peak`)."""

    def __enter__(self) -> CudaPeakMemory:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        self._base, self.peak = torch.cuda.memory_allocated(), 0
        return self

    def __exit__(self, *exc: Any) -> None:
        torch.cuda.synchronize()
        self.peak = torch.cuda.max_memory_allocated() - self._base


def saved_activation_bytes(model: torch.nn.Module, batch: dict[str, Any]) -> int:
    """Bytes of the tensors that one forward pass of `model` on `batch` keeps for the backward pass:
    the activation memory of a training step, which is what padding inflates. Each storage counts once
    (views share it); the parameters are left out. Runs one forward and backward, then zeroes the grads."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(**batch).loss
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values())
