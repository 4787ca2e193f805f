"""One precision policy for every model the book loads and trains, judged by the device's capability.

- Weights that train are loaded in fp32. transformers 5 loads a checkpoint in its own dtype
  (bloom-560m fp16, Qwen2.5 bf16), and AdamW's small updates on half-precision weights mostly round
  away.
- Training on a GPU uses mixed precision. Below compute capability 8.0 (a T4 is 7.5) that is fp16
  autocast with loss scaling. From 8.0 (A100, L4, H100) it is bf16, which needs no scaling. The CPU
  trains in fp32.
- bf16 support is judged by the capability, not by `torch.cuda.is_bf16_supported()`. On a T4 that
  function returns True because bf16 can be emulated, and transformers trusts it; emulated bf16 is
  slow.
- Inference-only models (a teacher, a judge, a reward classifier, a frozen reference) may load in
  half precision on a GPU: fp16 below 8.0, bf16 from 8.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

NATIVE_BF16 = (8, 0)  # Ampere: the first compute capability with bf16 tensor cores


@dataclass(frozen=True)
class Precision:
    """How a run on `device` computes: its mixed-precision dtype (None: fp32 throughout) and whether
    the loss is scaled (fp16 gradients underflow without it)."""

    device: str
    autocast_dtype: torch.dtype | None
    capability: tuple[int, int] | None = None

    @property
    def loss_scaling(self) -> bool:
        return self.autocast_dtype == torch.float16

    def trainer_args(self) -> dict[str, bool]:
        """`fp16`/`bf16` for `TrainingArguments` (and trl's configs), both stated so neither is guessed."""
        return {"fp16": self.autocast_dtype == torch.float16, "bf16": self.autocast_dtype == torch.bfloat16}

    def load_kwargs(self, trains: bool) -> dict[str, Any]:
        """`from_pretrained` keywords: fp32 for a model that trains, or on the CPU; otherwise the half
        precision this device computes in natively."""
        return {"dtype": torch.float32 if trains or self.autocast_dtype is None else self.autocast_dtype}


def precision_for(device: str, capability: tuple[int, int] | None = None) -> Precision:
    """The policy for `device` ("cpu", "cuda", "cuda:1", ...). `capability` (major, minor) defaults to the
    GPU's own; pass it to plan for another GPU (a T4 is (7, 5))."""
    if not device.startswith("cuda"):
        return Precision(device, None)
    if capability is None:
        capability = tuple(torch.cuda.get_device_capability(device))
    dtype = torch.bfloat16 if tuple(capability) >= NATIVE_BF16 else torch.float16
    return Precision(device, dtype, tuple(capability))
