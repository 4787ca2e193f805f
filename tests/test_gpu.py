"""GPU regression runs (`make gpu-test`): every chapter through papermill on CUDA, tiny profile, and
the precision policy's CUDA path on the GPU at hand.

The same metric checks as the CPU runs, and a table of per-chapter wall times written to
`$LLMTUT_GPU_REPORT` (default `_build/gpu/timings.md`). Skipped without CUDA (conftest.py);
`make gpu-test` refuses to start without one.
"""

import os
from pathlib import Path

import drift
import pytest
import torch
from test_notebooks import CHECKS, ROOT, run_chapter

REPORT = Path(os.environ.get("LLMTUT_GPU_REPORT", ROOT / "_build" / "gpu" / "timings.md"))
# Larger step counts for a chapter on a GPU go here, as papermill parameters, once a GPU run has
# shown that the chapter's checks still hold with them. None are set yet: see the README.
GPU_PARAMETERS: dict[str, dict] = {}
# Chapters whose recorded figures go into the report beside the timings (throughput on the GPU).
FIGURES = {"07_fast_sft": ("tokens_per_s", "final_loss", "speedup", "pad_fraction")}
_rows: list[str] = []
_figures: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def timing_table():
    yield
    if _rows:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        device = torch.cuda.get_device_name(0)
        header = [f"GPU run on {device}, torch {torch.__version__}", "",
                  "| chapter | wall time (s) | parameters | result |", "|---|---|---|---|"]
        REPORT.write_text("\n".join(header + _rows + _figures) + "\n")
        print(f"\nGPU timings: {REPORT}\n" + REPORT.read_text())


@pytest.mark.gpu
@pytest.mark.parametrize("chapter", sorted(CHECKS))
def test_chapter_on_gpu(chapter, tmp_path, monkeypatch):
    parameters = GPU_PARAMETERS.get(chapter, {})
    seconds, metrics = run_chapter(chapter, tmp_path, monkeypatch, "cuda", **parameters)
    if chapter in FIGURES:
        _figures.extend(["", f"{chapter} on the GPU:", "", "| metric | value |", "|---|---|"])
        _figures.extend(f"| {k} | {v} |" for k, v in sorted(metrics.items()) if k.split(".")[-1] in FIGURES[chapter])
    try:
        CHECKS[chapter](metrics)
    except AssertionError:
        _rows.append(f"| {chapter} | {seconds:.0f} | {parameters or 'as on CPU'} | checks FAILED |")
        raise
    _rows.append(f"| {chapter} | {seconds:.0f} | {parameters or 'as on CPU'} | checks passed |")
    if not parameters:  # the GPU's own baseline file, tests/baselines/tiny-cuda.json
        print(drift.check(chapter, metrics, "tiny", "cuda"))


@pytest.mark.gpu
def test_precision_policy_on_this_gpu(tmp_path, causal_base):
    """The policy's CUDA path on the real GPU: fp16 with loss scaling below compute capability 8.0 (a
    T4), bf16 from 8.0, whatever `torch.cuda.is_bf16_supported()` says; weights stay fp32 and train."""
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from llmtut.precision import precision_for
    from llmtut.trainer_defaults import quiet_trainer_args

    policy = precision_for("cuda")
    capability = torch.cuda.get_device_capability()
    assert policy.autocast_dtype == (torch.bfloat16 if capability >= (8, 0) else torch.float16)
    model = AutoModelForCausalLM.from_pretrained(causal_base, **policy.load_kwargs(trains=True)).to("cuda")
    assert next(model.parameters()).dtype == torch.float32
    before = [p.detach().clone() for p in model.parameters()]
    rows = [{"input_ids": list(range(3, 19)), "labels": list(range(3, 19))} for _ in range(8)]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=4, learning_rate=1e-3,
                             **quiet_trainer_args(0, "cuda"), **policy.trainer_args())
    trainer = Trainer(model=model, args=args, train_dataset=rows)
    assert (trainer.args.fp16, trainer.args.bf16) == (policy.loss_scaling, not policy.loss_scaling)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h] or [trainer.state.log_history[-1]["train_loss"]]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert next(model.parameters()).dtype == torch.float32
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters(), strict=True))
    with torch.autocast("cuda", dtype=policy.autocast_dtype):
        assert model(torch.tensor([[3, 4, 5]], device="cuda")).logits.dtype in (policy.autocast_dtype, torch.float32)
