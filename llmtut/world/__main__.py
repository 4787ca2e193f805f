"""`python -m llmtut.world build`: build (or find in the cache) every artifact of the tiny world, then the
stand-in Hub made from it (`llmtut.world.hub`, for `make hub-rehearsal`)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from llmtut.world import bases, detox_models, hub, pdss_models
from llmtut.world.cache import world_card

BUILDERS: dict[str, Callable[[], Path]] = {
    "causal-base": bases.causal_base,
    "gpt2-base": bases.gpt2_base,
    "t5-summarizer": detox_models.summarizer,
    "roberta-toxicity": detox_models.toxicity_classifier,
    "qwen2-summarizer": detox_models.causal_summarizer,
    "qwen2-teacher": pdss_models.teacher,
    "qwen2-student": pdss_models.student,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m llmtut.world", description="Build the offline tiny world (cached).")
    parser.add_argument("command", choices=["build"])
    parser.parse_args()
    for name, build in BUILDERS.items():
        t0 = time.perf_counter()
        path = build()
        print(f"{name}: {path} ({time.perf_counter() - t0:.1f}s) {world_card(path)}")
    t0 = time.perf_counter()
    samples = hub.usable_samples(hub.default_samples())
    path = hub.standin_hub(samples)
    print(f"stand-in hub: {path} ({time.perf_counter() - t0:.1f}s), data: {samples or 'generated rows'}")


if __name__ == "__main__":
    main()
