"""Scoring a model's answers 0-100 against reference answers: with a judge LLM, or a reference-based stand-in.

Chapter 01 scores the fine-tuned model's test-set answers the way rasbt's LLMs-from-scratch ch07 does:
a larger instruct model, reached over an OpenAI-compatible chat API (`transformers serve`, vLLM,
Ollama, OpenAI itself), reads the prompt, the reference answer and the model's answer, and replies
with an integer from 0 to 100. `JudgeClient` asks it; `ReferenceScorer` is the deterministic
stand-in the tiny profile uses, because no tiny model can judge. `score_responses` runs either over
a test set and keeps every finished score in a JSONL file, so an interrupted run resumes where it
stopped.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tqdm.auto import tqdm

from llmtut.jsonl import complete_lines
from llmtut.llm_server import LLMServer, LLMServerError, LLMServerUnreachableError

# rasbt's ch07 prompt, word for word apart from the placeholders.
JUDGE_PROMPT = (
    "Given the input `{prompt}` and correct output `{reference}`, "
    "score the model response `{response}` on a scale from 0 to 100, where 100 is the best score. "
    "Respond with the integer only."
)
# Sent after a reply that is not a score. At temperature 0 the same request would get the same
# reply, so a retry continues the conversation instead of repeating it.
RETRY_PROMPT = "That reply was not an integer from 0 to 100. Respond with the integer only."

# An integer, optionally "Score:"-prefixed and "/100"-suffixed, optionally ending in a period.
_SCORE = re.compile(r"(?:score\s*[:=]?\s*)?(\d{1,3})(?:\s*/\s*100)?\.?", re.IGNORECASE)


def parse_score(reply: str | None) -> int | None:
    """The score in a judge's `reply`, or None if the reply is not one.

    Accepted, with any surrounding whitespace: a bare integer from 0 to 100 ("85"), with a trailing
    period ("85."), a "Score:" prefix ("Score: 85", case-insensitive) or an out-of-100 suffix
    ("85/100"). Everything else is refused rather than guessed at: out-of-range numbers ("101",
    "-3"), decimals ("85.5"), words ("eighty"), prose around the number ("I'd say 85"), markdown
    ("**85**"), several numbers ("85 or 90") and empty replies.
    """
    if reply is None:
        return None
    match = _SCORE.fullmatch(reply.strip())
    if match is None:
        return None
    value = int(match.group(1))
    return value if value <= 100 else None


@dataclass(frozen=True)
class Score:
    """One scored response: `value` is None when the judge never gave a parsable score."""

    value: int | None
    replies: tuple[str, ...] = ()  # every raw reply of a judge, in order (empty for a ReferenceScorer)


class Scorer(Protocol):
    """What `score_responses` needs: a name (stored with each score) and a score method."""

    name: str

    def score(self, prompt: str, reference: str, response: str) -> Score: ...


# ----- the reference-based stand-in -----

_TRAILING_PUNCTUATION = ".,;:!?\"'"


def normalize_answer(text: str) -> str:
    """Runs of whitespace as one space, no surrounding whitespace or trailing punctuation.

    Case is kept: "the soup." and "The soup" differ, since a task may be about case alone
    (capitalize a sentence, write it in upper case).
    """
    return " ".join(text.split()).rstrip(_TRAILING_PUNCTUATION).strip()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style F1 of the word tokens (punctuation dropped, case kept) of two answers."""
    pred, ref = re.findall(r"\w+", prediction), re.findall(r"\w+", reference)
    if not pred or not ref:
        return float(pred == ref)
    overlap = sum((Counter(pred) & Counter(ref)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


class ReferenceScorer:
    """A deterministic 0-100 score from word overlap with the reference. NOT a judge.

    100 for an exact match after `normalize_answer` (whitespace and trailing punctuation; case
    counts), otherwise round(100 x `token_f1`), whose tokens must match in case too: "soup" and
    "Soup" are different words. It never reads the prompt and knows nothing of meaning: a
    correct paraphrase scores low and a fluent answer that shares words with the reference scores
    high. The tiny profile uses it because no tiny model can judge; the hub profile asks a real judge
    LLM (`JudgeClient`) through the same interface.
    """

    # "-cased": its scores differ from those of the earlier, case-blind version, and a scores
    # file keeps the scorer's name, so an old file is refused rather than mixed in
    name = "reference-f1-cased"

    def score(self, prompt: str, reference: str, response: str) -> Score:
        if normalize_answer(response) == normalize_answer(reference):
            return Score(100)
        return Score(round(100 * token_f1(response, reference)))


# ----- the judge LLM -----


# The errors of the client core, under the judge's names.
JudgeError = LLMServerError
JudgeUnreachableError = LLMServerUnreachableError


def judge_prompt(prompt: str, reference: str, response: str) -> str:
    """The message the judge reads (`JUDGE_PROMPT` filled in)."""
    return JUDGE_PROMPT.format(prompt=prompt, reference=reference, response=response)


class JudgeClient:
    """Scores responses 0-100 by asking a judge LLM behind an OpenAI-compatible chat API.

    Each request is deterministic (temperature 0 and a fixed `seed`) and short (`max_tokens`).
    A reply that `parse_score` refuses is answered with `RETRY_PROMPT` in the same conversation, up
    to `max_attempts` replies in all; after that the score is None and every raw reply is kept in
    the `Score`, so `score_responses` can report it. `max_retries` is how often a transient failure
    (connection error, timeout, 429, 5xx) is retried (`llmtut.llm_server`), kept low so a wrong
    `base_url` fails fast.

    Serve a judge locally with e.g. `transformers serve Qwen/Qwen2.5-3B-Instruct --port 8000`, or from
    Python with `llmtut.serve.served(...)` as chapter 01 does, and pass the model name it serves.
    """

    def __init__(
        self,
        model: str,
        base_url: str = "http://localhost:8000/v1",
        api_key: str | None = None,
        *,
        max_attempts: int = 3,
        max_tokens: int = 16,
        seed: int = 123,
        timeout: float = 120.0,
        max_retries: int = 1,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}.")
        self.model, self.base_url = model, base_url
        self.max_attempts, self.max_tokens, self.seed = max_attempts, max_tokens, seed
        self.name = f"judge:{model}"
        self.server = LLMServer(model, base_url, api_key, timeout_s=timeout, max_retries=max_retries,
                                endpoint="/v1/chat/completions",
                                offline_hint="In the tiny profile use ReferenceScorer instead.")

    def complete(self, messages: list[dict]) -> str:
        """The judge's reply to `messages` ("" if it sent no text), or a JudgeError that says what to fix."""
        completion = self.server.call(
            lambda client: client.chat.completions.create(
                model=self.model, messages=messages, temperature=0, seed=self.seed, max_tokens=self.max_tokens
            )
        )
        return completion.choices[0].message.content or ""

    def score(self, prompt: str, reference: str, response: str) -> Score:
        """Ask for a score, retrying unparsable replies; Score(None, replies) after max_attempts."""
        messages = [{"role": "user", "content": judge_prompt(prompt, reference, response)}]
        replies: list[str] = []
        for _ in range(self.max_attempts):
            reply = self.complete(messages)
            replies.append(reply)
            value = parse_score(reply)
            if value is not None:
                return Score(value, tuple(replies))
            messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": RETRY_PROMPT}]
        return Score(None, tuple(replies))


# ----- scoring a test set, resumably -----


class StaleScoresError(ValueError):
    """A scores file was written for other records or by another scorer."""


def plain_input(entry: dict) -> str:
    """The instruction, and the input below it if there is one: the default prompt shown to a judge.

    Pass the chapter's prompt formatter (e.g. `llmtut.instructions.format_alpaca`) to
    `score_responses` instead, so the judge sees exactly what the model saw.
    """
    return entry["instruction"] + (f"\n\n{entry['input']}" if entry.get("input") else "")


def record_key(entry: dict, response_key: str = "model_response") -> str:
    """A short hash of what a score depends on (instruction, input, reference, response)."""
    fields = [entry["instruction"], entry.get("input", ""), entry["output"], entry[response_key]]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


@dataclass
class ScoreReport:
    """The scores of a test set, aligned with its entries (None = the judge gave no parsable score)."""

    scores: list[int | None]
    unparsed: list[dict] = field(default_factory=list)  # {"index": i, "replies": [...]} per None score
    n_resumed: int = 0  # scores read back from the file rather than requested in this run

    @property
    def n_unparsed(self) -> int:
        return sum(s is None for s in self.scores)

    @property
    def mean(self) -> float | None:
        """Mean over the parsed scores only (None if there are none): an unparsed score is not a 0."""
        parsed = [s for s in self.scores if s is not None]
        return sum(parsed) / len(parsed) if parsed else None

    def summary(self) -> dict:
        return {
            "n": len(self.scores),
            "n_parsed": len(self.scores) - self.n_unparsed,
            "n_unparsed": self.n_unparsed,
            "mean": self.mean,
            "n_resumed": self.n_resumed,
        }


def _read_done(path: Path, keys: list[str], scorer_name: str) -> dict[int, dict]:
    """The finished lines of a scores file, by index, after checking they belong to these records."""
    fix = f"Delete {path} to score from scratch, or pass another path."
    done: dict[int, dict] = {}
    for lineno, line in enumerate(complete_lines(path), 1):
        try:
            row = json.loads(line)
            index, key, name = row["index"], row["key"], row["scorer"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise StaleScoresError(
                f"{path}, line {lineno} is not a scores line: {line[:80]!r}. {fix}"
            ) from None
        if name != scorer_name:
            raise StaleScoresError(f"{path} holds scores by {name!r}, not by {scorer_name!r}. {fix}")
        if not (isinstance(index, int) and 0 <= index < len(keys)) or keys[index] != key:
            raise StaleScoresError(
                f"{path}, line {lineno} scored a different record than entry {index} of these "
                f"{len(keys)} entries: the file was written for other data. {fix}"
            )
        if index in done:
            raise StaleScoresError(f"{path} scores entry {index} twice (line {lineno}). {fix}")
        done[index] = row
    return done


def score_responses(
    entries: Sequence[dict],
    scorer: Scorer,
    path: str | Path,
    *,
    format_input: Callable[[dict], str] = plain_input,
    response_key: str = "model_response",
    progress: bool = True,
) -> ScoreReport:
    """Score each entry's `response_key` against its "output", keeping every finished score in `path`.

    `entries` are dicts with "instruction", "input", "output" and the model's answer. Each score is
    appended to the JSONL file `path` (and flushed) as soon as it exists, keyed by the entry's index
    and `record_key`, with the scorer's name and the judge's raw replies. A re-run reads the file
    and scores only what is missing, so an interrupted run loses nothing and requests nothing twice;
    a file written for other entries or by another scorer raises StaleScoresError instead of
    mixing. Unparsed scores are kept as None, left out of the mean, and reported with a warning.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = [record_key(entry, response_key) for entry in entries]
    done = _read_done(path, keys, scorer.name)
    n_resumed = len(done)
    todo = [i for i in range(len(entries)) if i not in done]
    with path.open("a", encoding="utf-8") as f:
        for i in tqdm(
            todo, desc=f"scoring ({scorer.name})", initial=n_resumed, total=len(entries), disable=not progress
        ):
            entry = entries[i]
            score = scorer.score(format_input(entry), entry["output"], entry[response_key])
            row = {
                "index": i,
                "key": keys[i],
                "scorer": scorer.name,
                "score": score.value,
                "replies": list(score.replies),
            }
            f.write(json.dumps(row) + "\n")
            f.flush()  # on disk before the next request: an interruption loses at most the item in flight
            done[i] = row
    rows = [done[i] for i in range(len(entries))]
    report = ScoreReport(
        scores=[row["score"] for row in rows],
        unparsed=[{"index": row["index"], "replies": row["replies"]} for row in rows if row["score"] is None],
        n_resumed=n_resumed,
    )
    if report.n_unparsed:
        example = report.unparsed[0]["replies"]
        warnings.warn(
            f"{report.n_unparsed} of {len(rows)} responses got no parsable score from {scorer.name}; they are "
            f"left out of the mean. ScoreReport.unparsed has their raw replies, e.g. {example!r}.",
            stacklevel=2,
        )
    return report
