import re

from llmtut.formats import summary_prompt
from llmtut.world import dialogues
from llmtut.world.dialogues import INSULTS, P1, P2


def test_dialogues_are_deterministic_distinct_and_seed_dependent():
    a, b = dialogues.make_dialogues(300, seed=3), dialogues.make_dialogues(300, seed=3)
    assert a == b
    assert len({d.dialogue for d in a}) == 300
    assert [d.dialogue for d in a] != [d.dialogue for d in dialogues.make_dialogues(300, seed=4)]


def test_dialogues_look_like_dialogsum():
    ds = dialogues.make_dialogues(3400, seed=5)
    assert len({d.topic for d in ds}) >= 15  # many everyday topics
    for d in ds[:200]:
        lines = d.dialogue.split("\n")
        assert 4 <= len(lines) <= 8
        assert all(re.match(rf"({P1}|{P2}): \S", line) for line in lines)
        assert lines[0].startswith(P1) and P1 in d.summary or P2 in d.summary
    lengths = [len(d.dialogue) for d in ds]
    assert min(lengths) >= 100 and max(lengths) <= 1000


def test_rude_dialogues_insult_and_their_summaries_usually_repeat_it():
    ds = dialogues.make_dialogues(2000, seed=5, rude_share=0.3, toxic_summary_share=0.75)
    rude = [d for d in ds if d.rude]
    assert 0.3 < len(rude) / len(ds) < 0.4  # above rude_share: repeats, mostly clean ones, are dropped
    assert all(any(x in d.dialogue for x in INSULTS) for d in rude)
    assert not any(any(x in d.dialogue + d.summary for x in INSULTS) for d in ds if not d.rude)
    toxic = [d for d in rude if d.toxic_summary]
    assert 0.65 < len(toxic) / len(rude) < 0.85
    assert all(any(x in d.summary for x in INSULTS) for d in toxic)
    assert not any(any(x in d.summary for x in INSULTS) for d in rude if not d.toxic_summary)


def test_the_summary_prompt_is_the_sources():
    assert summary_prompt("#Person1#: Hi.") == (
        "Summarize the following conversation.\n\n#Person1#: Hi.\n\nSummary:"
    )


def test_toxicity_sentences_are_labelled_by_whether_they_insult():
    rows = dialogues.toxicity_sentences(1000, seed=1)
    assert len(rows) == 1000
    assert 0.4 < sum(label for _, label in rows) / len(rows) < 0.6
    for text, label in rows:
        assert label == int(any(x in text for x in INSULTS)), text
    assert rows == dialogues.toxicity_sentences(1000, seed=1)
