import importlib.util

import pytest
import torch
from transformers import DataCollatorWithFlattening, Qwen2Config, Qwen2ForCausalLM

from llmtut.attention import register_varlen_attention, varlen_attention_for, varlen_sdpa_attention


def test_varlen_attention_equals_a_block_diagonal_causal_mask():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 9, 4) for _ in range(3))
    cu = torch.tensor([0, 4, 6, 9])
    out, _ = varlen_sdpa_attention(None, q, k, v, None, cu_seq_lens_q=cu)
    segment = torch.repeat_interleave(torch.arange(3), cu.diff())
    mask = (segment[:, None] == segment[None, :]) & torch.ones(9, 9, dtype=torch.bool).tril()
    dense = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert out.shape == (1, 9, 2, 4)
    torch.testing.assert_close(out, dense.transpose(1, 2))


def test_a_flattened_batch_gives_each_example_the_logits_it_has_alone():
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2)
    name = register_varlen_attention()
    model = Qwen2ForCausalLM(config).eval()
    model.set_attn_implementation(name)
    examples = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
    batch = DataCollatorWithFlattening(return_flash_attn_kwargs=True)([{"input_ids": e} for e in examples])
    with torch.no_grad():
        flat = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[0]
        model.set_attn_implementation("sdpa")
        alone = torch.cat([model(input_ids=torch.tensor([e])).logits[0] for e in examples])
        # without the boundaries, later examples attend to earlier ones: their logits change
        leaky = model(input_ids=batch["input_ids"]).logits[0]
    torch.testing.assert_close(flat, alone, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(leaky[5:], alone[5:], atol=1e-3)


def test_a_padded_batch_is_refused_with_the_fix():
    q = torch.randn(2, 2, 3, 4)
    with pytest.raises(ValueError, match="attn_implementation='sdpa'"):
        varlen_sdpa_attention(None, q, q, q, torch.ones(2, 1, 3, 3, dtype=torch.bool))


def test_varlen_attention_gradients_equal_those_of_a_block_diagonal_mask():
    torch.manual_seed(0)
    cu = torch.tensor([0, 3, 8, 9])
    qkv = [torch.randn(1, 2, 9, 4, requires_grad=True) for _ in range(3)]
    dense_qkv = [t.detach().clone().requires_grad_() for t in qkv]
    grad = torch.randn(1, 9, 2, 4)
    varlen_sdpa_attention(None, *qkv, None, cu_seq_lens_q=cu)[0].backward(grad)
    segment = torch.repeat_interleave(torch.arange(3), cu.diff())
    mask = (segment[:, None] == segment[None, :]) & torch.ones(9, 9, dtype=torch.bool).tril()
    torch.nn.functional.scaled_dot_product_attention(*dense_qkv, attn_mask=mask).transpose(1, 2).backward(grad)
    for t, d in zip(qkv, dense_qkv, strict=True):
        torch.testing.assert_close(t.grad, d.grad)


def test_varlen_attention_for_a_cpu_is_the_hand_written_one():
    assert varlen_attention_for("cpu") == "sdpa_varlen"


def test_flash_attention_2_only_from_compute_capability_8(monkeypatch):
    """flash-attn 2 has no kernels below 8.0: a T4 (7.5) gets the hand-written varlen attention even
    where the package imports; an A100 (8.0) gets Flash Attention 2."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "flash_attn" else real_find_spec(name, *a))
    assert varlen_attention_for("cuda", capability=(7, 5)) == "sdpa_varlen"
    assert varlen_attention_for("cuda", capability=(8, 0)) == "flash_attention_2"
    assert varlen_attention_for("cpu", capability=(9, 0)) == "sdpa_varlen"
