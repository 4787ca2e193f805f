"""A plain PyTorch fine-tuning loop with periodic evaluation (chapter 01, after the source's ch05/ch07).

No Trainer on purpose: the chapter shows every step of a training loop once, and later chapters
use transformers' and trl's trainers knowing what they do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from llmtut.masking import IGNORE_INDEX


def batch_loss(
    model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of the model's next-token logits against `targets` (already
    shifted by the collate); targets equal to -100 are left out of the mean."""
    logits = model(inputs).logits
    return F.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX
    )


@torch.no_grad()
def loader_loss(model: torch.nn.Module, loader: Iterable, num_batches: int | None = None) -> float:
    """Mean `batch_loss` over the first `num_batches` batches of `loader` (all of them if None), in eval mode."""
    was_training = model.training
    model.eval()
    losses = []
    for i, (inputs, targets) in enumerate(loader):
        if num_batches is not None and i >= num_batches:
            break
        losses.append(batch_loss(model, inputs, targets).item())
    model.train(was_training)
    if not losses:
        raise ValueError("loader_loss got no batches: the loader is empty or num_batches is 0.")
    return sum(losses) / len(losses)


@dataclass
class LossHistory:
    """Losses measured every `eval_freq` steps, with the step and the tokens seen so far."""

    steps: list[int] = field(default_factory=list)
    tokens_seen: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)


def train_with_eval(
    model: torch.nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    *,
    num_epochs: int,
    eval_freq: int,
    eval_iter: int | None,
    seed: int,
    progress: bool = True,
) -> LossHistory:
    """Train for `num_epochs`; every `eval_freq` steps (and before the first) record the train and
    validation loss over `eval_iter` batches. `seed` fixes the order the loader shuffles in."""
    torch.manual_seed(seed)
    history = LossHistory()
    step, tokens_seen = 0, 0

    def evaluate() -> None:
        history.steps.append(step)
        history.tokens_seen.append(tokens_seen)
        history.train_loss.append(loader_loss(model, train_loader, eval_iter))
        history.val_loss.append(loader_loss(model, val_loader, eval_iter))

    model.train()
    evaluate()  # the starting point of both curves
    bar = tqdm(
        total=num_epochs * len(train_loader),
        desc="fine-tuning",
        unit="step",
        disable=not progress,
    )
    for _ in range(num_epochs):
        for inputs, targets in train_loader:
            optimizer.zero_grad(set_to_none=True)
            loss = batch_loss(model, inputs, targets)
            loss.backward()
            optimizer.step()
            step += 1
            tokens_seen += inputs.numel()
            bar.update(1)
            if step % eval_freq == 0:
                evaluate()
                train_loss, val_loss = history.train_loss[-1], history.val_loss[-1]
                bar.set_postfix(train=f"{train_loss:.3f}", val=f"{val_loss:.3f}")
    if history.steps[-1] != step:
        evaluate()  # the end point, when the last step was not an evaluation step
    bar.close()
    model.eval()
    return history
