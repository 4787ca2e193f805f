"""Helpers around transformers' Trainer for the small experiments of the book."""

from __future__ import annotations

import pandas as pd
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, TrainerCallback

from llmtut.generation import generate_answers


class StopWhenLearned(TrainerCallback):
    """After every epoch, answer the training prompts greedily; stop once every answer is exact.

    `epochs_to_learn` is the first epoch after which all answers were right (None if never), and
    `correct_per_epoch` the number right after each epoch.
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, prompts: list[str], answers: list[str], max_new_tokens: int = 8
    ):
        self.tokenizer, self.prompts, self.answers = tokenizer, prompts, answers
        self.max_new_tokens = max_new_tokens
        self.correct_per_epoch: list[int] = []
        self.epochs_to_learn: int | None = None
        self._bar: tqdm | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._bar = tqdm(total=int(args.num_train_epochs), desc="epochs", unit="epoch")

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        generated = generate_answers(model, self.tokenizer, self.prompts, self.max_new_tokens)
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
