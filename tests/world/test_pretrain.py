import pytest
import torch
from transformers import BloomConfig, BloomForCausalLM

from llmtut.world.bpe import train_bloom_like_tokenizer
from llmtut.world.pretrain import pack_documents, pretrain_causal_lm


def test_documents_are_packed_between_bos_and_eos():
    tok = train_bloom_like_tokenizer(["a b c", "d e"], 300)
    stream = pack_documents(["a b", "c"], tok).tolist()
    assert stream[0] == tok.bos_token_id and stream[-1] == tok.eos_token_id
    assert stream.count(tok.bos_token_id) == 2 and stream.count(tok.eos_token_id) == 2


@pytest.mark.slow
def test_pretraining_lowers_the_loss_and_is_seeded():
    tok = train_bloom_like_tokenizer(["the cat sat on the mat"] * 20, 300)
    stream = pack_documents(["the cat sat on the mat"] * 50, tok)

    def run():
        torch.manual_seed(0)
        model = BloomForCausalLM(BloomConfig(vocab_size=len(tok), hidden_size=32, n_layer=1, n_head=2))
        return pretrain_causal_lm(model, stream, steps=60, batch_size=4, block_size=16, lr=3e-3, seed=0,
                                  warmup_steps=5, progress=False)

    losses = run()
    assert sum(losses[-5:]) / 5 < losses[0] / 2
    assert run() == losses
