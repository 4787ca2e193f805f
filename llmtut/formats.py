"""The text formats the chapters teach and the tiny world writes, in one place.

Both sides import this module: the lessons (to build prompts, masks and answers) and `llmtut.world`
(to write corpora in the same formats). So a format is defined once, and a change to it reaches the
world's cache keys (`llmtut.world.cache`) as well as the chapters.

- instruction records in the Alpaca and Phi-3 prompt styles, and as chat messages (chapters 01, 07);
- the `### Human:` / `### Assistant:` turns of the masking chapters (02-04);
- the summary prompt of the detox chapter (05);
- the ARC question and answer texts, the teacher's answer cue and answer parsing (chapter 06);
- `IGNORE_INDEX`, the label that training skips.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

IGNORE_INDEX = -100  # the label value torch's cross-entropy (and so every HF model) skips

# ---------------------------------------------------------------------------------------------
# Instruction records. A record is {"instruction": str, "input": str, "output": str} (input may be "").
# `format_*(record)` is the prompt (what the model is given at inference);
# `format_*(record, with_response=True)` appends the response header and the output (training text).
# ---------------------------------------------------------------------------------------------

Record = dict[str, str]

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
# What separates prompt and output, per style; strip it from generated text to get the answer.
RESPONSE_HEADERS = {"alpaca": "\n\n### Response:\n", "phi3": "\n<|assistant|>\n"}


def format_alpaca(record: Record, with_response: bool = False) -> str:
    """The source's Alpaca prompt; "### Input:" appears only when the input is not empty."""
    text = f"{ALPACA_PREAMBLE}\n\n### Instruction:\n{record['instruction']}"
    if record["input"]:
        text += f"\n\n### Input:\n{record['input']}"
    if with_response:
        text += RESPONSE_HEADERS["alpaca"] + record["output"]
    return text


def format_phi3(record: Record, with_response: bool = False) -> str:
    """Phi-3's chat format: "<|user|>\\n{instruction}[\\n{input}]<|end|>" then "\\n<|assistant|>\\n{output}".

    The source's exercise 7.1 writes "<|user|>\\n{instruction}\\n{input}\\n<|assistant|>:\\n{output}".
    We follow Phi-3's own template instead: "<|end|>" closes the user turn and "<|assistant|>" has no
    colon. The assistant turn is closed by the end-of-text token that `collate` appends (as in the
    Alpaca style), not by a second "<|end|>".
    """
    text = f"<|user|>\n{record['instruction']}"
    if record["input"]:
        text += f"\n{record['input']}"
    text += "<|end|>"
    if with_response:
        text += RESPONSE_HEADERS["phi3"] + record["output"]
    return text


def to_messages(record: Record) -> list[dict[str, str]]:
    """The record as a chat (for `tokenizer.apply_chat_template`): the user says the instruction
    and, on the next line, the input (as in `format_phi3`); the assistant answers with the output."""
    user = record["instruction"] + (f"\n{record['input']}" if record["input"] else "")
    return [{"role": "user", "content": user}, {"role": "assistant", "content": record["output"]}]


Formatter = Callable[..., str]
PROMPT_STYLES: dict[str, Formatter] = {"alpaca": format_alpaca, "phi3": format_phi3}

# ---------------------------------------------------------------------------------------------
# Chat turns of the masking chapters, in the source material's format.
# ---------------------------------------------------------------------------------------------

HUMAN = "\n\n### Human:"
ASSISTANT = "\n\n### Assistant:"


def chat_turn(question: str, answer: str, bos: str = "", eos: str = "") -> str:
    """One human/assistant exchange: eos before the human turn, bos right after `### Assistant:`."""
    return f"{eos}{HUMAN} {question}{ASSISTANT}{bos} {answer}"


# ---------------------------------------------------------------------------------------------
# The summary prompt of the detox chapter (the source's, for knkarthick/dialogsum).
# ---------------------------------------------------------------------------------------------

SUMMARY_PROMPT = "Summarize the following conversation.\n\n{dialogue}\n\nSummary:"


def summary_prompt(dialogue: str) -> str:
    """The prompt a summarizer completes for `dialogue`."""
    return SUMMARY_PROMPT.format(dialogue=dialogue)


# ---------------------------------------------------------------------------------------------
# ARC-style multiple-choice questions (chapter 06): the question text, the answer, the teacher's cue.
# ---------------------------------------------------------------------------------------------

ANSWER_CUE = "Answer:"
# "So the answer is X." ends a rationale; the source's style "the answer is 'X'" parses too. The answer
# runs to the end of its line: ARC answers are often whole sentences, with periods of their own.
ANSWER_PATTERN = re.compile(r"the answer is:?[ \t]*(.*)", re.IGNORECASE)
QUOTES = {"'": "'", '"': '"', "\u2018": "\u2019", "\u201c": "\u201d"}


def format_question(record: Mapping[str, Any]) -> str:
    """An ARC record as "Question: ...\\nChoices:\\nA. ...\\n...", with the record's own labels."""
    choices = record["choices"]
    lines = [f"Question: {record['question']}", "Choices:"]
    lines += [f"{label}. {text}" for label, text in zip(choices["label"], choices["text"], strict=True)]
    return "\n".join(lines) + "\n"


def answer_text(record: Mapping[str, Any]) -> str:
    """The text of the choice that the answer key names."""
    choices = record["choices"]
    return choices["text"][list(choices["label"]).index(record["answerKey"])]


def teacher_prompt(record: Mapping[str, Any]) -> str:
    """The prompt a teacher completes with a rationale: the question and its choices, then the answer cue."""
    return format_question(record) + ANSWER_CUE


def parse_answer(completion: str) -> str | None:
    """The answer a rationale ends with, or None if it has none: the rest of the line after its last
    "the answer is", without the sentence's final period and without quotes around it.

    "... So the answer is lever." -> "lever"; "the answer is 'a plant's leaves'." -> "a plant's leaves";
    "So the answer is It melts.." -> "It melts" (compare with `same_answer`, which ignores final periods).
    """
    found = list(ANSWER_PATTERN.finditer(completion))
    if not found:
        return None
    answer = found[-1].group(1).strip()
    while True:  # peel off final periods and quotes, in any order: 'x'. or "x." or x.
        bare = answer.rstrip(".").strip()
        if len(bare) >= 2 and QUOTES.get(bare[0]) == bare[-1]:
            bare = bare[1:-1].strip()
        if bare == answer:
            return answer or None
        answer = bare


def same_answer(parsed: str | None, answer: str) -> bool:
    """Whether a parsed answer is `answer` (a choice's text), ignoring case and final periods."""
    return parsed is not None and parsed.casefold() == answer.rstrip(".").strip().casefold()


def is_correct(completion: str, record: Mapping[str, Any]) -> bool:
    """Whether a rationale ends with the answer that `record`'s answer key names."""
    return same_answer(parse_answer(completion), answer_text(record))
