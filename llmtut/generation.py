"""Generating answers, and looking at what a model predicts one token at a time."""

from __future__ import annotations

import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


@torch.no_grad()
def generate_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    max_new_tokens: int = 8,
    end_of_turn: str | None = None,
    *,
    do_sample: bool = False,
    seed: int = 0,
    batch_size: int | None = None,
) -> list[str]:
    """Completions of `prompts` (left-padded, in batches of `batch_size`, all at once if None), stripped.

    Greedy by default; `do_sample=True` samples from the model's distribution (temperature 1, no
    top-k or top-p cut) with torch seeded by `seed`, so a sampled run is reproducible. With
    `end_of_turn` (a token of the tokenizer, e.g. a chat template's "\n\n### Human:"), generation
    also stops there and special tokens are kept, so an answer reads "perro\n\n### Human:" only when
    the model ended its turn itself ("perro</s>" or "perro perro" otherwise).
    """
    stop = [tokenizer.eos_token_id]
    if end_of_turn is not None:
        stop.append(tokenizer.convert_tokens_to_ids(end_of_turn))
    sampling = {"do_sample": True, "top_k": 0, "top_p": 1.0, "temperature": 1.0} if do_sample else {"do_sample": False}
    if do_sample:
        torch.manual_seed(seed)
    was_training, padding_side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"  # generation continues from the last position of each row
    texts = []
    try:
        step = batch_size or max(len(prompts), 1)
        for start in range(0, len(prompts), step):
            enc = tokenizer(prompts[start : start + step], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(model.device)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=stop, **sampling)
            new = [[t for t in row if t != tokenizer.pad_token_id] for row in out[:, enc["input_ids"].shape[1] :].tolist()]
            texts += tokenizer.batch_decode(new, skip_special_tokens=end_of_turn is None)
    finally:
        model.train(was_training)
        tokenizer.padding_side = padding_side
    return [text.strip() for text in texts]


@torch.no_grad()
def next_token_predictions(model: PreTrainedModel, input_ids: list[int]) -> list[int]:
    """Teacher-forced greedy predictions: element i is the model's guess for token i+1."""
    ids = torch.tensor([input_ids], device=model.device)
    return model(input_ids=ids).logits[0].argmax(-1).tolist()


def next_token_accuracy(model: PreTrainedModel, examples: list[list[int]], positions: list[range]) -> float:
    """Share of tokens `examples[k][i]`, i in `positions[k]`, that the model predicts from the tokens before."""
    hits = total = 0
    for ids, span in zip(examples, positions, strict=True):
        predicted = next_token_predictions(model, ids)
        hits += sum(predicted[i - 1] == ids[i] for i in span)
        total += len(span)
    return hits / total


def iterative_generate_view(
    models: dict[str, PreTrainedModel], tokenizer: PreTrainedTokenizerBase, text: str
) -> pd.DataFrame:
    """Walk through `text` one token at a time and show what each model predicts next.

    A model trained on the whole text has learned to predict the prompt too; one trained on
    the response alone has not, and its guesses for the prompt stay the base model's.
    """
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    table = {"context ends with": [tokenizer.decode(ids[i]) for i in range(len(ids) - 1)]}
    table["actual next"] = [tokenizer.decode(ids[i + 1]) for i in range(len(ids) - 1)]
    for name, model in models.items():
        predicted = next_token_predictions(model, ids)[:-1]
        table[name] = [tokenizer.decode(p) + (" ✓" if p == ids[i + 1] else "") for i, p in enumerate(predicted)]
    return pd.DataFrame(table)


@torch.no_grad()
def choice_log_likelihoods(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: str, choices: list[str]
) -> list[float]:
    """The log-probability of each choice (its tokens and the eos) as the continuation of `prompt`.

    The prompt and each choice are tokenized apart, as a training row joins them, so the boundary is
    the same. Multiple-choice scoring in the manner of lm-evaluation-harness: the answer is the argmax.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    rows = [prompt_ids + tokenizer(c, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for c in choices]
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=model.device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=model.device)
    logprobs = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float().log_softmax(-1)
    picked = logprobs.gather(-1, ids[:, 1:, None])[..., 0]  # log p(token t | tokens < t)
    return [picked[i, len(prompt_ids) - 1 : len(r) - 1].sum().item() for i, r in enumerate(rows)]
