"""Profiles: the same chapter runs on the real Hub models (`hub`) or on the offline tiny world (`tiny`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from llmtut import tiny, tiny_detox, tiny_pdss

PROFILES = ("hub", "tiny")


@dataclass(frozen=True)
class Role:
    """A model a chapter needs, named by what it is for: a Hub id in `hub`, a tiny-world build in `tiny`."""

    hub: str
    tiny: Callable[[], Path]


ROLES: dict[str, Role] = {
    # The causal base model of the masking chapters (02-04), as in the source material.
    "masking_base": Role(hub="bigscience/bloom-560m", tiny=tiny.causal_base),
    # The base model of the instruction chapter (01), as in the source's reference course.
    "instruction_base": Role(hub="openai-community/gpt2-medium", tiny=tiny.gpt2_base),
    # The detox chapter (05): a seq2seq summarizer, the hate-speech classifier that rewards it, and a
    # causal summarizer for trl's GRPO (which takes causal models only).
    "summarizer": Role(hub="google/flan-t5-base", tiny=tiny_detox.summarizer),
    "toxicity_classifier": Role(hub="facebook/roberta-hate-speech-dynabench-r4-target",
                                tiny=tiny_detox.toxicity_classifier),
    "causal_summarizer": Role(hub="Qwen/Qwen2.5-0.5B-Instruct", tiny=tiny_detox.causal_summarizer),
    # The distillation chapter (06): the small LM that PDSS trains, and the teacher behind the remote API.
    "pdss_student": Role(hub="Qwen/Qwen2.5-0.5B", tiny=tiny_pdss.student),
    "pdss_teacher": Role(hub="Qwen/Qwen2.5-1.5B-Instruct", tiny=tiny_pdss.teacher),
}


class HubUnavailableError(RuntimeError):
    """The `hub` profile could not load a model from the Hugging Face Hub."""


def default_profile() -> str:
    """`$LLMTUT_PROFILE` if set, else `hub` (what a learner in Colab runs)."""
    return check_profile(os.environ.get("LLMTUT_PROFILE", "hub"))


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"PROFILE must be one of {PROFILES}, got {profile!r}.")
    return profile


def resolve(role: str, profile: str) -> str:
    """The Hub id (`hub`) or the local folder (`tiny`, built on first use) behind a role."""
    if role not in ROLES:
        raise KeyError(f"Unknown model role {role!r}; known roles: {sorted(ROLES)}.")
    if check_profile(profile) == "hub":
        return ROLES[role].hub
    return str(ROLES[role].tiny())


def load_pretrained(
    role: str, profile: str, model_class: type = AutoModelForCausalLM, device: str = "cpu", **model_kwargs
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) for `role` in `profile` with `model_class` (an `AutoModel...` class), the model
    in eval mode on `device`.

    No silent fallback: when the Hub cannot be reached in `hub`, this raises and names `tiny`.
    """
    name = resolve(role, profile)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = model_class.from_pretrained(name, **model_kwargs)
    except OSError as err:
        if profile != "hub":
            raise
        raise HubUnavailableError(
            f"Could not load {name!r} from the Hugging Face Hub ({type(err).__name__}: {err}). "
            "Check your network or HF_TOKEN, or run this chapter offline with PROFILE = 'tiny' "
            "(papermill: -p PROFILE tiny; or set LLMTUT_PROFILE=tiny)."
        ) from err
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
