"""Shared steps of the tiny world's models that transformers' Trainer builds (chapters 05 and 06)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import (
    DataCollatorForSeq2Seq,
    PreTrainedTokenizerBase,
    Qwen2Config,
    Qwen2ForCausalLM,
    Trainer,
    TrainingArguments,
)

from llmtut.formats import IGNORE_INDEX
from llmtut.trainer_defaults import quiet_trainer_args


def trainer_args(out: Path, r: dict, progress: bool) -> TrainingArguments:
    """`r`'s epochs, batch size, lr and seed; a cosine schedule, a loss logged every 50 steps, no checkpoints."""
    return TrainingArguments(
        output_dir=str(out / "trainer"), num_train_epochs=r["epochs"], per_device_train_batch_size=r["batch_size"],
        learning_rate=r["lr"], lr_scheduler_type="cosine", warmup_steps=20, weight_decay=0.01, logging_steps=50,
        **quiet_trainer_args(r["seed"], "cpu") | dict(data_seed=r["seed"], disable_tqdm=not progress),
    )


def save_with_card(out: Path, trainer: Trainer, tokenizer: PreTrainedTokenizerBase, card: dict, t0: float) -> None:
    """Save the model and tokenizer to `out`, and a world card: `card` plus size, losses and build time."""
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    log = trainer.state.log_history
    # Losses are logged every 50 steps; a run shorter than that has only its mean training loss.
    losses = [h["loss"] for h in log if "loss" in h] or [h["train_loss"] for h in log if "train_loss" in h]
    card |= {"n_parameters": trainer.model.num_parameters(), "loss_first": losses[0], "loss_last": losses[-1],
             "build_seconds": round(time.perf_counter() - t0, 1)}
    (out / "world_card.json").write_text(json.dumps(card, indent=2))
    shutil.rmtree(out / "trainer", ignore_errors=True)  # the Trainer's output folder holds nothing we keep


def completion_row(tokenizer: PreTrainedTokenizerBase, prompt: str, completion: str) -> dict:
    """prompt + completion + eos as one row, the loss on the completion and the eos only."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    completion_ids = tokenizer(completion)["input_ids"] + [tokenizer.eos_token_id]
    return {"input_ids": prompt_ids + completion_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + completion_ids}


def train_small_qwen2(out: Path, tokenizer: PreTrainedTokenizerBase, rows: list[dict], r: dict,
                      progress: bool) -> Trainer:
    """A `Qwen2ForCausalLM` of `r`'s size trained on `rows` (input_ids, labels), ready to generate to eos."""
    torch.manual_seed(r["seed"])
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=r["hidden_size"], intermediate_size=4 * r["hidden_size"],
        num_hidden_layers=r["num_layers"], num_attention_heads=r["num_heads"], num_key_value_heads=r["num_heads"],
        max_position_embeddings=512, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    trainer = Trainer(model=model, args=trainer_args(out, r, progress), train_dataset=Dataset.from_list(rows),
                      data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, padding=True))
    tokenizer.padding_side = "right"  # the collator pads training rows on the right ...
    trainer.train()
    tokenizer.padding_side = "left"  # ... generation pads on the left
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.max_new_tokens = 64
    return trainer
