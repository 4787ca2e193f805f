"""Label masking: which tokens of a training example the loss is computed on."""

from __future__ import annotations

from collections.abc import Sequence

from llmtut.formats import IGNORE_INDEX  # -100, the label that training skips


def mask_all_but_responses(input_ids: Sequence[int], start_id: int, end_id: int, row: int | None = None) -> list[int]:
    """Labels that keep only the responses: the tokens after each `start_id` up to and including
    the next `end_id` (or the end of the example). Everything else, the start token too, is -100.

    Raises ValueError when the example has no response at all: such a row would be trained on
    nothing and silently waste a step.
    """
    labels = [IGNORE_INDEX] * len(input_ids)
    inside = False
    for i, tok in enumerate(input_ids):
        if inside:
            labels[i] = tok
            inside = tok != end_id
        elif tok == start_id:
            inside = True
    if all(label == IGNORE_INDEX for label in labels):
        where = f"row {row}" if row is not None else "this example"
        raise ValueError(
            f"{where} has no response to train on: token id {start_id} (the response marker) never "
            f"occurs, or nothing follows it, so every label would be {IGNORE_INDEX}. Add the marker "
            f"(e.g. bos after '### Assistant:') to the row, or drop the row. input_ids={list(input_ids)}"
        )
    return labels
