import json

import numpy as np
import pytest
import torch

from llmtut.report import record


def test_record_merges_into_the_metrics_file_and_prints_nothing(tmp_path, monkeypatch, capsys):
    path = tmp_path / "m.json"
    monkeypatch.setenv("LLMTUT_METRICS", str(path))
    assert record("a.b", 3) is None  # nothing for a cell to echo
    record("c", torch.tensor(0.5))
    record("d", np.float32(1.5))
    record("a.b", "bueno")
    assert json.loads(path.read_text()) == {"a.b": "bueno", "c": 0.5, "d": 1.5}
    assert capsys.readouterr().out == ""


def test_without_the_variable_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMTUT_METRICS", raising=False)
    monkeypatch.chdir(tmp_path)
    record("x", 1)
    assert list(tmp_path.iterdir()) == []


def test_containers_are_refused():
    with pytest.raises(TypeError, match="one scalar"):
        record("x", [1, 2])
