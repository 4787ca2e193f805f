"""Regression baselines: every metric each chapter records, compared with a committed file.

One file per profile and device (`tests/baselines/tiny-cpu.json`, `tiny-cuda.json`), holding per
platform (the CPU or GPU model and torch's version, since a trained model's numbers depend on the BLAS
build) per chapter every metric. A run prints and writes a drift table (`_build/baselines/`) and fails
when a metric moved beyond its tolerance:

- counts, booleans, strings and None exactly;
- other floats within FLOAT_RTOL, relative: a float from a trained model may differ in its last digits
  between two machines of the same platform;
- wall times and throughputs are left out (`make bench` reports them): keys ending in TIMING_SUFFIXES.

A metric that is new or gone fails too. `make baseline` (LLMTUT_WRITE_BASELINE=1) rewrites this
platform's entries on purpose, so that a change in the book's numbers shows in a commit's diff.
"""

from __future__ import annotations

import json
import math
import os
import platform as _platform
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ROOT / "tests" / "baselines"
TABLES = ROOT / "_build" / "baselines"
WRITE_ENV = "LLMTUT_WRITE_BASELINE"
FLOAT_RTOL = 1e-3
TIMING_SUFFIXES = ("runtime_s", "tokens_per_s", "speedup", "seconds", "wall_s", "peak_mb", "gpu_peak_mb")


def platform_key(device: str) -> str:
    """What a trained model's numbers depend on besides the code: the processor and torch's build."""
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpuinfo = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    if not fields:
        return f"{_platform.processor() or _platform.machine()}, torch {torch.__version__}"
    # What picks the BLAS kernels is the instruction set, not the generation: two generations of AMD EPYC
    # (family 25 model 17 and family 26 model 2, both avx512) gave every chapter's metrics identically.
    isa = "avx512" if "avx512f" in fields.get("flags", "").split() else "avx2"
    return f"{fields.get('model name')} ({isa}), torch {torch.__version__}"


def is_timing(key: str) -> bool:
    return key.endswith(TIMING_SUFFIXES)


def same(baseline, now) -> bool:
    if isinstance(baseline, float) and isinstance(now, float | int) and not isinstance(now, bool):
        return math.isclose(baseline, now, rel_tol=FLOAT_RTOL, abs_tol=1e-12)
    return type(baseline) is type(now) and baseline == now


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def check(chapter: str, metrics: dict, profile: str = "tiny", device: str = "cpu") -> str:
    """Compare (or with LLMTUT_WRITE_BASELINE=1 record) `chapter`'s metrics; the drift table. Raises
    AssertionError when a metric moved beyond its tolerance, appeared or disappeared."""
    path, key = BASELINES / f"{profile}-{device}.json", platform_key(device)
    data = _load(path)
    kept = {k: v for k, v in sorted(metrics.items()) if not is_timing(k)}
    if os.environ.get(WRITE_ENV):
        data.setdefault(key, {})[chapter] = kept
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        return f"{chapter}: wrote {len(kept)} metrics to {path.relative_to(ROOT)} for {key}"
    if chapter not in data.get(key, {}):
        table = (f"{chapter}: no baseline in {path.relative_to(ROOT)} for this platform ({key}; it has "
                 f"{sorted(data) or 'none'}): nothing compared. `make baseline` records one.")
        _write_table(profile, device, chapter, table)
        return table
    baseline = data[key][chapter]
    rows, failed = [], []
    for metric in sorted(set(baseline) | set(kept)):
        old, new = baseline.get(metric, "(absent)"), kept.get(metric, "(absent)")
        if metric in baseline and metric in kept and same(old, new):
            continue
        rows.append(f"| {metric} | {old!r} | {new!r} |")
        failed.append(metric)
    header = f"{chapter} against {path.relative_to(ROOT)} ({key}): {len(kept) - len(failed)} of {len(kept)} " \
             "metrics as recorded"
    table = "\n".join([header, *(["", "| metric | baseline | now |", "|---|---|---|", *rows] if rows else [])])
    _write_table(profile, device, chapter, table)
    assert not failed, (f"{table}\n\nThe book's numbers moved. If that is intended, run `make baseline` and commit "
                        f"{path.relative_to(ROOT)}, so the change shows in the diff.")
    return table


def _write_table(profile: str, device: str, chapter: str, table: str) -> None:
    """Keep each chapter's latest table in _build/baselines/<profile>-<device>.md (make test prints it)."""
    TABLES.mkdir(parents=True, exist_ok=True)
    parts_path = TABLES / f"{profile}-{device}.json"
    parts = _load(parts_path)
    parts[chapter] = table
    parts_path.write_text(json.dumps(parts, indent=1, sort_keys=True))
    (TABLES / f"{profile}-{device}.md").write_text(
        "# Drift against the baselines\n\n" + "\n\n".join(parts[c] for c in sorted(parts)) + "\n")
