from llmtut.formats import ASSISTANT, HUMAN, chat_turn
from llmtut.world import words as world


def test_knowledge_base_has_150_unambiguous_pairs():
    assert len(world.WORD_PAIRS) >= 150
    assert len(set(world.WORD_PAIRS.values())) == len(world.WORD_PAIRS)  # one English word per Spanish word
    for word in ("dog", "water", "mother", "hello", "tree", "good"):
        assert word in world.WORD_PAIRS
    assert world.WORD_PAIRS["good"] == "bueno"


def test_prose_is_deterministic_and_seed_dependent():
    assert world.bilingual_prose(20, seed=1) == world.bilingual_prose(20, seed=1)
    assert world.bilingual_prose(20, seed=1) != world.bilingual_prose(20, seed=2)


def test_prose_uses_several_forms_and_never_the_chat_format():
    docs = world.bilingual_prose(300, seed=0)
    text = "\n".join(docs)
    used = sum(form.split("{")[0] in text for form in world.PROSE_FORMS)
    assert used >= 8
    assert "### Human:" not in text and "### Assistant:" not in text
    assert "How do you say" not in text  # the chapters' question stays new to the base model
    assert all(doc.startswith("### Lesson") for doc in docs)


def test_every_pair_appears_in_the_pretraining_prose():
    text = "\n".join(world.bilingual_prose(3000, seed=2))  # the recipe's pretraining corpus
    missing = [en for en, es in world.WORD_PAIRS.items() if f'"{en}"' not in text or f" {es}" not in text]
    assert missing == []


def test_chat_text_pairs_questions_with_correct_answers():
    chats = world.chat_text(50, seed=0)
    assert chats == world.chat_text(50, seed=0)
    for chat in chats:
        turns = chat.split(HUMAN)[1:]
        assert 1 <= len(turns) <= 3
        for turn in turns:
            question, answer = turn.split(ASSISTANT)
            en = question.split('"')[1]
            assert answer.strip() == world.WORD_PAIRS[en]


def test_chat_turn_places_eos_before_and_bos_after():
    turn = chat_turn('How do you say "dog" in Spanish?', "perro", bos="<s>", eos="</s>")
    assert turn == '</s>\n\n### Human: How do you say "dog" in Spanish?\n\n### Assistant:<s> perro'
