"""GPU regression runs (`make gpu-test`): every chapter through papermill on CUDA, tiny profile.

The same metric checks as the CPU runs, and a table of per-chapter wall times written to
`$LLMTUT_GPU_REPORT` (default `_build/gpu/timings.md`). Skipped without CUDA (conftest.py);
`make gpu-test` refuses to start without one.
"""

import os
from pathlib import Path

import pytest
import torch
from test_notebooks import CHECKS, ROOT, run_chapter

REPORT = Path(os.environ.get("LLMTUT_GPU_REPORT", ROOT / "_build" / "gpu" / "timings.md"))
# Larger step counts for a chapter on a GPU go here, as papermill parameters, once a GPU run has
# shown that the chapter's checks still hold with them. None are set yet: see the README.
GPU_PARAMETERS: dict[str, dict] = {}
_rows: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def timing_table():
    yield
    if _rows:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        device = torch.cuda.get_device_name(0)
        header = [f"GPU run on {device}, torch {torch.__version__}", "",
                  "| chapter | wall time (s) | parameters | result |", "|---|---|---|---|"]
        REPORT.write_text("\n".join(header + _rows) + "\n")
        print(f"\nGPU timings: {REPORT}\n" + REPORT.read_text())


@pytest.mark.gpu
@pytest.mark.parametrize("chapter", sorted(CHECKS))
def test_chapter_on_gpu(chapter, tmp_path, monkeypatch):
    parameters = GPU_PARAMETERS.get(chapter, {})
    seconds, metrics = run_chapter(chapter, tmp_path, monkeypatch, "cuda", **parameters)
    try:
        CHECKS[chapter](metrics)
    except AssertionError:
        _rows.append(f"| {chapter} | {seconds:.0f} | {parameters or 'as on CPU'} | checks FAILED |")
        raise
    _rows.append(f"| {chapter} | {seconds:.0f} | {parameters or 'as on CPU'} | checks passed |")
