"""The baseline drift check: what it lets through and what it stops."""

import drift
import pytest

METRICS = {"data.n_train": 935, "masked.epochs_to_learn": 16, "template_found.after": True, "device": "cpu",
           "ppo.toxicity_reduction_rel": 0.92, "ppo.train_runtime_s": 41.5, "padding_free.speedup": 1.3,
           "score.base": None}


@pytest.fixture
def baselines(tmp_path, monkeypatch):
    monkeypatch.setattr(drift, "BASELINES", tmp_path / "baselines")
    monkeypatch.setattr(drift, "TABLES", tmp_path / "tables")
    monkeypatch.setattr(drift, "ROOT", tmp_path)
    monkeypatch.setenv(drift.WRITE_ENV, "1")
    drift.check("05_ppo_detox", METRICS)
    monkeypatch.delenv(drift.WRITE_ENV)
    return tmp_path


def test_the_recorded_metrics_pass_and_timings_are_not_recorded(baselines):
    assert "6 of 6 metrics as recorded" in drift.check("05_ppo_detox", METRICS)  # the two timings left out
    assert "ppo.train_runtime_s" not in (baselines / "baselines" / "tiny-cpu.json").read_text()
    slower = {**METRICS, "ppo.train_runtime_s": 90.0, "padding_free.speedup": 1.1}
    drift.check("05_ppo_detox", slower)


@pytest.mark.parametrize("change", [
    {"ppo.toxicity_reduction_rel": 0.55},  # a float beyond 0.1%
    {"masked.epochs_to_learn": 17},  # a count, exactly
    {"template_found.after": False},
    {"device": "cuda"},
    {"score.base": 12.5},  # None became a number
    {"new.metric": 1},  # a metric appeared
])
def test_a_moved_metric_fails_with_a_table(baselines, change):
    with pytest.raises(AssertionError, match=r"make baseline") as err:
        drift.check("05_ppo_detox", {**METRICS, **change})
    (metric, now), = change.items()
    assert f"| {metric} |" in str(err.value) and repr(now) in str(err.value)
    assert f"| {metric} |" in (baselines / "tables" / "tiny-cpu.md").read_text()


def test_a_gone_metric_fails_and_rounding_passes(baselines):
    with pytest.raises(AssertionError, match="absent"):
        drift.check("05_ppo_detox", {k: v for k, v in METRICS.items() if k != "data.n_train"})
    drift.check("05_ppo_detox", {**METRICS, "ppo.toxicity_reduction_rel": 0.92 * (1 + 1e-4)})


def test_another_platform_is_not_compared(baselines, monkeypatch):
    monkeypatch.setattr(drift, "platform_key", lambda device: "another CPU, torch 9")
    assert "no baseline" in drift.check("05_ppo_detox", {**METRICS, "data.n_train": 1})
