"""The precision policy, with the GPU's compute capability faked: a T4 gets fp16, never emulated bf16."""

import re
from pathlib import Path

import pytest
import torch
from transformers import TrainingArguments

from llmtut.precision import precision_for

T4, A100 = (7, 5), (8, 0)


def test_cpu_trains_and_infers_in_fp32():
    p = precision_for("cpu")
    assert p.autocast_dtype is None and not p.loss_scaling
    assert p.trainer_args() == {"fp16": False, "bf16": False}
    assert p.load_kwargs(trains=False) == {"dtype": torch.float32}


def test_t4_uses_fp16_with_loss_scaling_even_when_torch_says_bf16_works(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # as on a real T4 (emulated)
    p = precision_for("cuda", capability=T4)
    assert p.autocast_dtype == torch.float16 and p.loss_scaling
    assert p.trainer_args() == {"fp16": True, "bf16": False}


def test_ampere_and_newer_use_bf16_without_scaling():
    for capability in (A100, (8, 9), (9, 0)):
        p = precision_for("cuda:0", capability=capability)
        assert p.autocast_dtype == torch.bfloat16 and not p.loss_scaling
        assert p.trainer_args() == {"fp16": False, "bf16": True}


@pytest.mark.parametrize("capability", [T4, A100])
def test_training_weights_load_in_fp32_and_inference_weights_in_half(capability):
    p = precision_for("cuda", capability=capability)
    assert p.load_kwargs(trains=True) == {"dtype": torch.float32}
    assert p.load_kwargs(trains=False) == {"dtype": p.autocast_dtype}


def test_the_cpu_policy_is_a_valid_training_arguments_setting(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], **precision_for("cpu").trainer_args())
    assert not args.fp16 and not args.bf16


def test_the_gpus_own_capability_is_read_when_none_is_given(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: T4)
    assert precision_for("cuda").capability == T4 and precision_for("cuda").autocast_dtype == torch.float16


def test_small_runs_train_in_fp16_on_a_t4(monkeypatch):
    from llmtut.training import small_run_args

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: T4)
    args = small_run_args(max_epochs=1, batch_size=1, learning_rate=1e-3, seed=0, device="cuda")
    assert (args["fp16"], args["bf16"]) == (True, False)
    assert small_run_args(1, 1, 1e-3, 0, "cpu")["fp16"] is False


def test_a_served_model_runs_in_the_policys_inference_dtype(monkeypatch):
    from llmtut.serve import serve_command

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: T4)
    assert serve_command("m", "cuda", 8000)[-2:] == ["--dtype", "float16"]
    assert serve_command("m", "cpu", 8000)[-2:] == ["--dtype", "float32"]


ROOT = Path(__file__).resolve().parents[1]
# What picks a dtype outside the policy: a precision flag, a dtype, a cast, or torch's own (emulated) answer.
DTYPE_CHOICES = re.compile(r"\b(?:bf16|fp16)\s*=|is_bf16_supported|torch_dtype|\bdtype\s*=\s*(?:torch\.(?:float16|"
                           r"bfloat16|half)|\"auto\")|\.(?:half|bfloat16)\(\)")


def test_the_policy_is_the_only_place_that_picks_a_dtype():
    """Every chapter and lesson module gets its dtypes from `llmtut.precision` (the tiny world, which
    builds its own models on the CPU, is not the book's training code)."""
    sources = [*ROOT.glob("notebooks/*.py"), *(ROOT / "llmtut").glob("*.py")]
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in sources if path.name != "precision.py"
             for n, line in enumerate(path.read_text().splitlines(), 1) if DTYPE_CHOICES.search(line)]
    assert not found, "dtype chosen outside llmtut.precision:\n" + "\n".join(found)
    lines = {path: path.read_text().splitlines() + [""] for path in sources if path.name != "profiles.py"}
    loads = [f"{path.relative_to(ROOT)}:{n}" for path, text in lines.items() for n, line in enumerate(text[:-1], 1)
             if re.search(r"\w\.from_pretrained\(|\bpipeline\(\"", line) and "Peft" not in line and "Tokenizer" not in line
             and "load_kwargs" not in line and "load_kwargs" not in text[n]]
    assert not loads, "from_pretrained without the policy's load_kwargs:\n" + "\n".join(loads)
