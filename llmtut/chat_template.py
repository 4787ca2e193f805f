"""A chat template for the book's `### Human:` / `### Assistant:` format, with assistant masks.

The template renders a list of messages into exactly the text the masking chapters build by hand
(`llmtut.formats.chat_turn` concatenated, closed by eos): one eos opens the conversation, every
assistant answer ends with eos, and `<s>` (bos) after `### Assistant:` marks where an answer
starts. The answer and its closing eos sit inside `{% generation %}` markers, so
`apply_chat_template(..., return_assistant_tokens_mask=True)` marks the same tokens as
`llmtut.masking.mask_all_but_responses` keeps.
"""

from __future__ import annotations

import re

from transformers import PreTrainedTokenizerBase

from llmtut.formats import ASSISTANT, HUMAN

# Jinja, as transformers renders it (whitespace control with `-` keeps the template readable
# without adding newlines to the output). `bos_token` and `eos_token` come from the tokenizer.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}"
    # eos opens a human turn, unless the assistant answer before it already ended with one
    "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'assistant' -%}{{ eos_token }}{%- endif -%}"
    "{{ '" + HUMAN.replace("\n", "\\n") + " ' + message['content'] }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ '" + ASSISTANT.replace("\n", "\\n") + "' + bos_token }}"
    "{%- generation -%}{{ ' ' + message['content'] + eos_token }}{%- endgeneration -%}"
    "{%- else -%}"
    "{{ raise_exception('this template knows the roles user and assistant, not ' + message['role']) }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '" + ASSISTANT.replace("\n", "\\n") + "' + bos_token }}{%- endif -%}"
)

_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")


def has_generation_markers(template: str | None) -> bool:
    """Whether `template` marks assistant content with `{% generation %}` (any whitespace-trim variant)."""
    return template is not None and _GENERATION.search(template) is not None


def set_chat_template(tokenizer: PreTrainedTokenizerBase, template: str = CHAT_TEMPLATE) -> PreTrainedTokenizerBase:
    """Give `tokenizer` the book's chat template (in place) and return it."""
    tokenizer.chat_template = template
    return tokenizer


def assistant_mask(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict], row: int | None = None
) -> dict:
    """Token ids and assistant mask (1 = an assistant token the loss should see) of
    one conversation.

    Returns `{"input_ids": [...], "assistant_masks": [...]}` from
    `apply_chat_template`. transformers marks assistant tokens only where the template
    says `{% generation %}`; a template without the markers gives a mask of zeros, and
    training on it would learn nothing. This raises ValueError naming the row instead,
    and also when the mask is all zeros for another reason.
    """
    where = f"row {row}" if row is not None else "this conversation"
    if not has_generation_markers(tokenizer.chat_template):
        raise ValueError(
            f"{where}: the tokenizer's chat template has no {{% generation %}} ... "
            "{% endgeneration %} markers, so return_assistant_tokens_mask=True "
            "would mark no token as the assistant's and every label would be masked. "
            "Wrap each assistant answer (with its end-of-turn token) in the markers, "
            "e.g. with llmtut.chat_template.set_chat_template(tokenizer)."
        )
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    if not any(mask):
        raise ValueError(
            f"{where} has no assistant tokens in its mask: it has no assistant "
            f"message, or the {{% generation %}} markers wrap nothing. "
            f"Roles: {[m['role'] for m in messages]}"
        )
    return {"input_ids": ids, "assistant_masks": mask}
