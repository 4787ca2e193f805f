"""The hub rehearsal: every chapter's `hub` profile, executed offline against the stand-in Hub.

`make hub-rehearsal` runs this file alone; `make test` runs it with the rest. Each chapter runs with
papermill, `-p PROFILE hub`, with small step counts, in its own folder under `_build/rehearsal/`, with the
Hugging Face libraries pointed at `llmtut.world.hub`'s stand-ins (`HF_HUB_OFFLINE=1`): the chapter's code
is the code a learner runs in Colab; only where the files come from differs. The stand-ins' data are the
real rows of `../shared/hub-samples` when it is there, generated rows of the same layout otherwise.

It proves that the hub code paths run to the end and record their metrics, on the real data's layout and
quirks; not that the real models fit a GPU, nor what they score (see README, "Hub rehearsal").
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import papermill
import pytest

from llmtut import t4_plan
from llmtut.world import hub

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SAMPLES = hub.default_samples()
REPORT_DIR = ROOT / "_build" / "rehearsal"

# Small step counts: the rehearsal checks that the hub path runs, not what it learns.
PARAMETERS: dict[str, dict] = {
    "01_instruction_data": {"NUM_EPOCHS": 1, "N_TRAIN": 64, "N_SCORED": 8, "EVAL_FREQ": 4, "EVAL_ITER": 1,
                            "MAX_NEW_TOKENS": 8},
    "02_label_masking": {"MAX_EPOCHS": 2, "N_SEEDS": 2},
    "03_special_tokens": {"MAX_EPOCHS": 2},
    "04_multi_turn": {"MAX_EPOCHS": 2, "N_SECOND_TURN": 2, "N_SEEDS": 2, "N_FIRST_WORDS": 2},
    "05_ppo_detox": {"N_EVAL": 12, "PPO_STEPS": 2, "PPO_BATCH": 8, "GRPO_STEPS": 1, "GRPO_PROMPTS": 2,
                     "GRPO_GENERATIONS": 2},
    "06_pdss": {"N_PUBLIC": 12, "N_TRAIN": 12, "N_TEST": 6, "N_SWEEP": 6, "EPSILONS": [1.0], "PDSS_EPOCHS": 1,
                "DISTILL_EPOCHS": 1},
    "07_fast_sft": {"N_EXAMPLES": 96, "BATCH_SIZE": 8, "PACKED_ROWS_PER_STEP": 2, "EPOCHS": 1, "HELD_OUT": 16, "REPEATS": 1,
                    "WARMUP_STEPS": 1, "SWEEP_BATCH_SIZES": [8], "SWEEP_STEPS": 2},
}


def real_rows() -> bool:
    return hub.usable_samples(SAMPLES) is not None


# What must hold in the hub profile; with the real rows also the source's exact figures.
def check_01_instruction_data(m):
    assert m["data.n_train"] + m["data.n_test"] + m["data.n_val"] == 1100 or not real_rows()
    if real_rows():  # the source's unshuffled split: data[:935], data[935:1045], data[1045:]
        assert (m["data.n_train"], m["data.n_test"], m["data.n_val"]) == (935, 110, 55)
    assert "score.finetuned" in m and "score.base" in m
    assert m["masking.trains_header_output_eot"] is True  # on GPT-2's real tokenizer when hub-samples has it


def check_05_ppo_detox(m):
    assert m["ppo.n_eval"] == PARAMETERS["05_ppo_detox"]["N_EVAL"]  # distinct dialogues
    if real_rows():
        assert m["data.n_train"] == 10022  # the source's filter, 200 < len(dialogue) <= 1000


CHECKS = {"01_instruction_data": check_01_instruction_data, "05_ppo_detox": check_05_ppo_detox}


@pytest.fixture(scope="session")
def standin_root() -> Path:
    return hub.standin_hub(SAMPLES)


def _reset_atimes(hub_cache: Path) -> None:
    """Mark every stand-in file unread (atime before mtime, so the next read updates it, even on relatime)."""
    for f in hub_cache.rglob("*"):
        if f.is_file():
            os.utime(f, (0, f.stat().st_mtime))


def _loaded(hub_cache: Path) -> list[str]:
    """The stand-ins whose weights were read since `_reset_atimes`."""
    loaded = []
    for repo in sorted(hub_cache.glob("models--*")):
        if any(f.stat().st_atime > 0 for f in repo.rglob("*.safetensors")):
            loaded.append(repo.name.removeprefix("models--").replace("--", "/"))
    return loaded


def _workdir(chapter: str, standin: Path) -> Path:
    """A fresh folder for the chapter: the data set folders where `datasets` looks first (named like the
    repo ids) and the instruction JSON where chapters 01 and 07 keep their download."""
    work = REPORT_DIR / chapter
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for org in (standin / "datasets").iterdir():
        if org.is_dir():
            (work / org.name).symlink_to(org, target_is_directory=True)
    for out in ("out/01_instruction_data", "out/07_fast_sft"):
        (work / out).mkdir(parents=True)
        shutil.copy(standin / "datasets" / hub.INSTRUCTION_FILE, work / out / hub.INSTRUCTION_FILE)
    return work


def _short(value) -> str:
    """A metric for a table cell: floats to 4 digits, strings quoted, on one line and at most 30 characters."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        text = repr(value if len(value) <= 30 else value[:27] + "...")
        return text.replace("|", "\\|")
    return str(value)


def _write_report(row: dict) -> None:
    rows_path = REPORT_DIR / "rows.json"
    rows = json.loads(rows_path.read_text()) if rows_path.exists() else {}
    rows[row["chapter"]] = row
    rows_path.write_text(json.dumps(rows, indent=2, sort_keys=True))
    lines = ["# Hub rehearsal", "",
             "Every chapter's `hub` profile, run offline against the stand-in Hub (`llmtut.world.hub`), data: "
             + ("the real rows of `../shared/hub-samples`." if real_rows() else "generated rows (no hub-samples)."),
             "Small step counts: it shows that the hub code runs, not what the real models score.", "",
             "| chapter | result | wall time (s) | stand-ins loaded | metrics |", "|---|---|---|---|---|"]
    for r in sorted(rows.values(), key=lambda r: r["chapter"]):
        metrics = ", ".join(f"{k} {_short(v)}" for k, v in r["metrics"].items())
        lines.append(f"| {r['chapter']} | {r['result']} | {r['seconds']:.0f} | {', '.join(r['loaded'])} | "
                     f"{metrics} |")
    lines += ["", t4_plan.report(t4_plan.plans())]
    (REPORT_DIR / "report.md").write_text("\n".join(lines) + "\n")


@pytest.mark.rehearsal
@pytest.mark.parametrize("chapter", sorted(PARAMETERS))
def test_chapter_runs_on_the_standin_hub(chapter, standin_root, monkeypatch):
    work = _workdir(chapter, standin_root)
    metrics_path = work / "metrics.json"
    for key, value in {**hub.rehearsal_env(standin_root, work), "LLMTUT_PROFILE": "hub",
                       "LLMTUT_METRICS": str(metrics_path)}.items():
        monkeypatch.setenv(key, value)
    _reset_atimes(standin_root / "hub")
    t0 = time.perf_counter()
    row = {"chapter": chapter, "result": "failed", "metrics": {}, "loaded": []}
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / f"{chapter}.ipynb"), str(work / f"{chapter}_out.ipynb"),
            parameters={"PROFILE": "hub", "DEVICE": "cpu", **PARAMETERS[chapter]},
            cwd=str(work), kernel_name="python3", progress_bar=False,
        )
        row["result"] = "ran to the end"
    finally:
        row["seconds"] = time.perf_counter() - t0
        row["loaded"] = _loaded(standin_root / "hub")
        row["metrics"] = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        _write_report(row)
    assert row["metrics"], f"{chapter} recorded no metric"
    assert row["loaded"], f"{chapter} loaded no stand-in model: is its hub path reading the stand-in Hub?"
    if chapter in CHECKS:
        CHECKS[chapter](row["metrics"])
    plan = next(p for p in t4_plan.plans() if p.chapter == chapter)  # in the report above
    assert plan.fits(), f"{chapter} does not fit a T4: {plan.peak_gib:.1f} GiB, {plan.minutes:.0f} min"
