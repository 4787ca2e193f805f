import pytest
import torch
from datasets import Dataset
from transformers import DataCollatorWithFlattening, GPT2Config, GPT2LMHeadModel
from trl import pack_dataset
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from llmtut.attention import register_varlen_attention
from llmtut.batching import (
    CountingCollator,
    pack_into_rows,
    pad_fraction,
    saved_activation_bytes,
    tokens_per_second,
)


def test_pad_fraction_is_the_mean_share_of_pads_per_batch():
    # batch [2, 4]: 2 pads of 8 slots; batch [3, 3]: none; batch [1]: none
    assert pad_fraction([2, 4, 3, 3, 1], 2) == pytest.approx((2 / 8 + 0 + 0) / 3)
    assert pad_fraction([5, 5, 5], 3) == 0
    with pytest.raises(ValueError, match="batch_size"):
        pad_fraction([3], 0)


def test_pack_into_rows_keeps_every_example_in_at_most_n_rows():
    lengths = [7, 3, 9, 2, 5, 8, 4, 6, 1, 5]
    examples = Dataset.from_dict({"input_ids": [list(range(n)) for n in lengths]})
    rows, length = pack_into_rows(examples, 4)
    assert len(rows) <= 4
    assert sorted(n for r in rows["seq_lengths"] for n in r) == sorted(lengths)  # whole examples, none cut
    assert all(sum(r) <= length for r in rows["seq_lengths"])
    # the shortest such length: one token less needs a fifth row
    assert len(pack_dataset(examples, length - 1, strategy="bfd")) > 4
    fewer, _ = pack_into_rows(examples, 10)
    assert len(fewer) <= 10 and max(map(sum, fewer["seq_lengths"])) >= max(lengths)


def test_counting_collator_counts_real_tokens_not_pads():
    collator = CountingCollator(DataCollatorForLanguageModeling(pad_token_id=0))
    batch = collator([{"input_ids": [5, 6, 7]}, {"input_ids": [8]}])
    assert batch["input_ids"].shape == (2, 3)  # padded to 6 slots
    assert collator.per_batch == [4]


def test_tokens_per_second_leaves_out_the_warm_up_steps():
    assert tokens_per_second([100, 200, 300], [10.0, 1.0, 2.0], skip=1) == pytest.approx(500 / 3)
    with pytest.raises(ValueError, match="skip"):
        tokens_per_second([100], [1.0], skip=1)


def test_padding_costs_activation_memory_that_padding_free_does_not():
    torch.manual_seed(0)
    def config():  # one each: set_attn_implementation changes the config object a model holds
        return GPT2Config(vocab_size=64, n_embd=16, n_layer=2, n_head=2, n_positions=64)

    examples = [{"input_ids": list(range(1, 31))}] + [{"input_ids": [1, 2, 3]} for _ in range(7)]
    padded = DataCollatorForLanguageModeling(pad_token_id=0)(examples)
    flat = DataCollatorWithFlattening(return_flash_attn_kwargs=True)(examples)
    padded_model = GPT2LMHeadModel(config()).train()
    padded_model.set_attn_implementation("sdpa")
    flat_model = GPT2LMHeadModel(config()).train()
    flat_model.set_attn_implementation(register_varlen_attention())
    padded_bytes = saved_activation_bytes(padded_model, padded)
    flat_bytes = saved_activation_bytes(flat_model, flat)
    assert all(p.grad is None for p in flat_model.parameters())  # the measurement leaves no gradients
    # 240 padded slots against 51 real tokens: the padded step keeps several times the activations
    assert padded_bytes > 3 * flat_bytes > 0
