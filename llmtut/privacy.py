"""Measuring what a remote server learns from the prompts it receives (chapter 06).

PDSS sends the remote LLM a perturbed question instead of the private one. Two measures of what still
gets through, both computed on the text the server actually received:
- `leak_rate`: the share of a private question's content words (words of at least four letters that
  are not function words) that appear in the request sent for it. For an ARC record, the content words
  are those of its own question and choice texts (`record_content_words`), not the prompt layout's
  labels ("Question", "Choices"), which every request carries whatever its question;
- `raw_prompts_seen`: how many requests contain a private question verbatim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmtut.inferdpt import WORD, InferDPTKit

# Function words of four letters or more: they carry no private content, so they are not counted.
FUNCTION_WORDS = frozenset(
    """about above after again against also among been before being below between both does doing down
    during each either from further have having here into itself just many more most much must neither
    only other over same should some such than that their theirs them then there these they this those
    through under until upon very was were what when where which while whom whose will with within without
    would your""".split()
)


def content_words(text: str, min_letters: int = 4) -> set[str]:
    """The lower-cased words of `text` with at least `min_letters` letters that are not function words."""
    return {w for w in (m.lower() for m in WORD.findall(text)) if len(w) >= min_letters and w not in FUNCTION_WORDS}


def record_content_words(record: Mapping[str, Any]) -> set[str]:
    """The content words of an ARC record's own texts: its question and its choice texts.

    Not of the prompt it is rendered into: "Question", "Choices" and the labels are the same in every
    request, so they tell a server nothing about the record and are not counted.
    """
    return set().union(*(content_words(t) for t in [record["question"], *record["choices"]["text"]]))


def leak_rate(private: Sequence[str | Mapping[str, Any]], received_texts: Sequence[str]) -> float:
    """Share of the private items' content words that appear as words in the text received for each.

    An item is a text (its `content_words`) or an ARC record (its `record_content_words`: the question
    and choice texts, not the layout of the prompt that carried them). `received_texts[i]` is what the
    server received in place of `private[i]`. Pooled over all items: total words leaked / total content
    words (0.0 if the items have none).
    """
    if len(private) != len(received_texts):
        raise ValueError(f"need one received text per private text, got {len(received_texts)} for "
                         f"{len(private)}.")
    leaked = total = 0
    for item, received in zip(private, received_texts, strict=True):
        words = content_words(item) if isinstance(item, str) else record_content_words(item)
        seen = {w.lower() for w in WORD.findall(received)}
        leaked += len(words & seen)
        total += len(words)
    return leaked / total if total else 0.0


def raw_prompts_seen(private_texts: Sequence[str], requests: Sequence[str]) -> int:
    """How many of `requests` contain one of `private_texts` verbatim (whitespace at the ends ignored)."""
    needles = [t.strip() for t in private_texts if t.strip()]
    return sum(any(needle in request for needle in needles) for request in requests)


def perturb_record(kit: InferDPTKit, record: Mapping[str, Any], epsilon: float | None,
                   seed: int | Sequence[int]) -> dict:
    """An ARC record with its question and choice texts perturbed by `kit` at `epsilon` (labels, answer
    key and the "Question:"/"Choices:" layout stay, so the teacher still sees a multiple-choice question).

    One random stream for the whole record, seeded by `seed`: the same seed gives the same record.
    """
    texts = [record["question"], *record["choices"]["text"]]
    # One call, so one stream; "\n" is not a word, so it passes through and splits the texts back apart.
    perturbed = kit.perturb("\n".join(texts), epsilon, seed).split("\n")
    if len(perturbed) != len(texts):
        raise ValueError(f"record {record.get('id', '?')}: a question or choice text contains a newline.")
    return {**record, "question": perturbed[0],
            "choices": {**record["choices"], "text": perturbed[1:]}}
