"""Pretraining a small causal LM from scratch on a list of documents (the tiny world's prose)."""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def pack_documents(texts: list[str], tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    """One long token stream: each document between bos and eos, the way pretraining corpora are packed."""
    ids: list[int] = []
    for text in texts:
        ids.append(tokenizer.bos_token_id)
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        ids.append(tokenizer.eos_token_id)
    return torch.tensor(ids, dtype=torch.long)


def pretrain_causal_lm(
    model: PreTrainedModel,
    stream: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    block_size: int,
    lr: float,
    seed: int,
    warmup_steps: int = 50,
    progress: bool = True,
) -> list[float]:
    """AdamW on random `block_size` windows of `stream`, cosine schedule; returns the loss per step."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, steps - warmup_steps)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc="pretraining", disable=not progress):
        starts = torch.randint(0, len(stream) - block_size, (batch_size,), generator=gen)
        batch = torch.stack([stream[s : s + block_size] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses
