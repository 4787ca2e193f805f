import pytest

from llmtut.formats import ASSISTANT
from llmtut.world import bpe, words

EXAMPLE = '</s>\n\n### Human: How do you say "dog" in Spanish?\n\n### Assistant:<s> perro</s>'


def contains(seq: list[int], sub: list[int]) -> bool:
    return any(seq[i : i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


@pytest.fixture(scope="module")
def small_tokenizer():
    return bpe.train_bloom_like_tokenizer(words.bilingual_prose(300, 0) + words.chat_text(300, 1), 800)


@pytest.fixture(params=["small", "tiny-world"])
def tokenizer(request, small_tokenizer, causal_base):
    return small_tokenizer if request.param == "small" else causal_base[1]


def test_question_mark_and_blank_line_merge_in_context(tokenizer):
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(EXAMPLE)["input_ids"])
    assert "?ĊĊ" in tokens  # byte-level: Ċ is '\n'


def test_response_template_alone_does_not_occur_in_context(tokenizer):
    template = tokenizer(ASSISTANT, add_special_tokens=False)["input_ids"]
    in_context = tokenizer(EXAMPLE, add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(template)[0] == "ĊĊ"  # starts with '\n\n', not '?\n\n'
    assert not contains(in_context, template)
    assert contains(in_context, template[1:])  # only the merged first token differs


def test_special_tokens_have_bloom_ids_and_are_not_added_automatically(tokenizer):
    assert (tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (0, 1, 2, 3)
    ids = tokenizer(EXAMPLE)["input_ids"]
    assert ids[0] == 2 and ids[-1] == 2 and ids.count(1) == 1  # only the ones written in the text
    assert tokenizer.decode(ids) == EXAMPLE  # byte-level BPE round-trips exactly


def test_words_of_the_knowledge_base_are_single_tokens(causal_base):
    _, tokenizer = causal_base
    for es in ("perro", "agua", "madre", "hola", "árbol", "bueno"):
        assert len(tokenizer(f" {es}", add_special_tokens=False)["input_ids"]) == 1, es
