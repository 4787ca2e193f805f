"""PDSS: one small LM trained on two tasks at once, with an alpha-weighted loss (chapter 06).

Privacy-preserving step-by-step distillation (PDSS) trains one small causal LM as two things:
- an **encoder** that perturbs a private question before it leaves the machine
  (`encoder_in` -> `encoder_out`, the InferDPT-perturbed question), and
- a **decoder** that recovers the rationale for the private question from the rationale the remote
  LLM gave for the perturbed one (`decoder_in` -> `decoder_out`, the teacher's rationale for the
  clean question).
The loss is `alpha * L_encoder + (1 - alpha) * L_decoder`. The distillation step that follows
(step-by-step distillation) is the same two-task recipe with other tasks: `Predict:` the answer and
`Explain:` the rationale, `alpha * L_predict + (1 - alpha) * L_explain`. So everything here works on
two named tasks (`TASKS`): a row holds `{task}_in` (the prompt) and `{task}_out` (the target) for each,
and the Distill* classes are the PDSS* classes with other task names.

Differences from the source (FATE-LLM's PDSS tutorial), on purpose:
- the fields are checked by name, with a hint for near misses (its dataset writes `docoder`);
- the limits are measured (`fit_limits`) instead of a fixed 64 tokens that cut the decoder prompt, and
  what is still cut is counted (`truncation_rate`); a prompt keeps its end (the cue before the target),
  a target keeps its start and always its eos;
- labels are masked by position, not by value: the source masks every pad id, which also masks the
  eos when eos == pad, so the model never learns to stop;
- a row whose target is empty (a teacher reply that was empty, or began with the newline that the
  client's stop=["\\n"] cuts at; a recovered rationale the SLM ended at once) is dropped and counted
  (`n_dropped`), not trained on as "write nothing";
- the trainer is a plain transformers `Trainer`, with no federated runtime. In the source's DSS
  trainer alpha weighs the rationale loss; here alpha always weighs the first task (Predict). The
  label-only baseline is the distillation trainer at alpha = 1. It logs its last step as well, so a
  run shorter than `logging_steps` still has a loss to show (`loss_history`);
- the question is `llmtut.formats.format_question`'s rendering ("Choices:" then one "A. text" line per
  choice), not the source's `Question:{{question}}\\nChoices:{{choices.text}}` (the choice texts as a
  Python list, without labels).
"""

from __future__ import annotations

import difflib
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from jinja2 import Environment, StrictUndefined
from torch.utils.data import Dataset
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import IntervalStrategy

from llmtut.masking import IGNORE_INDEX
from llmtut.training import loss_history

PDSS_TASKS = ("encoder", "decoder")
DISTILL_TASKS = ("predict", "explain")

# ---------------------------------------------------------------------------------------------
# Templates: the source's wording; "Use <end> to end your reply" is gone since the dataset appends eos.
# `question` is a formatted question with its choices (`llmtut.formats.format_question`).
# ---------------------------------------------------------------------------------------------

ENCODER_IN = """\
Disrupt the main words in the original text so that it becomes difficult to recognize, but at the same \
time, try to maintain the original meaning as much as possible.
Origin Doc:
{{ question | trim }}

Perturbed Doc:
"""
ENCODER_OUT = "{{ perturbed_question | trim }}"
DECODER_IN = """\
This is a perturbed question and its corresponding answer (rationale). And following is the original \
question. Try to recover the correct rationale from docs provided.

Perturbed doc and rationale:
{{ perturbed_question | trim }}
Rationale: {{ perturbed_rationale | trim }}

Original Doc:
{{ question | trim }}

Recover Rationale:
"""
DECODER_OUT = "{{ rationale | trim }}"

# The distillation tasks (the source's PrefixDataset templates).
PREDICT_IN = "Predict:\n{{ question | trim }}\nAnswer:\n"
PREDICT_OUT = "{{ answer | trim }}"
EXPLAIN_IN = "Explain:\n{{ question | trim }}\nRationale:\n"
EXPLAIN_OUT = "{{ rationale | trim }}"

# StrictUndefined: a variable the caller forgot is an error, not an empty string.
_JINJA = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


def render(template: str, **values: str) -> str:
    """`template` rendered with `values`; a variable it uses but `values` lacks raises UndefinedError."""
    return _JINJA.from_string(template).render(**values)


def _check_strings(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}: {value!r}")


def split_by_question(records: Sequence[Mapping[str, Any]], *sizes: int) -> list[list]:
    """Consecutive groups of `sizes[i]` records, in order, e.g. (test, private training, public). A record
    whose question text is in an earlier group is skipped: ARC repeats some question texts (with other
    ids or choices), and taken blindly a test question would also be trained on, or a private one sent in
    the clear. Raises ValueError when the records run out."""
    groups: list[list] = [[] for _ in sizes]
    earlier: set[str] = set()
    i = 0
    for record in records:
        while i < len(sizes) and len(groups[i]) == sizes[i]:
            earlier |= {r["question"] for r in groups[i]}
            i += 1
        if i == len(sizes):
            break
        if record["question"] not in earlier:
            groups[i].append(record)
    short = [f"{len(g)} of {n}" for g, n in zip(groups, sizes, strict=True) if len(g) < n]
    if short:
        raise ValueError(f"{len(records)} records fill only {', '.join(short)} of the groups {sizes}: "
                         "ask for fewer questions.")
    return groups


def build_fields(question_text: str, perturbed_text: str, perturbed_rationale: str, clean_rationale: str) -> dict:
    """The four PDSS fields of one example: `encoder_in`, `encoder_out`, `decoder_in`, `decoder_out`.

    `question_text` is the private question with its choices, `perturbed_text` the same after InferDPT,
    `perturbed_rationale` the teacher's rationale for the perturbed question and `clean_rationale` its
    rationale for the private one (what the decoder learns to recover).
    """
    _check_strings(question_text=question_text, perturbed_text=perturbed_text,
                   perturbed_rationale=perturbed_rationale, clean_rationale=clean_rationale)
    return {
        "encoder_in": render(ENCODER_IN, question=question_text),
        "encoder_out": render(ENCODER_OUT, perturbed_question=perturbed_text),
        "decoder_in": render(DECODER_IN, question=question_text, perturbed_question=perturbed_text,
                             perturbed_rationale=perturbed_rationale),
        "decoder_out": render(DECODER_OUT, rationale=clean_rationale),
    }


def build_distill_fields(question_text: str, answer: str, rationale: str) -> dict:
    """The two distillation tasks of one example: `predict_in` -> `predict_out` (the answer's text) and
    `explain_in` -> `explain_out` (the rationale)."""
    _check_strings(question_text=question_text, answer=answer, rationale=rationale)
    return {
        "predict_in": render(PREDICT_IN, question=question_text),
        "predict_out": render(PREDICT_OUT, answer=answer),
        "explain_in": render(EXPLAIN_IN, question=question_text),
        "explain_out": render(EXPLAIN_OUT, rationale=rationale),
    }


# ---------------------------------------------------------------------------------------------
# Tokenizing: prompt and target separately, so the boundary is exact (no token merges across it).
# ---------------------------------------------------------------------------------------------


def _field_names(tasks: Sequence[str]) -> list[str]:
    return [f"{task}_{side}" for task in tasks for side in ("in", "out")]


class MissingFieldError(KeyError):
    """A KeyError that prints its message as written (a plain KeyError shows the repr of it)."""

    def __str__(self) -> str:
        return str(self.args[0])


def _check_row(row: Any, index: int, tasks: Sequence[str]) -> None:
    expected = _field_names(tasks)
    if not isinstance(row, Mapping):
        raise TypeError(f"row {index} must be a dict with the fields {expected}, got {type(row).__name__}")
    for name in expected:
        if name not in row:
            unexpected = [str(k) for k in row if k not in expected]
            close = difflib.get_close_matches(name, unexpected, n=1)
            hint = f" Is {close[0]!r} a typo of {name!r}?" if close else ""
            raise MissingFieldError(f"row {index} has no field {name!r} (it has {sorted(map(str, row))}); the expected "
                           f"fields are {expected}.{hint}")
        if not isinstance(row[name], str):
            raise TypeError(f"row {index}: field {name!r} must be a str, got {type(row[name]).__name__}")


def _encode(tokenizer: Any, row: Mapping[str, str], task: str) -> tuple[list[int], list[int]]:
    """(prompt ids, target ids) of one task: the prompt with the tokenizer's special tokens (a bos,
    if it adds one), the target without."""
    prompt = tokenizer.encode(row[f"{task}_in"], add_special_tokens=True)
    target = tokenizer.encode(row[f"{task}_out"], add_special_tokens=False)
    return list(prompt), list(target)


def fit_limits(fields: Sequence[Mapping[str, str]], tokenizer: Any, tasks: Sequence[str] = PDSS_TASKS) -> dict:
    """Limits that cut nothing: `{"max_prompt_len": {task: n}, "max_target_len": {task: m}}`, the longest
    prompt and the longest target + 1 (its eos) of each task. Pass them on as `PDSSDataset(rows, tok,
    **fit_limits(rows, tok))`, or cap them and read the dataset's `truncation_rate`."""
    if not fields:
        raise ValueError("fit_limits got no rows to measure.")
    prompt_len, target_len = dict.fromkeys(tasks, 0), dict.fromkeys(tasks, 0)
    for i, row in enumerate(fields):
        _check_row(row, i, tasks)
        for task in tasks:
            prompt, target = _encode(tokenizer, row, task)
            prompt_len[task] = max(prompt_len[task], len(prompt))
            target_len[task] = max(target_len[task], len(target) + 1)
    return {"max_prompt_len": prompt_len, "max_target_len": target_len}


Limit = int | Mapping[str, int] | None


def _per_task(limit: Limit, name: str, tasks: Sequence[str], least: int) -> dict[str, int | None]:
    """A limit for each task, from one int for all, a {task: int} dict, or None (no limit)."""
    limits = dict(limit) if isinstance(limit, Mapping) else dict.fromkeys(tasks, limit)
    if set(limits) != set(tasks):
        raise ValueError(f"{name} must give a limit for exactly the tasks {list(tasks)}, got {sorted(limits)}.")
    for task, value in limits.items():
        if value is not None and (not isinstance(value, int) or value < least):
            raise ValueError(f"{name}[{task!r}] must be an int of at least {least} (or None), got {value!r}.")
    return limits


class PDSSDataset(Dataset):
    """Rows of fields, tokenized per task as `prompt + target + [eos]`.

    An item is `{f"{task}_input_ids": [...], f"{task}_labels": [...]}` for each task of `TASKS`. Labels
    are -100 on the prompt and the token ids on the target and its eos, masked by position: the eos
    stays a label even when it is also the pad token. (Causal LMs shift labels themselves.)

    `max_prompt_len` and `max_target_len` (the target's tokens + its eos) are an int for both tasks, a
    `{task: int}` dict, or None for no limit; `fit_limits` measures limits that cut nothing. A prompt
    over its limit keeps its last tokens; a target keeps its first ones and its eos. Cuts are counted:
    `truncated_prompts` / `truncated_targets` per task, `truncation_rate` / `target_truncation_rate`
    the share of rows with any prompt / target cut, and a warning says how many.

    A row with a target of no tokens (an empty teacher reply, an empty recovered rationale) is dropped:
    its only label would be the eos, so it would teach the model to write nothing. Drops are counted:
    `dropped` holds the indices (in `rows` as given) of the rows left out, `n_dropped` their number,
    a warning says how many, and `rows` holds the rows kept, in order, one per item. With
    `drop_empty=False` such a row raises ValueError instead; so does dropping every row.

    Raises KeyError for a missing field (naming the row, the field, and a near miss such as
    `docoder_in`).
    """

    TASKS: tuple[str, str] = PDSS_TASKS

    def __init__(
        self,
        rows: Sequence[Mapping[str, str]],
        tokenizer: Any,
        max_prompt_len: Limit = None,
        max_target_len: Limit = None,
        drop_empty: bool = True,
    ):
        eos = tokenizer.eos_token_id
        if eos is None:
            raise ValueError("the tokenizer has no eos token; set tokenizer.eos_token, which ends every target.")
        prompt_limits = _per_task(max_prompt_len, "max_prompt_len", self.TASKS, least=1)
        target_limits = _per_task(max_target_len, "max_target_len", self.TASKS, least=2)  # a token + eos
        rows = list(rows)
        self.rows: list[Mapping[str, str]] = []
        self.items: list[dict[str, list[int]]] = []
        self.dropped: list[int] = []  # indices in `rows` of the rows with an empty target
        self.truncated_prompts = dict.fromkeys(self.TASKS, 0)
        self.truncated_targets = dict.fromkeys(self.TASKS, 0)
        cut_prompt_rows, cut_target_rows = set(), set()
        for i, row in enumerate(rows):
            _check_row(row, i, self.TASKS)
            encoded = {task: _encode(tokenizer, row, task) for task in self.TASKS}
            if empty := [task for task, (_, target) in encoded.items() if not target]:
                if not drop_empty:
                    raise ValueError(
                        f"row {i}: {empty[0]}_out {row[f'{empty[0]}_out']!r} has no tokens, so every label but the "
                        "eos would be -100 and the row would train on nothing. Fix the target or drop the row "
                        "(drop_empty=True)."
                    )
                self.dropped.append(i)
                continue
            item = {}
            for task, (prompt, target) in encoded.items():
                limit = prompt_limits[task]
                if limit is not None and len(prompt) > limit:
                    prompt = prompt[-limit:]
                    self.truncated_prompts[task] += 1
                    cut_prompt_rows.add(i)
                limit = target_limits[task]
                if limit is not None and len(target) + 1 > limit:
                    target = target[: limit - 1]
                    self.truncated_targets[task] += 1
                    cut_target_rows.add(i)
                item[f"{task}_input_ids"] = prompt + target + [eos]
                item[f"{task}_labels"] = [IGNORE_INDEX] * len(prompt) + target + [eos]
            self.rows.append(row)
            self.items.append(item)
        self.n_dropped = len(self.dropped)
        if self.n_dropped:
            targets = " or ".join(f"{task}_out" for task in self.TASKS)
            if not self.items:
                raise ValueError(f"{type(self).__name__}: all {len(rows)} rows have an empty target ({targets}); "
                                 "there is nothing to train on. Check where the targets come from (e.g. a teacher "
                                 "reply that starts with a newline is cut to nothing by stop=['\\n']).")
            warnings.warn(f"{type(self).__name__}: dropped {self.n_dropped} of {len(rows)} rows with an empty target "
                          f"({targets}): rows {self.dropped[:10]}{' ...' if self.n_dropped > 10 else ''}.",
                          stacklevel=2)
        n = max(len(self.rows), 1)
        self.truncation_rate = len(cut_prompt_rows) / n
        self.target_truncation_rate = len(cut_target_rows) / n
        if cut_prompt_rows or cut_target_rows:
            warnings.warn(
                f"{type(self).__name__}: {len(cut_prompt_rows)} of {len(self.rows)} rows had a prompt cut "
                f"(per task: {self.truncated_prompts}) and {len(cut_target_rows)} a target cut (per task: "
                f"{self.truncated_targets}). Size the limits with fit_limits(rows, tokenizer) to cut nothing.",
                stacklevel=2,
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.items[index]


class DistillDataset(PDSSDataset):
    """`PDSSDataset` for the distillation tasks: rows from `build_distill_fields`."""

    TASKS = DISTILL_TASKS


# ---------------------------------------------------------------------------------------------
# The collator and the trainer.
# ---------------------------------------------------------------------------------------------


class PDSSCollator:
    """Pads each task of a batch on its own, to its own longest item, on the right: input ids with
    `pad_token_id`, labels with -100. Returns `{task}_input_ids`, `{task}_attention_mask` (1 on real
    tokens) and `{task}_labels` tensors for each task of `TASKS`."""

    TASKS: tuple[str, str] = PDSS_TASKS

    def __init__(self, pad_token_id: int):
        if pad_token_id is None:
            raise ValueError("pad_token_id is None; pass tokenizer.pad_token_id or, without one, the eos id.")
        self.pad_token_id = pad_token_id

    def __call__(self, batch: Sequence[Mapping[str, Sequence[int]]]) -> dict[str, torch.Tensor]:
        if not batch:
            raise ValueError(f"{type(self).__name__} got an empty batch.")
        out = {}
        for task in self.TASKS:
            keys = (f"{task}_input_ids", f"{task}_labels")
            if any(k not in item for item in batch for k in keys):
                raise MissingFieldError(f"{type(self).__name__} needs {list(keys)} in every item (tasks {self.TASKS}); "
                               f"the first item has {sorted(batch[0])}.")
            width = max(len(item[keys[0]]) for item in batch)
            ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
            labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, item in enumerate(batch):
                n = len(item[keys[0]])
                if len(item[keys[1]]) != n:
                    raise ValueError(f"item {row}: {keys[0]} and {keys[1]} differ in length.")
                ids[row, :n] = torch.tensor(item[keys[0]], dtype=torch.long)
                labels[row, :n] = torch.tensor(item[keys[1]], dtype=torch.long)
                mask[row, :n] = 1
            out.update({keys[0]: ids, f"{task}_attention_mask": mask, keys[1]: labels})
        return out


class DistillCollator(PDSSCollator):
    """`PDSSCollator` for the distillation tasks."""

    TASKS = DISTILL_TASKS


class LogLastStep(TrainerCallback):
    """Logs the last training step too (with step-wise logging), so that a run of fewer steps than
    `logging_steps`, or one whose step count `logging_steps` does not divide, still logs its final loss."""

    def on_step_end(self, args, state, control, **kwargs):
        if args.logging_strategy == IntervalStrategy.STEPS and state.global_step >= state.max_steps:
            control.should_log = True
        return control


class PDSSTrainer(Trainer):
    """A transformers `Trainer` whose loss is `alpha * L_first + (1 - alpha) * L_second` over the two
    tasks of `TASKS` (encoder and decoder), each the model's mean cross-entropy over its non-masked
    labels. The two parts are logged beside the loss, as `{task}_loss`, averaged since the last log.

    Needs `TrainingArguments(remove_unused_columns=False)`: Trainer would otherwise drop the batch's
    keys, which the model's forward does not take. Without a `data_collator` it uses the matching
    collator with `processing_class`'s pad id (or its eos id). The loss is a per-batch mean, so
    `num_items_in_batch` is not used (Trainer passes None here, since no batch key is "labels") and
    Trainer scales the loss for gradient accumulation itself.

    The last step is always logged (`LogLastStep`), and `loss_history()` lists the logged training
    losses: at least one row for any run of at least one step, whatever `logging_steps` is.
    """

    TASKS: tuple[str, str] = PDSS_TASKS
    collator_class: type[PDSSCollator] = PDSSCollator
    loss_is_scaled_for_ga = False  # a mean per micro-batch: Trainer divides by the accumulation steps

    def __init__(self, model=None, args=None, data_collator=None, *, alpha: float = 0.5, **kwargs):
        self.alpha = alpha
        if args is None or args.remove_unused_columns:
            raise ValueError(
                f"{type(self).__name__} needs TrainingArguments(..., remove_unused_columns=False): its batches "
                f"hold {self.TASKS[0]}_* and {self.TASKS[1]}_* tensors, which the model's forward does not take, "
                "so Trainer would drop them."
            )
        if data_collator is None:
            tokenizer = kwargs.get("processing_class")
            if tokenizer is None:
                raise ValueError(f"pass data_collator={self.collator_class.__name__}(pad_token_id) or a "
                                 "processing_class (the tokenizer) to build it from.")
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            data_collator = self.collator_class(pad)
        self._part_sums = dict.fromkeys(self.TASKS, 0.0)
        self._part_count = 0
        super().__init__(model=model, args=args, data_collator=data_collator, **kwargs)
        self.add_callback(LogLastStep)

    def loss_history(self) -> pd.DataFrame:
        """The logged training losses, one row per log (`llmtut.training.loss_history`: step, epoch, loss),
        with a `{task}_loss` column for each task (NaN for a task that was not run, at weight 0)."""
        table = loss_history(self.state.log_history)
        logs = [h for h in self.state.log_history if "loss" in h]
        for task in self.TASKS:
            table[f"{task}_loss"] = [h.get(f"{task}_loss", math.nan) for h in logs]
        return table

    @property
    def alpha(self) -> float:
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
            raise ValueError(f"alpha weighs the {self.TASKS[0]} loss against the {self.TASKS[1]} loss and must "
                             f"be a number in [0, 1], got {value!r}.")
        self._alpha = float(value)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = {}
        weights = dict(zip(self.TASKS, (self.alpha, 1 - self.alpha), strict=True))
        for task in self.TASKS:
            keys = [f"{task}_input_ids", f"{task}_attention_mask", f"{task}_labels"]
            if missing := [k for k in keys if k not in inputs]:
                raise MissingFieldError(f"the batch has no {missing} (it has {sorted(inputs)}): collate it with "
                               f"{self.collator_class.__name__} and set remove_unused_columns=False.")
            if weights[task] == 0 and model.training:
                continue  # a task of weight 0 adds nothing to the loss or its gradient: skip its forward pass
            outputs[task] = model(input_ids=inputs[keys[0]], attention_mask=inputs[keys[1]], labels=inputs[keys[2]])
        loss = sum(weights[task] * out.loss for task, out in outputs.items())
        if model.training:
            for task, out in outputs.items():
                self._part_sums[task] += out.loss.detach()
            self._part_count += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._part_count:
            for task in self.TASKS:
                if not isinstance(self._part_sums[task], float):  # a task skipped at weight 0 has no loss to log
                    logs[f"{task}_loss"] = float(self._part_sums[task]) / self._part_count
            self._part_sums = dict.fromkeys(self.TASKS, 0.0)
            self._part_count = 0
        super().log(logs, start_time)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Evaluation reports the combined loss only (there is no single "labels" tensor to return)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None


class DistillTrainer(PDSSTrainer):
    """`PDSSTrainer` for the distillation tasks: `alpha * L_predict + (1 - alpha) * L_explain`.
    At alpha = 1 it trains on the labels only (the baseline), the explain loss still logged."""

    TASKS = DISTILL_TASKS
    collator_class = DistillCollator
