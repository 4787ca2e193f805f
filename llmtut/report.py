"""Recording the numbers a chapter's tests check."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

METRICS_ENV = "LLMTUT_METRICS"


def _plain(value: Any) -> Any:
    """A JSON-ready copy: tensors and numpy scalars become Python numbers."""
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict | list | tuple):
        raise TypeError(f"record() takes one scalar or string per key, got {type(value).__name__}.")
    return value


def record(key: str, value: Any) -> None:
    """If `$LLMTUT_METRICS` names a file, store `value` there under `key`; print nothing.

    The file holds one flat JSON object with dotted keys, e.g. {"masked.epochs_to_learn": 16}: the
    tests' record, not the reader's. A chapter shows its numbers in its own words and tables, and
    calls `record` only in cells the book's page leaves out (tagged `remove-cell`). It returns
    nothing, so such a cell shows no stray value in Jupyter or Colab either.
    """
    value = _plain(value)
    path = os.environ.get(METRICS_ENV)
    if path:
        p = Path(path)
        metrics = json.loads(p.read_text()) if p.exists() and p.stat().st_size else {}
        metrics[key] = value
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True))
        os.replace(tmp, p)  # a reader never sees a half-written file
