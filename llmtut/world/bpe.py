"""A byte-level BPE tokenizer with bloom-560m's pre-tokenizer, trained on tiny-world text."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

# bloom-560m's split pattern (from its tokenizer.json): a word with an optional leading
# space is isolated, and whatever lies between words (punctuation, newlines, spaces) forms
# a piece of its own, so BPE can merge '?' with the '\n\n' that follows it.
BLOOM_SPLIT = r" ?[^(\s|[.,!?…。，、।۔،])]+"
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]  # bloom's, with bloom's ids 0..3


def _train_byte_level_bpe(
    texts: Iterable[str],
    vocab_size: int,
    pre_tokenizer: pre_tokenizers.PreTokenizer,
    special_tokens: list[str] | None = None,
    unk_token: str | None = None,
) -> Tokenizer:
    """A byte-level BPE (every byte in its alphabet) trained on `texts` after `pre_tokenizer`."""
    tok = Tokenizer(models.BPE(unk_token=unk_token))
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens or [],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def train_bloom_like_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts` with bloom's pre-tokenizer and special tokens."""
    pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(BLOOM_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok = _train_byte_level_bpe(texts, vocab_size, pre_tokenizer, SPECIAL_TOKENS, unk_token="<unk>")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="left",  # bloom pads on the left, which is what generation wants
        clean_up_tokenization_spaces=False,
    )


# GPT-2's one special token: it starts and ends documents and stands in for unknown text.
GPT2_ENDOFTEXT = "<|endoftext|>"


def train_gpt2_like_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts` with GPT-2's pre-tokenizer and its single special token.

    As in gpt2's tokenizer.json: ByteLevel with GPT-2's regex and no prefix space, the special
    token `<|endoftext|>` last in the vocabulary (so `len(tokenizer) == vocab_size`) and used as
    bos, eos and unk, and no pad token: code that pads must say with what (usually eos).
    """
    # byte-level covers every input: no unk token in the model
    tok = _train_byte_level_bpe(texts, vocab_size - 1, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    tok.add_special_tokens([GPT2_ENDOFTEXT])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=GPT2_ENDOFTEXT,
        eos_token=GPT2_ENDOFTEXT,
        unk_token=GPT2_ENDOFTEXT,
        padding_side="right",  # gpt2's default; the instruction chapter's collate pads on the right
        clean_up_tokenization_spaces=False,
    )


# The detox chapter's three models share one vocabulary trained on the tiny world's dialogues,
# with the special tokens of the hub models they stand in for.
DIALOGUE_SPECIAL_TOKENS = ["<pad>", "</s>", "<unk>", "<s>", "<mask>"]


def train_dialogue_tokenizers(texts: Iterable[str], vocab_size: int) -> dict[str, PreTrainedTokenizerFast]:
    """A byte-level BPE trained on `texts`, wrapped three ways: `t5` (appends `</s>`, pad id 0 as T5's),
    `roberta` (`<s> ... </s>`, `<mask>`, as roberta's) and `causal` (no added tokens, pads on the left)."""
    tok = _train_byte_level_bpe(texts, vocab_size, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                                DIALOGUE_SPECIAL_TOKENS, unk_token="<unk>")
    common = dict(unk_token="<unk>", pad_token="<pad>", eos_token="</s>", clean_up_tokenization_spaces=False)

    def wrapped(post_processor, **kwargs) -> PreTrainedTokenizerFast:
        t = Tokenizer.from_str(tok.to_str())
        t.post_processor = post_processor
        return PreTrainedTokenizerFast(tokenizer_object=t, **common, **kwargs)

    eos, bos = ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>"))
    return {
        "t5": wrapped(processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[eos]),
                      padding_side="right"),
        "roberta": wrapped(processors.RobertaProcessing(eos, bos, add_prefix_space=False),
                           bos_token="<s>", sep_token="</s>", cls_token="<s>", mask_token="<mask>",
                           padding_side="right"),
        "causal": wrapped(processors.ByteLevel(trim_offsets=False), padding_side="left"),
    }
