"""The tiny world's models for the distillation chapter (06), built offline and deterministically.

Two stand-ins for the source material's models, both `Qwen2ForCausalLM` with one byte-level BPE
vocabulary trained on `llmtut.world.science`: a *teacher* (the remote LLM, served with `transformers
serve`) that has read the science prose and learned to answer every question with a rationale, and
a *student* base (the small LM of PDSS, a Qwen 0.5B model on the Hub) that has read the prose only.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from transformers import (
    PreTrainedTokenizerFast,
    Trainer,
)

from llmtut.formats import is_correct, teacher_prompt
from llmtut.world import bpe, cache, science
from llmtut.world.trainer import completion_row, save_with_card, train_small_qwen2

PDSS_RECIPE: dict = {
    "data": {"n_questions": 1200, "prose_docs": 400, "seed": 0},
    "tokenizer": {"vocab_size": 2000},
    "teacher": {"hidden_size": 128, "num_layers": 4, "num_heads": 4, "epochs": 15, "batch_size": 32, "lr": 3e-3,
                "seed": 0},
    "student": {"hidden_size": 128, "num_layers": 4, "num_heads": 4, "epochs": 30, "batch_size": 32, "lr": 3e-3,
                "seed": 0},
}
# A chat template for `transformers serve`'s chat endpoint; the chapter uses the completions endpoint.
CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


def questions(recipe: dict | None = None) -> list[dict]:
    """The tiny world's ARC-style records, with `fact` and `rationale` kept (the teacher's knowledge)."""
    r = (PDSS_RECIPE if recipe is None else recipe)["data"]
    qs = science.make_questions(r["n_questions"], r["seed"])
    return [{**rec, "fact": q.fact, "rationale": q.rationale} for rec, q in zip(science.to_arc_records(qs), qs,
                                                                                 strict=True)]


def _tokenizer(recipe: dict) -> PreTrainedTokenizerFast:
    r = recipe["data"]
    texts = science.science_prose(r["prose_docs"], r["seed"])
    texts += [f"{teacher_prompt(q)} {q['rationale']}" for q in questions(recipe)]
    tokenizer = bpe.train_dialogue_tokenizers(texts, recipe["tokenizer"]["vocab_size"])["causal"]
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _train(
    out: Path, recipe: dict, role: str, with_questions: bool, progress: bool
) -> tuple[Trainer, PreTrainedTokenizerFast, dict]:
    """A Qwen2 trained on the science prose and, for the teacher, on every question -> rationale."""
    data = recipe["data"]
    tokenizer = _tokenizer(recipe)
    rows = []
    for doc in science.science_prose(data["prose_docs"], data["seed"]):
        ids = tokenizer(doc)["input_ids"][:255] + [tokenizer.eos_token_id]
        rows.append({"input_ids": ids, "labels": ids})
    if with_questions:
        rows += [completion_row(tokenizer, teacher_prompt(q), " " + q["rationale"]) for q in questions(recipe)]
    trainer = train_small_qwen2(out, tokenizer, rows, recipe[role], progress)
    return trainer, tokenizer, {"n_rows": len(rows)}


@torch.no_grad()
def answer_accuracy(model, tokenizer, records: list[dict], max_new_tokens: int = 40, batch_size: int = 64) -> float:
    """Share of `records` whose greedy rationale ends with the right answer."""
    right = 0
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        enc = tokenizer([teacher_prompt(q) for q in batch], return_tensors="pt", padding=True).to(model.device)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
        texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        right += sum(is_correct(t, q) for t, q in zip(texts, batch, strict=True))
    return right / len(records)


def build_teacher(out: Path, recipe: dict, progress: bool = True) -> None:
    t0 = time.perf_counter()
    trainer, tokenizer, card = _train(out, recipe, "teacher", with_questions=True, progress=progress)
    card["accuracy_sample"] = answer_accuracy(trainer.model, tokenizer, questions(recipe)[::6])
    save_with_card(out, trainer, tokenizer, card, t0)


def build_student(out: Path, recipe: dict, progress: bool = True) -> None:
    t0 = time.perf_counter()
    trainer, tokenizer, card = _train(out, recipe, "student", with_questions=False, progress=progress)
    save_with_card(out, trainer, tokenizer, card, t0)


def teacher(recipe: dict | None = None, progress: bool = True) -> Path:
    """Folder of the tiny teacher (a Qwen2 with a chat template) and its tokenizer (built once, then cached)."""
    recipe = PDSS_RECIPE if recipe is None else recipe
    return cache.cached_part("qwen2-teacher", recipe, "teacher", build_teacher, progress, __name__)


def student(recipe: dict | None = None, progress: bool = True) -> Path:
    """Folder of the tiny student base (a Qwen2 that has read the science prose) and its tokenizer."""
    recipe = PDSS_RECIPE if recipe is None else recipe
    return cache.cached_part("qwen2-student", recipe, "student", build_student, progress, __name__)
