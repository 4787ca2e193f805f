"""Helpers around transformers' Trainer for the small experiments of the book."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from peft import LoraConfig, PeftModel, get_peft_model
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase, PrinterCallback, Trainer, TrainerCallback

from llmtut.generation import generate_answers
from llmtut.precision import precision_for
from llmtut.trainer_defaults import quiet_trainer_args


class StopWhenLearned(TrainerCallback):
    """After every epoch, answer the training prompts greedily; stop once every answer is exact.

    `epochs_to_learn` is the first epoch after which all answers were right (None if never), and
    `correct_per_epoch` the number right after each epoch. `end_of_turn`: see `generate_answers`.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        prompts: list[str],
        answers: list[str],
        max_new_tokens: int = 8,
        end_of_turn: str | None = None,
    ):
        self.tokenizer, self.prompts, self.answers = tokenizer, prompts, answers
        self.max_new_tokens, self.end_of_turn = max_new_tokens, end_of_turn
        self.correct_per_epoch: list[int] = []
        self.epochs_to_learn: int | None = None
        self._bar: tqdm | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._bar = tqdm(total=int(args.num_train_epochs), desc="epochs", unit="epoch")

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        generated = generate_answers(
            model, self.tokenizer, self.prompts, self.max_new_tokens, self.end_of_turn
        )
        correct = sum(g == a for g, a in zip(generated, self.answers, strict=True))
        self.correct_per_epoch.append(correct)
        self._bar.update(1)
        self._bar.set_postfix(correct=f"{correct}/{len(self.answers)}")
        if correct == len(self.answers):
            self.epochs_to_learn = len(self.correct_per_epoch)
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self._bar.close()


def loss_history(log_history: list[dict]) -> pd.DataFrame:
    """The training loss per logged step (from `trainer.state.log_history`), with its epoch."""
    rows = [(h["step"], h["epoch"], h["loss"]) for h in log_history if "loss" in h]
    return pd.DataFrame(rows, columns=["step", "epoch", "loss"])


def small_run_args(max_epochs: int, batch_size: int, learning_rate: float, seed: int, device: str) -> dict:
    """Keyword arguments shared by the book's small runs, for `TrainingArguments` or trl's configs.

    A constant learning rate (so that epochs to learn compare methods, not schedules), a loss logged
    every step for the plots, the book's quiet defaults (`quiet_trainer_args`: no checkpoints, no
    reporting, no per-step bar, since StopWhenLearned has one), and the device's mixed precision
    (`llmtut.precision`: fp16 on a T4, bf16 from compute capability 8.0, none on the CPU).
    """
    return dict(
        num_train_epochs=max_epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="constant",
        logging_steps=1,
        **quiet_trainer_args(seed, device),
        **precision_for(device).trainer_args(),
    )


def with_lora(
    model: PreTrainedModel,
    r: int,
    target_modules: Sequence[str],
    trainable_token_indices: list[int] | None = None,
) -> PeftModel:
    """`model` with a fresh LoRA adapter (alpha = 2r, no dropout); `trainable_token_indices` also
    trains those embedding rows (e.g. new special tokens), which LoRA alone leaves frozen."""
    config = LoraConfig(
        r=r,
        lora_alpha=2 * r,
        lora_dropout=0.0,
        target_modules=list(target_modules),
        task_type="CAUSAL_LM",
        trainable_token_indices=trainable_token_indices,
    )
    return get_peft_model(model, config)


@dataclass
class LearnRun:
    """What one `train_until_learned` run measured."""

    trainer: Trainer
    epochs_to_learn: int | None
    correct_per_epoch: list[int]
    train_runtime_s: float
    losses: pd.DataFrame

    @property
    def final_correct(self) -> int:
        return self.correct_per_epoch[-1]


def train_until_learned(trainer: Trainer, stopper: StopWhenLearned) -> LearnRun:
    """Train with `stopper` as a callback until every answer is exact (or the epochs run out).

    transformers' per-step printing is switched off: the losses are returned for plotting instead.
    """
    trainer.add_callback(stopper)
    trainer.remove_callback(PrinterCallback)
    t0 = time.perf_counter()
    trainer.train()
    return LearnRun(
        trainer=trainer,
        epochs_to_learn=stopper.epochs_to_learn,
        correct_per_epoch=stopper.correct_per_epoch,
        train_runtime_s=time.perf_counter() - t0,
        losses=loss_history(trainer.state.log_history),
    )


def learn_fresh(
    new_model: Callable[[], PreTrainedModel],
    trainer_cls: type[Trainer],
    args: Any,
    dataset: Any,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    answers: list[str],
    **trainer_kwargs: Any,
) -> tuple[PreTrainedModel, LearnRun]:
    """Train a fresh model (`new_model()`) with `trainer_cls(model, args, train_dataset=dataset, ...)` until
    it answers every prompt exactly (`StopWhenLearned`); (the model, what the run measured)."""
    model = new_model()
    trainer = trainer_cls(model=model, args=args, train_dataset=dataset, **trainer_kwargs)
    return model, train_until_learned(trainer, StopWhenLearned(tokenizer, prompts, answers))


def plot_learning(runs: Mapping[str, Mapping[str, Any]], n_answers: int = 5) -> Figure:
    """Two panels for runs that each have `losses` (a `loss_history` frame) and `correct_per_epoch`:
    the training loss per step, and the answers right after each epoch."""
    fig, (loss_ax, correct_ax) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, run in runs.items():
        loss_ax.plot(run["losses"]["epoch"], run["losses"]["loss"], label=name, alpha=0.8)
        correct = run["correct_per_epoch"]
        correct_ax.plot(range(1, len(correct) + 1), correct, marker="o", label=name)
    loss_ax.set(xlabel="epoch", ylabel="training loss (log scale)", title="loss per step", yscale="log")
    correct_ax.set(xlabel="epoch", ylabel=f"training answers exact (of {n_answers})", title="answers right after each epoch")
    for ax in (loss_ax, correct_ax):
        ax.legend()
    fig.tight_layout()
    return fig
