"""`make bench`: the speed and memory figures, measured and compared with their targets, never asserted.

Per chapter (tiny profile, CPU, in a fresh kernel as the tests run it): the wall time and the peak
resident memory of the kernel and everything it starts (a served model included); chapter 07 several
times, for the median and spread of its padding-free and packed speed-ups; the world's build time per
artifact, as recorded when it was built. Writes _build/bench/report.md and report.json and prints each
figure that misses its target. A shared machine's timing must not decide whether a change lands, so
the tests (`make test`) assert none of these.

    python tests/bench.py [--runs-07 N] [chapter ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import papermill
import psutil

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "_build" / "bench"
sys.path.insert(0, str(ROOT))

CHAPTER_BUDGET_S = 180  # each chapter, tiny profile, two CPU cores
SPEEDUP_TARGET = 1.2  # chapter 07: padding-free throughput over padded, median over kernels
SPEED_KEYS = ("padding_free.speedup", "packed.speedup")


class PeakRSS:
    """The largest total resident memory of this process's children (the kernel and what it starts),
    sampled every `interval` seconds."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            total = 0
            for child in psutil.Process().children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:  # gone between listing and reading
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run(chapter: str) -> dict:
    """One papermill run of `chapter` in the tiny profile: wall time, peak memory, its metrics."""
    with tempfile.TemporaryDirectory() as tmp:
        metrics_path = Path(tmp) / "metrics.json"
        os.environ.update(LLMTUT_METRICS=str(metrics_path), LLMTUT_PROFILE="tiny")
        t0 = time.perf_counter()
        with PeakRSS() as memory:
            papermill.execute_notebook(str(NOTEBOOKS / f"{chapter}.ipynb"), str(Path(tmp) / "out.ipynb"),
                                       parameters={"PROFILE": "tiny", "DEVICE": "cpu"}, cwd=str(NOTEBOOKS),
                                       kernel_name="python3", progress_bar=False)
        wall = time.perf_counter() - t0
        metrics = json.loads(metrics_path.read_text())
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(memory.peak / 2**20), "metrics": metrics}


def speedup(metrics: dict, key: str) -> float | None:
    """A layout's throughput over the padded one's ("packed.speedup" from the recorded tokens per second)."""
    layout = key.split(".")[0]
    if f"{layout}.tokens_per_s" not in metrics or "padded.tokens_per_s" not in metrics:
        return None
    return round(metrics[f"{layout}.tokens_per_s"] / metrics["padded.tokens_per_s"], 3)


def world_build_times() -> dict[str, float]:
    """Each cached world artifact's build time, from its card (measured when it was built)."""
    from llmtut.world.cache import cache_root

    times = {}
    for card in sorted(cache_root().glob("*/world_card.json")):
        seconds = json.loads(card.read_text()).get("build_seconds")
        if seconds is not None:
            times[card.parent.name] = seconds
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="chapters to run (default: all)")
    parser.add_argument("--runs-07", type=int, default=3, help="kernels of chapter 07 for its speed-ups")
    args = parser.parse_args()
    chapters = args.chapters or sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    results: dict[str, dict] = {}
    for chapter in chapters:
        runs = [run(chapter) for _ in range(args.runs_07 if chapter == "07_fast_sft" else 1)]
        results[chapter] = {"wall_s": [r["wall_s"] for r in runs], "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                            **{key: [speedup(r["metrics"], key) for r in runs] for key in SPEED_KEYS
                               if speedup(runs[0]["metrics"], key) is not None}}
        print(f"{chapter}: {results[chapter]}", flush=True)

    shortfalls = []
    lines = ["# Benchmark (tiny profile, CPU)", "", f"{os.cpu_count()} cores; "
             f"{psutil.virtual_memory().total / 2**30:.0f} GiB; targets: each chapter at most {CHAPTER_BUDGET_S} s, "
             f"padding-free at least {SPEEDUP_TARGET}x padded (median).", "",
             "| chapter | wall time (s) | peak memory (MiB) | target | met |", "|---|---|---|---|---|"]
    for chapter, r in results.items():
        wall = statistics.median(r["wall_s"])
        met = wall <= CHAPTER_BUDGET_S
        shortfalls += [] if met else [f"{chapter} took {wall:.0f} s (target {CHAPTER_BUDGET_S} s)"]
        median_of = f" (median of {len(r['wall_s'])})" if len(r["wall_s"]) > 1 else ""
        lines.append(f"| {chapter} | {wall:.0f}{median_of} | {r['peak_rss_mb']} | <= {CHAPTER_BUDGET_S} s | "
                     f"{'yes' if met else 'NO'} |")
    if "07_fast_sft" in results:
        r = results["07_fast_sft"]
        lines += ["", "| chapter 07 speed-up | median | min | max | kernels | target | met |", "|---|---|---|---|---|---|---|"]
        for key in SPEED_KEYS:
            values = r.get(key, [])
            if not values:
                continue
            median = statistics.median(values)
            target = SPEEDUP_TARGET if key == "padding_free.speedup" else None
            met = target is None or median >= target
            shortfalls += [] if met else [f"07 {key} median {median:.3f} (target {target})"]
            lines.append(f"| {key} | {median:.3f} | {min(values):.3f} | {max(values):.3f} | {len(values)} | "
                         f"{f'>= {target}' if target else 'reported'} | {'yes' if met else 'NO'} |")
    builds = world_build_times()
    lines += ["", "| world artifact | build time (s), when it was built |", "|---|---|",
              *(f"| {name} | {seconds:.0f} |" for name, seconds in builds.items())]
    lines += ["", "## Shortfalls", "", *(f"- {s}" for s in shortfalls or ["none"])]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.md").write_text("\n".join(lines) + "\n")
    (OUT / "report.json").write_text(json.dumps({"chapters": results, "world_build_s": builds,
                                                 "shortfalls": shortfalls}, indent=2))
    print("\n".join(lines))
    print(f"\nReport: {OUT / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
