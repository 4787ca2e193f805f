import copy

import pytest

from llmtut.chat_template import CHAT_TEMPLATE, assistant_mask, has_generation_markers, set_chat_template
from llmtut.formats import ASSISTANT, chat_turn
from llmtut.masking import IGNORE_INDEX, mask_all_but_responses
from llmtut.world.words import WORD_PAIRS

CONVERSATIONS = [("water", "dog"), ("mother", "hello"), ("tree",), ("good", "sun", "dog")]


def question(en):
    return f'How do you say "{en}" in Spanish?'


def messages(words):
    out = []
    for en in words:
        out += [{"role": "user", "content": question(en)},
                {"role": "assistant", "content": WORD_PAIRS[en]}]
    return out


def manual_text(tok, words):
    return "".join(chat_turn(question(en), WORD_PAIRS[en], tok.bos_token, tok.eos_token)
                   for en in words) + tok.eos_token


@pytest.fixture
def tok(causal_base):
    return set_chat_template(copy.deepcopy(causal_base[1]))


@pytest.mark.parametrize("words", CONVERSATIONS)
def test_template_renders_the_hand_built_text(tok, words):
    assert tok.apply_chat_template(messages(words), tokenize=False) == manual_text(tok, words)


@pytest.mark.parametrize("words", CONVERSATIONS)
def test_assistant_mask_equals_the_manual_mask(tok, words):
    out = assistant_mask(tok, messages(words), row=0)
    ids = tok(manual_text(tok, words), add_special_tokens=False)["input_ids"]
    labels = mask_all_but_responses(ids, tok.bos_token_id, tok.eos_token_id)
    assert out["input_ids"] == ids
    assert out["assistant_masks"] == [int(label != IGNORE_INDEX) for label in labels]
    kept = tok.decode([i for i, m in zip(ids, out["assistant_masks"], strict=True) if m])
    assert kept == "".join(f" {WORD_PAIRS[en]}{tok.eos_token}" for en in words)


def test_generation_prompt_ends_with_the_answer_marker(tok):
    prompt = tok.apply_chat_template(messages(["water"])[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == chat_turn(question("water"), "", tok.bos_token, tok.eos_token)[:-1]
    assert prompt.endswith(f"{ASSISTANT}{tok.bos_token}")


def test_template_without_markers_is_an_error_naming_the_row(tok):
    plain = CHAT_TEMPLATE.replace("{%- generation -%}", "").replace("{%- endgeneration -%}", "")
    assert not has_generation_markers(plain) and has_generation_markers(CHAT_TEMPLATE)
    set_chat_template(tok, plain)
    with pytest.raises(ValueError, match=r"row 4: .*no \{% generation %\}"):
        assistant_mask(tok, messages(["dog"]), row=4)


def test_conversation_without_assistant_turn_is_an_error(tok):
    with pytest.raises(ValueError, match=r"row 2 has no assistant tokens"):
        assistant_mask(tok, messages(["dog"])[:1], row=2)


def test_unknown_role_is_rejected(tok):
    with pytest.raises(Exception, match="user and assistant"):
        tok.apply_chat_template([{"role": "system", "content": "hi"}], tokenize=False)
