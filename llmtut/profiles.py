"""Profiles: the same chapter runs on the real Hub models and data (`hub`) or on the offline tiny world (`tiny`).

This is the one module that knows the two apart. It maps each model role to a Hub id (`hub`) or to a
build of `llmtut.world` (`tiny`), and loads each chapter's data: the source's instruction JSON,
knkarthick/dialogsum and ARC-Easy in `hub`, the tiny world's records in the same layout in `tiny`.
The lessons never import `llmtut.world`; they ask here. There is no silent fallback: when `hub`
cannot reach the Hub, `HubUnavailableError` says so and names `tiny`.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from llmtut.formats import Record
from llmtut.instructions import load_records, write_records
from llmtut.precision import precision_for
from llmtut.world import bases, detox_models, dialogues, pdss_models, tasks, words
from llmtut.world.cache import world_card as _world_card

PROFILES = ("hub", "tiny")


@dataclass(frozen=True)
class Role:
    """A model a chapter needs, named by what it is for: a Hub id in `hub`, a tiny-world build in `tiny`."""

    hub: str
    tiny: Callable[[], Path]


ROLES: dict[str, Role] = {
    # The causal base model of the masking chapters (02-04), as in the source material.
    "masking_base": Role(hub="bigscience/bloom-560m", tiny=bases.causal_base),
    # The base model of the instruction chapter (01), as in the source's reference course.
    "instruction_base": Role(hub="openai-community/gpt2-medium", tiny=bases.gpt2_base),
    # The detox chapter (05): a seq2seq summarizer, the hate-speech classifier that rewards it, and a
    # causal summarizer for trl's GRPO (which takes causal models only).
    "summarizer": Role(hub="google/flan-t5-base", tiny=detox_models.summarizer),
    "toxicity_classifier": Role(hub="facebook/roberta-hate-speech-dynabench-r4-target",
                                tiny=detox_models.toxicity_classifier),
    "causal_summarizer": Role(hub="Qwen/Qwen2.5-0.5B-Instruct", tiny=detox_models.causal_summarizer),
    # The distillation chapter (06): the small LM that PDSS trains, and the teacher behind the remote API.
    "pdss_student": Role(hub="Qwen/Qwen2.5-0.5B", tiny=pdss_models.student),
    "pdss_teacher": Role(hub="Qwen/Qwen2.5-1.5B-Instruct", tiny=pdss_models.teacher),
}


class HubUnavailableError(RuntimeError):
    """The `hub` profile could not load a model or data set from the Hugging Face Hub (or the source's URL)."""


def hub_unavailable(what: str, err: BaseException) -> HubUnavailableError:
    """The one error for a Hub download that failed: what could not be loaded, why, and how to run offline."""
    return HubUnavailableError(
        f"Could not load {what} ({type(err).__name__}: {err}). Check your network or HF_TOKEN, or run this "
        "chapter offline with PROFILE = 'tiny' (papermill: -p PROFILE tiny; or set LLMTUT_PROFILE=tiny)."
    )


def default_profile() -> str:
    """`$LLMTUT_PROFILE` if set, else `hub` (what a learner in Colab runs)."""
    return check_profile(os.environ.get("LLMTUT_PROFILE", "hub"))


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"PROFILE must be one of {PROFILES}, got {profile!r}.")
    return profile


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


def resolve(role: str, profile: str) -> str:
    """The Hub id (`hub`) or the local folder (`tiny`, built on first use) behind a role."""
    if role not in ROLES:
        raise KeyError(f"Unknown model role {role!r}; known roles: {sorted(ROLES)}.")
    if check_profile(profile) == "hub":
        return ROLES[role].hub
    return str(ROLES[role].tiny())


def world_card(role: str, profile: str) -> dict | None:
    """What the tiny world recorded when it built `role`'s model (size, losses, build time); None in `hub`."""
    return _world_card(resolve(role, profile)) if check_profile(profile) == "tiny" else None


def load_pretrained(
    role: str, profile: str, model_class: type = AutoModelForCausalLM, device: str = "cpu", **model_kwargs
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) for `role` in `profile` with `model_class` (an `AutoModel...` class), the model
    in eval mode on `device`.

    The weights load in fp32 (`llmtut.precision`: the book trains what it loads), whatever dtype the
    checkpoint has: transformers 5 would keep bloom-560m's fp16 and Qwen2.5's bf16. Pass `dtype` to
    choose another.

    No silent fallback: when the Hub cannot be reached in `hub`, this raises and names `tiny`.
    """
    name = resolve(role, profile)
    model_kwargs = {**precision_for(device).load_kwargs(trains=True), **model_kwargs}
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = model_class.from_pretrained(name, **model_kwargs)
    except OSError as err:
        if profile != "hub":
            raise
        raise hub_unavailable(f"{name!r} from the Hugging Face Hub", err) from err
    return model.to(device).eval(), tokenizer


def load_causal_lm(
    role: str, profile: str, device: str = "cpu", pad_with_eos: bool = False, **model_kwargs
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) for `role` in `profile`, the model in eval mode on `device`.

    `pad_with_eos` makes the end-of-text token the pad token, for tokenizers that have none (GPT-2),
    as the source does; without it such a tokenizer is refused with that fix in the message.

    No silent fallback: when the Hub cannot be reached in `hub`, this raises and names `tiny`.
    """
    model, tokenizer = load_pretrained(role, profile, AutoModelForCausalLM, device, **model_kwargs)
    if pad_with_eos:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.pad_token is None:
        raise ValueError(
            f"The tokenizer of {resolve(role, profile)!r} has no pad token, so batches cannot be padded. "
            "Set one before training, e.g. tokenizer.pad_token = tokenizer.eos_token (or pass pad_with_eos=True)."
        )
    return model, tokenizer


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

# The source's instruction data (rasbt/LLMs-from-scratch ch07): 1100 records in one JSON list.
INSTRUCTION_DATA_URL = (
    "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch07/01_main-chapter-code/instruction-data.json"
)


def download_instruction_data(path: str | Path, url: str = INSTRUCTION_DATA_URL, timeout: float = 30) -> list[Record]:
    """The `hub` profile's instruction data: download `url` to `path` unless it is there already, then load it.

    A network failure raises HubUnavailableError naming the URL and the `tiny` profile. The file is
    written only once fully downloaded, so a failed download leaves no partial file to be trusted.
    """
    path = Path(path)
    if not path.exists():
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                text = response.read().decode("utf-8")
        except OSError as err:  # URLError, HTTPError, refused connections and timeouts all are
            raise hub_unavailable(f"the instruction data from {url}", err) from err
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return load_records(path)


def load_instruction_data(path: str | Path, profile: str, n: int = 1100, seed: int = 0) -> list[Record]:
    """Chapter 01's records in `profile`: the source's file (`hub`), or `n` tiny-world records written
    to `path` and loaded back the same way (`tiny`)."""
    if check_profile(profile) == "hub":
        return download_instruction_data(path)
    write_records(tasks.tiny_instruction_records(n, seed), path)
    return load_records(path)


def instruction_tasks(profile: str, n: int = 1100, seed: int = 0) -> list[Record]:
    """The `tiny` profile's records of `load_instruction_data(..., n, seed)`, each with its task under
    "task" (spelling, plural, ...), for tables of the mix; `hub` records name no task, so [] there."""
    return tasks.tiny_instruction_records(n, seed, with_task=True) if check_profile(profile) == "tiny" else []


def word_pairs() -> dict[str, str]:
    """English -> Spanish word pairs: the vocabulary of the masking chapters' translation task, the same
    list in both profiles (the tiny models learned these words in pretraining; bloom-560m knows them)."""
    return dict(words.WORD_PAIRS)


DIALOGUE_DATASET = "knkarthick/dialogsum"
MIN_CHARS, MAX_CHARS = 200, 1000  # the source keeps dialogues of 200 < len <= 1000 characters


def load_dialogue_dataset(profile: str) -> DatasetDict:
    """Chapter 05's `train` and `test` splits with `dialogue` and `summary` columns (tiny: also `topic`,
    `rude`, `toxic_summary`).

    `hub`: knkarthick/dialogsum with the source's length filter. Its test split holds each dialogue once
    per reference summary (three rows of the same text), so the test rows are grouped into distinct
    dialogues (`distinct_dialogues`): `summary` is the first reference and `references` all of them.
    """
    if check_profile(profile) == "tiny":
        return DatasetDict({split: Dataset.from_list([vars(d) for d in rows])
                            for split, rows in detox_models.dialogue_splits().items()})
    try:
        data = load_dataset(DIALOGUE_DATASET)
    except (OSError, ConnectionError) as err:
        raise hub_unavailable(f"{DIALOGUE_DATASET!r} from the Hugging Face Hub", err) from err

    def keep(row: dict) -> bool:
        return MIN_CHARS < len(row["dialogue"]) <= MAX_CHARS

    return DatasetDict({"train": data["train"].filter(keep), "test": distinct_dialogues(data["test"].filter(keep))})


def distinct_dialogues(rows: Dataset) -> Dataset:
    """One row per distinct `dialogue` (first-seen order, the first row's other columns), with every
    `summary` of that dialogue in a `references` list: rows of one dialogue are not independent samples."""
    first: dict[str, int] = {}
    references: dict[str, list[str]] = {}
    for i, (dialogue, summary) in enumerate(zip(rows["dialogue"], rows["summary"], strict=True)):
        first.setdefault(dialogue, i)
        references.setdefault(dialogue, []).append(summary)
    grouped = rows.select(list(first.values()))
    return grouped.add_column("references", [references[d] for d in grouped["dialogue"]])


def toxicity_sentences(n: int, seed: int) -> list[tuple[str, int]]:
    """`n` labelled sentences, (text, 1) toxic or (text, 0) neutral, to measure a toxicity classifier.

    The tiny world's sentences in both profiles: the Hub has no labelled set in the dialogues' style.
    """
    return dialogues.toxicity_sentences(n, seed)


ARC_DATASET, ARC_CONFIG, ARC_SPLIT = "allenai/ai2_arc", "ARC-Easy", "train[:50%]"  # as the source


def load_science_questions(profile: str, seed: int) -> list[dict]:
    """Chapter 06's ARC-style records (`question`, `choices` with `text` and `label`, `answerKey`).

    `hub`: the source's first half of ARC-Easy's training split, shuffled with `seed`. `tiny`: the tiny
    world's questions in a fixed order, each also with the `fact` it asks about and the teacher's
    `rationale`.
    """
    if check_profile(profile) == "tiny":
        return pdss_models.questions()
    try:
        arc = load_dataset(ARC_DATASET, ARC_CONFIG, split=ARC_SPLIT)
    except (OSError, ConnectionError) as err:
        raise hub_unavailable(f"{ARC_DATASET!r} ({ARC_CONFIG}) from the Hugging Face Hub", err) from err
    return [dict(r) for r in arc.shuffle(seed=seed)]
