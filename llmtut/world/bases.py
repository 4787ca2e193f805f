"""The tiny world's base models: a Bloom (chapters 02-04) and a GPT-2 (chapters 01, 07), built offline.

Both are pretrained from scratch on the tiny world's prose with tokenizers trained here, so that the
chapters' `AutoModelForCausalLM` code, LoRA target modules and generation behave as on the Hub models.
Deterministic for a recipe, and cached (`llmtut.world.cache`).
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BloomConfig,
    BloomForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from llmtut.formats import format_alpaca
from llmtut.world import bpe, cache, pretrain, tasks, words

CAUSAL_BASE_RECIPE: dict = {
    "tokenizer": {"prose_docs": 3000, "chat_docs": 3000, "vocab_size": 2000, "seed": 0},
    "model": {"hidden_size": 128, "n_layer": 4, "n_head": 4},
    "pretrain": {"docs": 3000, "steps": 400, "batch_size": 32, "block_size": 64, "lr": 3e-3, "seed": 0},
}


def translation_accuracy(model, tokenizer, pairs: dict[str, str], form: str = 'In Spanish, "{en}" is') -> float:
    """Share of word pairs whose Spanish word is the greedy next token after `form`."""
    prompts = [form.format(en=en) for en in pairs]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    with torch.no_grad():
        next_ids = model(**enc).logits[:, -1].argmax(-1)
    predicted = [tokenizer.decode(int(i)).strip() for i in next_ids]
    return sum(p == es for p, es in zip(predicted, pairs.values(), strict=True)) / len(pairs)


def _pretrain_and_save(
    out: Path,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    docs: list[str],
    r_pre: dict,
    progress: bool,
    t0: float,
    before_save: Callable[[PreTrainedModel], None],
) -> None:
    """Pretrain `model` on `docs` packed into one token stream, save it with its tokenizer, and write the
    world card (size, losses, translation accuracy, build time) and the loss curve."""
    stream = pretrain.pack_documents(docs, tokenizer)
    losses = pretrain.pretrain_causal_lm(
        model,
        stream,
        steps=r_pre["steps"],
        batch_size=r_pre["batch_size"],
        block_size=r_pre["block_size"],
        lr=r_pre["lr"],
        seed=r_pre["seed"],
        progress=progress,
    )
    before_save(model)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    padded = copy.deepcopy(tokenizer)
    if padded.pad_token is None:
        padded.pad_token = padded.eos_token  # translation_accuracy pads a batch
    card = {
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "n_train_tokens": len(stream),
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "translation_accuracy": translation_accuracy(model, padded, words.WORD_PAIRS),
        "build_seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "world_card.json").write_text(json.dumps(card, indent=2))
    (out / "losses.json").write_text(json.dumps(losses))


def build_causal_base(out: Path, recipe: dict, progress: bool = True) -> None:
    """Train the bloom-like tokenizer, then pretrain a small BloomForCausalLM on bilingual prose."""
    t0 = time.perf_counter()
    r_tok, r_model, r_pre = recipe["tokenizer"], recipe["model"], recipe["pretrain"]
    texts = words.bilingual_prose(r_tok["prose_docs"], r_tok["seed"])
    texts += words.chat_text(r_tok["chat_docs"], r_tok["seed"] + 1)
    tokenizer = bpe.train_bloom_like_tokenizer(texts, r_tok["vocab_size"])

    torch.manual_seed(r_pre["seed"])
    config = BloomConfig(
        vocab_size=len(tokenizer),
        hidden_size=r_model["hidden_size"],
        n_layer=r_model["n_layer"],
        n_head=r_model["n_head"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = BloomForCausalLM(config)
    # Chat text trains the tokenizer only: the model never sees the chat format before the chapters.
    docs = words.bilingual_prose(r_pre["docs"], r_pre["seed"] + 2)

    def before_save(model: BloomForCausalLM) -> None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id

    _pretrain_and_save(out, model, tokenizer, docs, r_pre, progress, t0, before_save)


def causal_base(recipe: dict | None = None, progress: bool = True) -> Path:
    """Folder of the tiny causal base model and its tokenizer (built on first use, then cached)."""
    recipe = CAUSAL_BASE_RECIPE if recipe is None else recipe
    return cache.cached_build("causal-base", recipe, lambda out: build_causal_base(out, recipe, progress), __name__)


GPT2_BASE_RECIPE: dict = {
    "tokenizer": {"prose_docs": 3000, "knowledge_docs": 3000, "instruction_records": 1100, "vocab_size": 3000, "seed": 0},
    # saved_dropout: the dropout the saved model fine-tunes with. A 1M-parameter model trained for a
    # minute underfits rather than overfits: without dropout chapter 01's run scores 35 instead of 28.
    "model": {"n_embd": 128, "n_layer": 4, "n_head": 4, "n_positions": 256, "saved_dropout": 0.0},
    "pretrain": {"prose_docs": 3000, "knowledge_docs": 3000, "steps": 400, "batch_size": 32, "block_size": 64,
                 "lr": 3e-3, "seed": 0},
}


def build_gpt2_base(out: Path, recipe: dict, progress: bool = True) -> None:
    """Train a GPT-2-like tokenizer, then pretrain a small GPT2LMHeadModel on prose: the tiny world's
    bilingual lessons and the facts behind the instruction tasks (`tasks.knowledge_prose`)."""
    t0 = time.perf_counter()
    r_tok, r_model, r_pre = recipe["tokenizer"], recipe["model"], recipe["pretrain"]
    # Like GPT-2's tokenizer, which was trained on web text that has instructions in it, ours sees
    # Alpaca-formatted records; the model itself never does (it is pretrained on prose only).
    records = tasks.tiny_instruction_records(r_tok["instruction_records"], r_tok["seed"])
    texts = words.bilingual_prose(r_tok["prose_docs"], r_tok["seed"])
    texts += tasks.knowledge_prose(r_tok["knowledge_docs"], r_tok["seed"] + 1)
    texts += [format_alpaca(r, with_response=True) for r in records]
    tokenizer = bpe.train_gpt2_like_tokenizer(texts, r_tok["vocab_size"])

    torch.manual_seed(r_pre["seed"])
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=r_model["n_positions"],
        n_embd=r_model["n_embd"],
        n_layer=r_model["n_layer"],
        n_head=r_model["n_head"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)
    docs = words.bilingual_prose(r_pre["prose_docs"], r_pre["seed"] + 2)
    docs += tasks.knowledge_prose(r_pre["knowledge_docs"], r_pre["seed"] + 3)
    random.Random(r_pre["seed"]).shuffle(docs)

    def before_save(model: GPT2LMHeadModel) -> None:
        model.config.resid_pdrop = model.config.embd_pdrop = model.config.attn_pdrop = r_model["saved_dropout"]

    _pretrain_and_save(out, model, tokenizer, docs, r_pre, progress, t0, before_save)


def gpt2_base(recipe: dict | None = None, progress: bool = True) -> Path:
    """Folder of the tiny GPT-2 base model of chapter 01 and its tokenizer (built on first use, then cached)."""
    recipe = GPT2_BASE_RECIPE if recipe is None else recipe
    return cache.cached_build("gpt2-base", recipe, lambda out: build_gpt2_base(out, recipe, progress), __name__)


def load_base(name: str, device: str = "cpu") -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """(model, tokenizer) of the base `name` ("causal-base" or "gpt2-base"), in eval mode on `device`.
    The GPT-2 tokenizer has no pad token, as GPT-2's."""
    path = BASES[name]()
    model = AutoModelForCausalLM.from_pretrained(path).to(device).eval()
    return model, AutoTokenizer.from_pretrained(path)


BASES: dict[str, Callable[[], Path]] = {"causal-base": causal_base, "gpt2-base": gpt2_base}
