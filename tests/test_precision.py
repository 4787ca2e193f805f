"""The precision policy, with the GPU's compute capability faked: a T4 gets fp16, never emulated bf16."""

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
