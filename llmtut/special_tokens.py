"""Response templates as token sequences, and new special tokens with a chosen embedding init."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llmtut.masking import IGNORE_INDEX

INITS = ("mean", "random", "pieces")


def find_template(
    input_ids: Sequence[int], template_ids: Sequence[int], row: int | None = None
) -> int:
    """Index of the first occurrence of the token sequence `template_ids` in
    `input_ids`.

    Raises ValueError, naming the row, when it does not occur. This is what happens
    when a template such as "\\n\\n### Assistant:" merges with the text before it
    ("?\\n\\n" is one token): the template's own tokens never appear in the tokenized
    example.
    """
    ids, tpl = list(input_ids), list(template_ids)
    if not tpl:
        raise ValueError(
            "the template is empty: pass the token ids of the response template."
        )
    for start in range(len(ids) - len(tpl) + 1):
        if ids[start : start + len(tpl)] == tpl:
            return start
    where = f"row {row}" if row is not None else "this example"
    raise ValueError(
        f"{where} does not contain the response template {tpl}: its tokens never "
        f"occur in input_ids, usually because the template merges with the text "
        f"before it when tokenized in context (e.g. '?\\n\\n' is one token). Add the "
        f"template as a special token "
        f"(llmtut.special_tokens.add_special_tokens_with_init) so that it is always "
        f"one token, or tokenize it the way it appears in context. "
        f"input_ids={ids}"
    )


def mask_before_template(input_ids: Sequence[int], template_ids: Sequence[int], row: int | None = None) -> list[int]:
    """Completion-only labels by template search: -100 up to and including the first occurrence of
    `template_ids`, the input ids after it. Raises ValueError (see `find_template`) when the template
    is absent or nothing follows it, instead of returning a row of -100 that would teach nothing."""
    start = find_template(input_ids, template_ids, row)
    end = start + len(template_ids)
    if end == len(input_ids):
        where = f"row {row}" if row is not None else "this example"
        raise ValueError(f"{where} ends with the response template: there is no response to train on.")
    return [IGNORE_INDEX] * end + list(input_ids[end:])


def _init_rows(
    weight: torch.Tensor, new_ids: list[int], old_vocab: int, init: str,
    pieces: list[list[int]], std: float, generator: torch.Generator,
) -> None:
    with torch.no_grad():
        if init == "mean":
            weight[new_ids] = weight[:old_vocab].float().mean(0).to(weight.dtype)
        elif init == "random":
            rows = torch.randn(len(new_ids), weight.shape[1], generator=generator) * std
            weight[new_ids] = rows.to(device=weight.device, dtype=weight.dtype)
        else:  # pieces
            for new_id, piece_ids in zip(new_ids, pieces, strict=True):
                weight[new_id] = weight[piece_ids].float().mean(0).to(weight.dtype)


def add_special_tokens_with_init(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, tokens: Sequence[str],
    init: str = "mean", seed: int = 0,
) -> list[int]:
    """Add `tokens` as additional special tokens, grow the embeddings, and initialise
    the new rows.

    init:
      - "mean": the mean of the existing token embeddings. transformers'
        `resize_token_embeddings` does this by default (it samples around the mean
        with a covariance scaled by 1e-9);
      - "random": normal with mean 0 and std `model.config.initializer_range`, as a
        fresh model's;
      - "pieces": the average of the embeddings of the tokens that the old tokenizer
        split the string into (e.g. "\\n\\n", "###", " Assistant:").

    Works on input and output embeddings, tied (Bloom, GPT-2) or not. The rows of the
    output embeddings are initialised the same way when they are a separate matrix.
    Returns the new ids.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}.")
    tokens = list(tokens)
    vocab = tokenizer.get_vocab()
    already = [t for t in tokens if t in vocab]
    if already:
        raise ValueError(
            f"{already} are already tokens of this tokenizer: nothing to add."
        )
    # the OLD tokenizer's split, for init="pieces"
    pieces = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in tokens]
    old_vocab = len(tokenizer)
    tokenizer.add_special_tokens(
        {"additional_special_tokens": tokens}, replace_extra_special_tokens=False
    )
    new_ids = tokenizer.convert_tokens_to_ids(tokens)
    # some checkpoints (bloom-560m) have more embedding rows than tokens: never shrink
    rows = max(model.get_input_embeddings().weight.shape[0], len(tokenizer))
    # resizing draws from the global RNG; keep it untouched
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.resize_token_embeddings(rows, mean_resizing=False)
    generator = torch.Generator().manual_seed(seed)
    std = getattr(model.config, "initializer_range", 0.02)
    inp = model.get_input_embeddings().weight
    _init_rows(inp, new_ids, old_vocab, init, pieces, std, generator)
    out = model.get_output_embeddings()
    # untied: the output rows need an init too
    if out is not None and out.weight is not inp:
        _init_rows(out.weight, new_ids, old_vocab, init, pieces, std, generator)
    return new_ids
