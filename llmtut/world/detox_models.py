"""The tiny world's models for the detox chapter (05), built offline and deterministically.

Three stand-ins for the hub models of the source material, all trained on `llmtut.world.dialogues`:
a `T5ForConditionalGeneration` summarizer (google/flan-t5-base), a `RobertaForSequenceClassification`
toxicity classifier with labels nothate/hate (facebook/roberta-hate-speech-dynabench-r4-target),
and a `Qwen2ForCausalLM` summarizer for trl's GRPO, which takes causal models only (a Qwen instruct
model). They share one byte-level BPE vocabulary (`bpe.train_dialogue_tokenizers`).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import (
    DataCollatorForSeq2Seq,
    DataCollatorWithPadding,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaForSequenceClassification,
    T5Config,
    T5ForConditionalGeneration,
    Trainer,
)

from llmtut.formats import summary_prompt
from llmtut.world import bpe, cache, dialogues
from llmtut.world.trainer import completion_row, save_with_card, train_small_qwen2, trainer_args

DETOX_RECIPE: dict = {
    # The dialogues: the first n_train train the summarizers, the last n_test are held out.
    "data": {"n_train": 3000, "n_test": 400, "seed": 5, "rude_share": 0.3, "toxic_summary_share": 0.75},
    "tokenizer": {"vocab_size": 2000},
    "summarizer": {"d_model": 128, "d_ff": 512, "num_layers": 2, "num_heads": 4, "epochs": 8, "batch_size": 32,
                   "lr": 3e-3, "seed": 0},
    "classifier": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "n_train": 3000, "n_test": 1000,
                   "epochs": 2, "batch_size": 32, "lr": 2e-3, "seed": 0},
    "causal_summarizer": {"hidden_size": 128, "num_layers": 4, "num_heads": 4, "epochs": 5, "batch_size": 32,
                          "lr": 3e-3, "seed": 0},
}
LABELS = {0: "nothate", 1: "hate"}  # as the hub classifier's id2label


def dialogue_splits(recipe: dict | None = None) -> dict[str, list[dialogues.Dialogue]]:
    """The tiny world's dialogues, split into `train` and `test` (distinct dialogues)."""
    r = (DETOX_RECIPE if recipe is None else recipe)["data"]
    ds = dialogues.make_dialogues(r["n_train"] + r["n_test"], r["seed"], r["rude_share"], r["toxic_summary_share"])
    # Late dialogues are more often rude (clean ones have repeated by then and are dropped): shuffle
    # before splitting, so that train and test are drawn alike.
    random.Random(r["seed"]).shuffle(ds)
    return {"train": ds[: r["n_train"]], "test": ds[r["n_train"] :]}


def _tokenizers(recipe: dict) -> dict[str, PreTrainedTokenizerFast]:
    train = dialogue_splits(recipe)["train"]
    texts = [f"{summary_prompt(d.dialogue)} {d.summary}" for d in train]
    return bpe.train_dialogue_tokenizers(texts, recipe["tokenizer"]["vocab_size"])


def build_summarizer(out: Path, recipe: dict, progress: bool = True) -> None:
    """A small T5 trained on prompt -> reference summary: it summarizes, and repeats insults."""
    t0 = time.perf_counter()
    r = recipe["summarizer"]
    tokenizer = _tokenizers(recipe)["t5"]
    torch.manual_seed(r["seed"])
    config = T5Config(
        vocab_size=len(tokenizer), d_model=r["d_model"], d_ff=r["d_ff"], d_kv=r["d_model"] // r["num_heads"],
        num_layers=r["num_layers"], num_heads=r["num_heads"], dropout_rate=0.1, feed_forward_proj="gated-gelu",
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,  # as T5: the decoder starts from <pad>
    )
    model = T5ForConditionalGeneration(config)
    train = dialogue_splits(recipe)["train"]
    rows = [{"input_ids": tokenizer(summary_prompt(d.dialogue))["input_ids"],
             "labels": tokenizer(d.summary)["input_ids"]} for d in train]
    trainer = Trainer(model=model, args=trainer_args(out, r, progress), train_dataset=Dataset.from_list(rows),
                      data_collator=DataCollatorForSeq2Seq(tokenizer, model=model))
    trainer.train()
    model.eval()
    model.generation_config.max_new_tokens = 64
    save_with_card(out, trainer, tokenizer, {"n_train_dialogues": len(train)}, t0)


def build_classifier(out: Path, recipe: dict, progress: bool = True) -> None:
    """A small RoBERTa trained on the tiny world's labelled toxic/neutral sentences."""
    t0 = time.perf_counter()
    r = recipe["classifier"]
    tokenizer = _tokenizers(recipe)["roberta"]
    torch.manual_seed(r["seed"])
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=r["hidden_size"], num_hidden_layers=r["num_layers"],
        num_attention_heads=r["num_heads"], intermediate_size=4 * r["hidden_size"], max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
    )
    model = RobertaForSequenceClassification(config)
    sentences = dialogues.toxicity_sentences(r["n_train"] + r["n_test"], r["seed"] + 11)
    train, test = sentences[: r["n_train"]], sentences[r["n_train"] :]
    rows = [{**tokenizer(text, truncation=True, max_length=256), "labels": label} for text, label in train]
    trainer = Trainer(model=model, args=trainer_args(out, r, progress), train_dataset=Dataset.from_list(rows),
                      data_collator=DataCollatorWithPadding(tokenizer))
    trainer.train()
    model.eval()
    with torch.no_grad():
        enc = tokenizer([t for t, _ in test], padding=True, truncation=True, max_length=256, return_tensors="pt")
        predicted = model(**enc).logits.argmax(-1)
    accuracy = (predicted == torch.tensor([y for _, y in test])).float().mean().item()
    save_with_card(out, trainer, tokenizer, {"n_train_sentences": len(train), "heldout_accuracy": accuracy}, t0)


def build_causal_summarizer(out: Path, recipe: dict, progress: bool = True) -> None:
    """A small Qwen2 trained on prompt + " " + summary + eos, the loss on the summary only."""
    t0 = time.perf_counter()
    r = recipe["causal_summarizer"]
    tokenizer = _tokenizers(recipe)["causal"]
    train = dialogue_splits(recipe)["train"]
    rows = [completion_row(tokenizer, summary_prompt(d.dialogue), " " + d.summary) for d in train]
    trainer = train_small_qwen2(out, tokenizer, rows, r, progress)
    save_with_card(out, trainer, tokenizer, {"n_train_dialogues": len(train)}, t0)


def summarizer(recipe: dict | None = None, progress: bool = True) -> Path:
    """Folder of the tiny T5 summarizer and its tokenizer (built on first use, then cached)."""
    recipe = DETOX_RECIPE if recipe is None else recipe
    return cache.cached_part("t5-summarizer", recipe, "summarizer", build_summarizer, progress, __name__)


def toxicity_classifier(recipe: dict | None = None, progress: bool = True) -> Path:
    """Folder of the tiny RoBERTa toxicity classifier and its tokenizer (built on first use, then cached)."""
    recipe = DETOX_RECIPE if recipe is None else recipe
    return cache.cached_part("roberta-toxicity", recipe, "classifier", build_classifier, progress, __name__)


def causal_summarizer(recipe: dict | None = None, progress: bool = True) -> Path:
    """Folder of the tiny Qwen2 summarizer and its tokenizer (built on first use, then cached)."""
    recipe = DETOX_RECIPE if recipe is None else recipe
    return cache.cached_part("qwen2-summarizer", recipe, "causal_summarizer", build_causal_summarizer, progress, __name__)
