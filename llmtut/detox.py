"""Detoxifying a summarizer (chapter 05): the reward from a hate-speech classifier, batched summaries with
every decoding setting stated, the reference summaries of each test dialogue, and the share of a
reference's names, places and numbers that a summary keeps (`fact_words`, `facts_kept`).

The dialogues and models come from `llmtut.profiles`: knkarthick/dialogsum and
facebook/roberta-hate-speech-dynabench-r4-target in `hub`, the tiny world's stand-ins in `tiny`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from datasets import Dataset
from transformers import Pipeline, PreTrainedModel, PreTrainedTokenizerBase

from llmtut.formats import summary_prompt

NOTHATE = "nothate"

# The source's rollout sampling: the model's full next-token distribution and no repetition penalty.
# generate() fills every setting a call leaves unset from the model's own generation_config, and
# Qwen2.5-0.5B-Instruct's says do_sample, temperature 0.7, top_k 20, top_p 0.8, repetition_penalty 1.1: so
# each one is stated. The names are GRPOConfig's too: GRPOConfig(**SAMPLING) samples the same way.
SAMPLING: dict[str, Any] = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.0}


def generation_settings(do_sample: bool) -> dict[str, Any]:
    """`generate()` keywords for greedy decoding or for the source's sampling (`SAMPLING`), one beam and no
    repetition penalty either way: none of the decoding settings that the chapter's Hub models' generation
    configs set is left for them to fill in. The stop tokens are left to the model (its own end tokens)."""
    if do_sample:
        return {"do_sample": True, "num_beams": 1, **SAMPLING}
    return {"do_sample": False, "num_beams": 1, "repetition_penalty": 1.0}


def reference_lists(rows: Dataset | Mapping[str, Sequence]) -> list[list[str]]:
    """All reference summaries of each row's dialogue, for ROUGE against several references.

    `rows` is a `datasets.Dataset` or a mapping of columns. Its `references` column when it has one (the
    `hub` test split: DialogSum's three summaries per dialogue, grouped by `profiles.load_dialogue_dataset`),
    else `[summary]` per row (the `tiny` world writes one summary per dialogue).
    """
    columns = list(rows.column_names if hasattr(rows, "column_names") else rows)
    if "references" in columns:
        references = [list(refs) for refs in rows["references"]]
        if not all(references):
            raise ValueError("a row has an empty `references` list: every dialogue needs at least one summary.")
        return references
    if "summary" in columns:
        return [[summary] for summary in rows["summary"]]
    raise ValueError(f"rows need a `references` or a `summary` column, got columns {columns}.")


# What `fact_words` counts as a number word: the cardinals a summary spells out.
NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred thousand million billion".split()
)
# A sentence ends at . ! or ? followed by white space, except after a title ("Mr. Smith").
_TITLES = ("Mr", "Mrs", "Ms", "Dr")
_SENTENCE_END = re.compile("".join(rf"(?<!\b{t}\.)" for t in _TITLES) + r"(?<=[.!?])\s+")
# Words: a speaker tag (#Person1#), a number written in digits (7, 7:30, 1,500, 3.5), or letters.
_WORD = re.compile(r"#\w+#|\d+(?:[.,:]\d+)*|[^\W\d_]+")


def fact_words(text: str) -> set[str]:
    """The names, places and numbers of `text` by a simple rule, lower-cased: every capitalised
    word that does not start a sentence (other than "I" and the titles Mr, Mrs, Ms, Dr), every
    number word (`NUMBER_WORDS`) and every number in digits. Speaker tags such as #Person1#
    are not facts.

    >>> sorted(fact_words("Breakfast is included. #Person1# pays forty dollars in Rome at 7:30."))
    ['7:30', 'forty', 'rome']
    """
    facts = set()
    for sentence in _SENTENCE_END.split(text.strip()):
        for position, word in enumerate(_WORD.findall(sentence)):
            if word[0] == "#":
                continue
            if word[0].isdigit() or word.lower() in NUMBER_WORDS:
                facts.add(word.lower())
            elif word[0].isupper() and position > 0 and word not in ("I", *_TITLES):
                facts.add(word.lower())
    return facts


def facts_kept(summary: str, references: Sequence[str]) -> float | None:
    """The share of a reference summary's `fact_words` that `summary` contains as words, for the
    reference that it matches best (as ROUGE takes the best of several references); None when no
    reference has a fact to keep.

    >>> facts_kept("#Person1# flies to Dublin at seven.", ["#Person1# flies to Rome at seven."])
    0.5
    """
    words = {word.lower() for word in _WORD.findall(summary)}
    shares = [len(facts & words) / len(facts) for facts in map(fact_words, references) if facts]
    return max(shares) if shares else None


def nothate_logits(classifier: Pipeline, texts: Sequence[str], batch_size: int = 32) -> list[float]:
    """The classifier's raw logit for "nothate" per text: the reward (higher = less toxic)."""
    outputs = classifier(list(texts), top_k=None, function_to_apply="none", batch_size=batch_size, truncation=True)
    labels = {o["label"] for o in outputs[0]}
    if NOTHATE not in labels:
        raise ValueError(f"the classifier has no {NOTHATE!r} label (it has {sorted(labels)}): use a hate-speech "
                         "classifier with id2label {0: 'nothate', 1: 'hate'}.")
    return [next(o["score"] for o in out if o["label"] == NOTHATE) for out in outputs]


def nothate_reward(classifier: Pipeline) -> Callable[..., list[float]]:
    """A reward function for trl's GRPOTrainer: the "nothate" logit of each completion."""

    def reward(completions: list[str], **kwargs) -> list[float]:
        return nothate_logits(classifier, completions)

    return reward


@torch.no_grad()
def summarize(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    dialogue_texts: Sequence[str],
    *,
    do_sample: bool,
    seed: int = 0,
    max_new_tokens: int = 64,
    batch_size: int = 64,
) -> list[str]:
    """Summaries of `dialogue_texts` with the source's prompt, greedy or sampled (top_k=0, top_p=1,
    temperature 1, as the source's PPO rollouts), in batches; seq2seq and causal models alike. Every
    decoding setting is stated (`generation_settings`), so a model's generation config cannot change it;
    generation stops at the model's own end tokens (`model.generation_config.eos_token_id`)."""
    torch.manual_seed(seed)
    model.eval()
    encoder_decoder = model.config.is_encoder_decoder
    # A causal model continues after the prompt, so its rows are padded on the left.
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "right" if encoder_decoder else "left"
    summaries = []
    try:
        for start in range(0, len(dialogue_texts), batch_size):
            prompts = [summary_prompt(d) for d in dialogue_texts[start : start + batch_size]]
            enc = tokenizer(prompts, return_tensors="pt", padding=True).to(model.device)
            # Greedy or the source's sampling, stated in full so that a model's own generation config (Qwen2.5-
            # Instruct: temperature 0.7, top_k 20, top_p 0.8, repetition penalty 1.1, in greedy decoding too)
            # does not change it. The stop tokens stay the model's own (Qwen2.5-Instruct stops at <|im_end|> too).
            out = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                 **generation_settings(do_sample))
            new = out if encoder_decoder else out[:, enc["input_ids"].shape[1] :]
            summaries += [s.strip() for s in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = padding_side
    return summaries
