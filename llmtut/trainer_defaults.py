"""The quiet settings every training run of the book shares, for `TrainingArguments` and trl's configs.

One place for what no lesson is about: no checkpoints, no experiment trackers, no per-step bar (the
book's loops show their own progress or print a loss table), the seed, and the CPU when the device
is one. A run adds what it teaches (epochs, batch size, learning rate, schedule) and may override any
of these. The tiny world's builds use it too (`llmtut.world.trainer`).
"""

from __future__ import annotations

from typing import Any


def quiet_trainer_args(seed: int, device: str) -> dict[str, Any]:
    """Keyword arguments for `TrainingArguments` (or `SFTConfig`, `GRPOConfig`): save nothing, report
    nowhere, no progress bar, seeded with `seed`, on the CPU when `device` is "cpu"."""
    return dict(save_strategy="no", report_to=[], disable_tqdm=True, seed=seed, use_cpu=device == "cpu")
