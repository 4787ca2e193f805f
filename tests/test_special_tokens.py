import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import BloomConfig, BloomForCausalLM, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from llmtut.masking import IGNORE_INDEX
from llmtut.special_tokens import add_special_tokens_with_init, find_template, mask_before_template

TPL = [7, 8, 9]


def test_find_template_returns_the_first_start():
    assert find_template([1, 7, 8, 9, 5, 7, 8, 9], TPL) == 1


def test_a_missing_template_is_an_error_naming_the_row_and_the_fix():
    with pytest.raises(ValueError, match=r"row 4 does not contain the response template.*special token"):
        find_template([1, 7, 8, 5, 9], TPL, row=4)


def test_mask_before_template_keeps_what_follows_the_template():
    assert mask_before_template([1, 2, 7, 8, 9, 20, 21], TPL) == [IGNORE_INDEX] * 5 + [20, 21]


def test_mask_before_template_never_returns_a_row_of_ignore_index():
    with pytest.raises(ValueError, match="row 0"):
        mask_before_template([1, 2, 3], TPL, row=0)
    with pytest.raises(ValueError, match="no response"):
        mask_before_template([1, 7, 8, 9], TPL, row=0)


def _tokenizer():
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "a": 3, "b": 4, "c": 5, "ab": 6, "[UNK]": 7}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[("a", "b")], unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def _bloom(vocab=8, rows=None):
    torch.manual_seed(0)
    cfg = BloomConfig(vocab_size=rows or vocab, hidden_size=16, n_layer=1, n_head=2)
    return BloomForCausalLM(cfg)


@pytest.mark.parametrize("init", ["mean", "random", "pieces"])
def test_new_rows_are_added_and_initialised(init):
    model, tok = _bloom(), _tokenizer()
    old = model.get_input_embeddings().weight.detach().clone()
    pieces = tok("abc", add_special_tokens=False)["input_ids"]
    new_ids = add_special_tokens_with_init(model, tok, ["<H>", "abc"], init=init, seed=0)
    assert new_ids == [8, 9] and len(tok) == 10
    assert tok("c <H> c", add_special_tokens=False)["input_ids"] == [5, 8, 5]
    emb = model.get_input_embeddings().weight
    assert emb.shape == (10, 16) and torch.equal(emb[:8], old)
    assert model.get_output_embeddings().weight is emb  # Bloom ties them: one matrix
    if init == "mean":
        assert torch.allclose(emb[8], old.mean(0)) and torch.allclose(emb[9], old.mean(0))
    elif init == "random":
        assert not torch.allclose(emb[8], emb[9])
        assert emb[8:].std().item() == pytest.approx(model.config.initializer_range, rel=0.5)
    else:
        assert pieces == [6, 5]
        assert torch.allclose(emb[9], old[[6, 5]].mean(0))


def test_random_init_is_seeded_and_leaves_the_global_rng_alone():
    rows = []
    for _ in range(2):
        model, tok = _bloom(), _tokenizer()
        state = torch.random.get_rng_state()
        add_special_tokens_with_init(model, tok, ["<H>"], init="random", seed=3)
        assert torch.equal(torch.random.get_rng_state(), state)
        rows.append(model.get_input_embeddings().weight[8].detach().clone())
    assert torch.equal(rows[0], rows[1])


def test_extra_embedding_rows_are_kept_and_the_new_ids_initialised():
    model, tok = _bloom(rows=12), _tokenizer()  # like bloom-560m: more rows than tokens
    old = model.get_input_embeddings().weight.detach().clone()
    new_ids = add_special_tokens_with_init(model, tok, ["<H>"], init="mean")
    assert new_ids == [8] and model.get_input_embeddings().weight.shape[0] == 12
    assert torch.allclose(model.get_input_embeddings().weight[8], old[:8].mean(0))


def test_untied_output_rows_are_initialised_too():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=8, n_embd=16, n_layer=1, n_head=2, tie_word_embeddings=False))
    tok = _tokenizer()
    out_old = model.get_output_embeddings().weight.detach().clone()
    add_special_tokens_with_init(model, tok, ["abc"], init="pieces")
    out = model.get_output_embeddings().weight
    assert out is not model.get_input_embeddings().weight
    assert torch.allclose(out[8], out_old[[6, 5]].mean(0))


def test_bad_init_and_existing_tokens_are_errors():
    model, tok = _bloom(), _tokenizer()
    with pytest.raises(ValueError, match="init must be one of"):
        add_special_tokens_with_init(model, tok, ["<H>"], init="zeros")
    with pytest.raises(ValueError, match="already tokens"):
        add_special_tokens_with_init(model, tok, ["ab"])
