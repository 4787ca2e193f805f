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
) -> list[str]:
    """Greedy completions of `prompts` (batched, left-padded), special tokens stripped.

    With `end_of_turn` (a token of the tokenizer, e.g. a chat template's "\n\n### Human:"), generation
    also stops there and special tokens are kept, so an answer reads "perro\n\n### Human:" only when
    the model ended its turn itself ("perro</s>" or "perro perro" otherwise).
    """
    stop = [tokenizer.eos_token_id]
    if end_of_turn is not None:
        stop.append(tokenizer.convert_tokens_to_ids(end_of_turn))
    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"  # generation continues from the last position of each row
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    out = model.generate(
        **enc,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=stop,
    )
    model.train(was_training)
    new_tokens = [[t for t in row if t != tokenizer.pad_token_id] for row in out[:, enc["input_ids"].shape[1] :].tolist()]
    texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=end_of_turn is None)
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
