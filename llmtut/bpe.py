"""A byte-level BPE tokenizer with bloom-560m's pre-tokenizer, trained on tiny-world text."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

# bloom-560m's split pattern (from its tokenizer.json): a word with an optional leading
# space is isolated, and whatever lies between words (punctuation, newlines, spaces) forms
# a piece of its own, so BPE can merge '?' with the '\n\n' that follows it.
BLOOM_SPLIT = r" ?[^(\s|[.,!?…。，、।۔،])]+"
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]  # bloom's, with bloom's ids 0..3


def train_bloom_like_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts` with bloom's pre-tokenizer and special tokens."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(BLOOM_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="left",  # bloom pads on the left, which is what generation wants
        clean_up_tokenization_spaces=False,
    )
