"""The task of the masking chapters (02-04): five English words to say in Spanish, one held out.

Each example is one exchange in the source material's chat format (`llmtut.formats.chat_turn`): an
end-of-sequence token before `### Human:`, the question, `### Assistant:`, a beginning-of-sequence
token that marks where the answer starts, the answer, and end-of-sequence. Every method of the three
chapters trains a fresh copy of the base with the same LoRA adapter (`fresh_lora_model`) until it
answers the five exactly (`llmtut.training.learn_fresh`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from peft import PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llmtut.formats import ASSISTANT, HUMAN
from llmtut.training import with_lora

TRAIN_WORDS = {"dog": "perro", "water": "agua", "mother": "madre", "hello": "hola", "tree": "árbol"}
HOLDOUT = ("good", "bueno")  # never trained on, only asked
LORA_TARGETS = ("query_key_value",)  # bloom's fused attention projection


def question(en: str) -> str:
    """The human's question for the English word `en`."""
    return f'How do you say "{en}" in Spanish?'


def prompt_text(tokenizer: PreTrainedTokenizerBase, en: str) -> str:
    """What the model completes: eos, the human turn, `### Assistant:` and bos."""
    return (
        f"{tokenizer.eos_token}{HUMAN} {question(en)}{ASSISTANT}"
        f"{tokenizer.bos_token}"
    )


def example_text(tokenizer: PreTrainedTokenizerBase, en: str, es: str) -> str:
    """A training example: the prompt, a space, the answer `es` and the closing eos."""
    return f"{prompt_text(tokenizer, en)} {es}{tokenizer.eos_token}"


def fresh_lora_model(load_base: Callable[[], PreTrainedModel], seed: int, lora_r: int) -> PeftModel:
    """A fresh base model (`load_base()`, after seeding torch with `seed`) with a LoRA adapter of rank
    `lora_r` on the attention projections: the starting point of every method compared."""
    torch.manual_seed(seed)
    return with_lora(load_base(), lora_r, list(LORA_TARGETS))
