"""Variable-length ("varlen") attention for padding-free batches on any device (chapter 07).

A padding-free batch is one row: the examples one after another, position ids restarting at 0 for
each, and `cu_seq_lens_q` (the cumulative lengths, [0, l1, l1 + l2, ...]) from
`DataCollatorWithFlattening(return_flash_attn_kwargs=True)` or trl's padding-free collator. Flash
Attention 2's varlen kernel attends within each example and never computes the blocks across
examples; that is where padding-free training gets its speed. It needs a CUDA GPU, and flex
attention has no backward pass on CPU, torch's `varlen_attn` has no CPU kernel
(aten::_flash_attention_forward), and transformers' `sdpa` path builds a dense block-diagonal mask over
the whole row and computes every block. So this is written by hand: one causal
`scaled_dot_product_attention` per example, the same arithmetic as the varlen kernel, on CPU or GPU
(scattering the examples into one end-padded block for a single sdpa call measured no faster on two
cores).
"""

from __future__ import annotations

import importlib.util

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, flash_attention_mask

VARLEN_SDPA = "sdpa_varlen"


def varlen_sdpa_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    cu_seq_lens_q: torch.Tensor | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Causal attention within each example of a flattened row (`cu_seq_lens_q`; without
    it, the row is one sequence).

    `query`, `key`, `value` are (batch, heads, tokens, head_dim); returns (batch,
    tokens, heads, head_dim) as every transformers attention function does.
    """
    if cu_seq_lens_q is None:
        if attention_mask is not None:
            raise ValueError(
                f"{VARLEN_SDPA} attention is for padding-free rows (with "
                "cu_seq_lens_q); load the model with attn_implementation='sdpa' to "
                "train on padded batches."
            )
        cu_seq_lens_q = torch.tensor([0, query.shape[2]])  # one unpadded sequence
    if query.shape[0] != 1 or key.shape[2] != query.shape[2]:
        raise ValueError(
            "varlen attention takes one flattened row without a cache; got query "
            f"{tuple(query.shape)} and key {tuple(key.shape)}."
        )
    if key.shape[1] != query.shape[1]:  # grouped-query attention: repeat the k/v heads
        repeat = query.shape[1] // key.shape[1]
        key = key.repeat_interleave(repeat, dim=1)
        value = value.repeat_interleave(repeat, dim=1)
    lengths = cu_seq_lens_q.diff().tolist()
    # split, not slicing: the backward of a split is one concatenation, while each
    # slice's backward fills a zero tensor the size of the whole row (that alone ate
    # the padding-free gain on CPU)
    q_k_v = (t.split(lengths, 2) for t in (query, key, value))
    splits = zip(*q_k_v, strict=True)
    parts = [
        F.scaled_dot_product_attention(
            q, k, v, dropout_p=dropout, is_causal=True, scale=scaling
        )
        for q, k, v in splits
    ]
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


def register_varlen_attention() -> str:
    """Register the attention (and its mask function: none for a padding-free row, as for Flash
    Attention) with transformers; returns the name to pass as `attn_implementation`."""
    AttentionInterface.register(VARLEN_SDPA, varlen_sdpa_attention)
    AttentionMaskInterface.register(VARLEN_SDPA, flash_attention_mask)
    return VARLEN_SDPA


FLASH_ATTENTION_2_MIN_CAPABILITY = (8, 0)  # flash-attn 2 has no kernels for Turing (a T4 is 7.5) or older


def varlen_attention_for(device: str, capability: tuple[int, int] | None = None) -> str:
    """The `attn_implementation` for padding-free and packed rows on `device`: Flash Attention 2 on a
    CUDA GPU of compute capability 8.0 or more that has the `flash-attn` package, else the hand-written
    varlen attention above. `capability` defaults to the GPU's own."""
    if device.startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        capability = capability or tuple(torch.cuda.get_device_capability(device))
        if tuple(capability) >= FLASH_ATTENTION_2_MIN_CAPABILITY:
            return "flash_attention_2"
    return register_varlen_attention()
