"""`colab-image.txt`, the Colab twin's preinstalled packages, says what Colab's image has."""

import re
from pathlib import Path

import pytest

from llmtut.world import hub

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "colab-image.txt"
FREEZE = hub.default_samples() / "colab" / "pip-freeze.gpu.txt"


def pins(path: Path) -> dict[str, str]:
    """name (lower case, '-' for '_') -> version, for each `name==version` line."""
    found = {}
    for line in path.read_text().splitlines():
        if m := re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line.strip()):
            found[m.group(1).lower().replace("_", "-")] = m.group(2)
    return found


def test_image_pins_the_ml_stack():
    image = pins(IMAGE)
    assert {"transformers", "peft", "accelerate", "tokenizers", "datasets", "huggingface-hub"} <= set(image)
    assert "torch" not in image  # the twin keeps the CPU build of .venv's torch


def test_image_matches_colabs_freeze():
    if not FREEZE.exists():
        pytest.skip(f"no {FREEZE} (a fresh clone has no ../shared); CI compares it")
    freeze, image = pins(FREEZE), pins(IMAGE)
    assert {name: freeze.get(name) for name in image} == image
