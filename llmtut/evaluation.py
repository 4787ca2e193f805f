"""Measuring a model's outputs offline: shipped `evaluate` modules, and bootstrap confidence intervals.

`evaluate.load("rouge")` and `evaluate.load("toxicity")` fetch their scripts from the Hugging Face
Hub, which no machine that builds this book can reach. `llmtut` ships local copies with the same
interface (`llmtut/data/evaluate/<name>/<name>.py`), and `evaluate.load` takes a local path:

    rouge = evaluate.load(module_path("rouge"))
    toxicity = evaluate.load(module_path("toxicity"), classifier, module_type="measurement")

Chapter 05 scores summaries before and after detoxification on the same prompts, so the change is
reported as a paired difference with a percentile-bootstrap confidence interval. The unit of that
bootstrap is what was sampled, a dialogue: rows that share a dialogue (DialogSum's test split holds
each one three times, once per reference summary) are averaged into one unit before resampling.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import evaluate
import numpy as np

if TYPE_CHECKING:
    import torch

MODULES_DIR = Path(__file__).parent / "data" / "evaluate"


def module_path(name: str) -> str:
    """The folder of the shipped `evaluate` module `name` ("rouge", "toxicity"), for `evaluate.load`."""
    path = MODULES_DIR / name
    if not (path / f"{name}.py").is_file():
        shipped = sorted(p.name for p in MODULES_DIR.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"llmtut ships no evaluate module {name!r}; it ships {shipped}.")
    return str(path)


def load_toxicity(
    classifier: str | os.PathLike = "default", device: int | str | torch.device | None = None, **kwargs
) -> evaluate.EvaluationModule:
    """The toxicity measurement with `classifier` (a Hub id or a local folder) as its hate-speech model.

    "default" is facebook/roberta-hate-speech-dynabench-r4-target, as in the Hub's module. `device`
    goes to the classifier's pipeline ("cpu", "cuda", 0; None lets transformers choose); other
    keywords go to `evaluate.load` (e.g. cache_dir, keep_in_memory).
    """
    return evaluate.load(
        module_path("toxicity"), str(classifier), module_type="measurement", device=device, **kwargs
    )


def _as_1d(values: Sequence[float] | np.ndarray, name: str = "values") -> np.ndarray:
    """`values` as a float array, refused unless it is flat with at least 2 entries (a spread needs 2)."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or len(array) < 2:
        raise ValueError(f"{name} must be a flat sequence of at least 2 numbers, got shape {array.shape}.")
    return array


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, n_boot: int = 10000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """The percentile-bootstrap (1 - alpha) confidence interval of the mean of `values`.

    Resamples `values` with replacement `n_boot` times and returns the alpha/2 and 1 - alpha/2
    quantiles of the resampled means. The same seed gives the same interval.
    """
    array = _as_1d(values)
    if n_boot < 1 or not 0 < alpha < 1:
        raise ValueError(f"Need n_boot >= 1 and 0 < alpha < 1, got n_boot={n_boot}, alpha={alpha}.")
    rng = np.random.default_rng(seed)
    n = len(array)
    chunk = max(1, 1_000_000 // n)  # resample in chunks: n_boot x n indices at once can take GBs
    means = np.concatenate(
        [
            array[rng.integers(0, n, size=(min(chunk, n_boot - start), n))].mean(axis=1)
            for start in range(0, n_boot, chunk)
        ]
    )
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def group_means(values: Sequence[float] | np.ndarray, groups: Sequence[Hashable]) -> np.ndarray:
    """The mean of `values` per group, one entry per distinct group in first-seen order.

    group_means([1, 3, 5], ["a", "b", "a"]) -> [3.0, 3.0]. A group of one keeps its value exactly.
    """
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or len(array) != len(groups):
        raise ValueError(
            f"need one group per value, got {len(groups)} groups for values of shape {array.shape}."
        )
    index: dict[Hashable, int] = {}
    codes = np.array([index.setdefault(g, len(index)) for g in groups], dtype=np.int64)
    return np.bincount(codes, weights=array, minlength=len(index)) / np.bincount(codes, minlength=len(index))


def paired_difference(
    before: Sequence[float] | np.ndarray,
    after: Sequence[float] | np.ndarray,
    seed: int = 0,
    groups: Sequence[Hashable] | None = None,
) -> dict:
    """Summary of paired scores (the same items measured before and after), with a 95% bootstrap CI.

    mean_diff is before - after, so a drop (e.g. in toxicity) is positive; std_diff is the sample
    standard deviation of the per-unit differences, and ci95_low/ci95_high the `bootstrap_ci` of
    their mean. A unit is an item, or with `groups` (one key per item, e.g. the dialogue text) a
    group: its items are averaged first (`group_means`), so every mean weighs each group once and
    the bootstrap resamples groups, not items that are not independent. n counts the units.
    """
    before_arr, after_arr = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if before_arr.shape != after_arr.shape:
        raise ValueError(
            f"before and after must score the same items, got {len(before_arr)} and {len(after_arr)} values."
        )
    if groups is not None:
        before_arr, after_arr = group_means(before_arr, groups), group_means(after_arr, groups)
    before_arr, after_arr = _as_1d(before_arr, "before"), _as_1d(after_arr, "after")
    diff = before_arr - after_arr
    low, high = bootstrap_ci(diff, seed=seed)
    return {
        "mean_before": float(before_arr.mean()),
        "mean_after": float(after_arr.mean()),
        "mean_diff": float(diff.mean()),
        "std_diff": float(diff.std(ddof=1)),
        "ci95_low": low,
        "ci95_high": high,
        "n": len(diff),
    }
