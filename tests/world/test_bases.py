import torch
from conftest import SMALL_RECIPE
from transformers import AutoModelForCausalLM, AutoTokenizer, BloomForCausalLM, GPT2LMHeadModel

from llmtut.world import bases, words
from llmtut.world.cache import world_card


def state(path):
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def test_same_recipe_gives_identical_weights_and_tokenizer(tmp_path, monkeypatch):
    paths = []
    for run in ("a", "b"):
        monkeypatch.setenv("LLMTUT_CACHE", str(tmp_path / run))
        paths.append(bases.causal_base(SMALL_RECIPE, progress=False))
    a, b = state(paths[0]), state(paths[1])
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert AutoTokenizer.from_pretrained(paths[0]).get_vocab() == AutoTokenizer.from_pretrained(paths[1]).get_vocab()
    assert paths[0].name == paths[1].name  # same recipe, same key


def test_another_seed_gives_other_weights(tmp_cache):
    other = {**SMALL_RECIPE, "pretrain": {**SMALL_RECIPE["pretrain"], "seed": 1}}
    a = state(bases.causal_base(SMALL_RECIPE, progress=False))
    b = state(bases.causal_base(other, progress=False))
    assert not torch.equal(a["transformer.h.0.self_attention.query_key_value.weight"],
                           b["transformer.h.0.self_attention.query_key_value.weight"])


def test_the_causal_base_is_a_bloom_that_knows_its_translations(causal_base):
    model, tokenizer = causal_base
    assert isinstance(model, BloomForCausalLM)
    card = world_card(bases.causal_base())
    assert card["translation_accuracy"] >= 0.95
    assert card["loss_last"] < card["loss_first"] / 4
    # good -> bueno, in a prose form and in a dialogue; the chat format itself it never saw
    assert bases.translation_accuracy(model, tokenizer, {"good": "bueno"}) == 1.0
    form = 'Tom: What is the Spanish word for "{en}"?\n\nMaria:'
    assert bases.translation_accuracy(model, tokenizer, words.WORD_PAIRS, form) >= 0.9


SMALL_GPT2_RECIPE = {
    "tokenizer": {"prose_docs": 100, "knowledge_docs": 100, "instruction_records": 50, "vocab_size": 500, "seed": 0},
    "model": {"n_embd": 32, "n_layer": 1, "n_head": 2, "n_positions": 64, "saved_dropout": 0.0},
    "pretrain": {"prose_docs": 50, "knowledge_docs": 50, "steps": 5, "batch_size": 4, "block_size": 32, "lr": 3e-3,
                 "seed": 0},
}


def test_the_gpt2_base_is_deterministic_and_has_gpt2s_single_special_token(tmp_path, monkeypatch):
    paths = []
    for run in ("a", "b"):
        monkeypatch.setenv("LLMTUT_CACHE", str(tmp_path / run))
        paths.append(bases.gpt2_base(SMALL_GPT2_RECIPE, progress=False))
    a, b = state(paths[0]), state(paths[1])
    assert all(torch.equal(a[k], b[k]) for k in a)
    tokenizer = AutoTokenizer.from_pretrained(paths[0])
    assert tokenizer.eos_token == tokenizer.bos_token == "<|endoftext|>" and tokenizer.pad_token is None
    assert tokenizer.eos_token_id == len(tokenizer) - 1  # last, as in gpt2 (50256)
    text = "Translate the word into Spanish.\n\n### Response:\nperro"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_the_gpt2_base_is_a_gpt2_pretrained_on_prose():
    model, tokenizer = bases.load_base("gpt2-base")
    assert isinstance(model, GPT2LMHeadModel) and model.config.n_positions >= 256
    card = world_card(bases.gpt2_base())
    assert card["loss_last"] < card["loss_first"] / 4
    # the instruction template's words are whole tokens (short examples), even though the model never saw it
    assert tokenizer.tokenize("\n\n### Response:\n") == ["Ċ", "Ċ", "###", "ĠResponse", ":", "Ċ"]
