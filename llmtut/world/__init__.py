"""The offline tiny world: the `tiny` profile's stand-ins for the Hub's models and data.

A small hand-written knowledge base and generators that turn it into corpora, tokenizers trained on
them, and small models built with the same Hugging Face classes the Hub models use, deterministic
and cached. `python -m llmtut.world build` builds (or finds in the cache) every artifact.

- `words`: English-Spanish word pairs, bilingual prose and chats (the masking chapters' world);
- `tasks`: Alpaca-style instruction tasks and the prose behind them (chapter 01);
- `dialogues`: #Person1#/#Person2# dialogues with summaries, some rude, and labelled sentences (05);
- `science`: ARC-style questions with rationales, and science prose (06);
- `bpe`, `pretrain`, `trainer`: tokenizer training, pretraining, the Trainer steps the builds share;
- `bases`, `detox_models`, `pdss_models`: the model builders; `cache`: the cache and world cards.

The lessons never import this package: `llmtut.profiles` maps each model and data role to a build
here in the `tiny` profile. The world imports, of the rest of `llmtut`, only `llmtut.formats` and
`llmtut.trainer_defaults`.
"""
