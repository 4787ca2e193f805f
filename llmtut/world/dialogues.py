"""The tiny world's conversations: #Person1#/#Person2# dialogues with reference summaries, some rude.

The seq2seq side of the tiny world (chapter 05), in the style of DialogSum: everyday scenes of
four to eight turns, each with a one- or two-sentence reference summary. In a share of them one
speaker insults the other, and then the reference summary usually repeats the insult, so a model
trained on them summarizes well *and* is toxic where the dialogue is, which is what PPO removes.
`toxicity_sentences` gives the labelled toxic/neutral sentences the reward classifier learns from.
Everything is deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

P1, P2 = "#Person1#", "#Person2#"

# A scene: slot values, the lines (alternating speakers, customer first) and the summary, with
# {slots}. "{a}" and "{b}" are the two speakers' tags; {a} opens the conversation.
SLOTS: dict[str, tuple[str, ...]] = {
    "n": ("two", "three", "four", "five", "six"),
    "time": ("six", "seven", "eight", "nine", "ten", "noon", "five"),
    "dish": ("fish soup", "roast chicken", "rice with beans", "apple cake", "cheese pasta", "green salad"),
    "item": ("jacket", "pair of shoes", "hat", "bag", "shirt", "lamp", "clock", "mirror", "watch"),
    "color": ("red", "blue", "green", "black", "white", "yellow", "brown"),
    "price": ("ten", "twenty", "thirty", "forty", "fifty", "sixty", "eighty"),
    "place": ("the station", "the museum", "the post office", "the bank", "the library", "the park",
              "the hospital", "the market", "the cinema", "the river bridge"),
    "turn": ("left", "right"),
    "landmark": ("the church", "the school", "the big bakery", "the traffic lights", "the old bridge", "the hotel"),
    "symptom": ("a headache", "a sore throat", "a bad cough", "a fever", "a stomach ache", "back pain"),
    "days": ("two", "three", "four", "five", "seven"),
    "advice": ("rest and drink water", "take these pills twice a day", "stay in bed", "eat light food",
               "avoid cold drinks"),
    "job": ("teacher", "driver", "cook", "nurse", "sales assistant", "engineer", "waiter", "designer"),
    "years": ("two", "three", "four", "five", "eight", "ten"),
    "skill": ("speaks Spanish", "can drive a truck", "works well in a team", "knows accounting",
              "can use computers"),
    "activity": ("go hiking", "play tennis", "visit the zoo", "have a picnic", "go swimming", "see a play"),
    "day": ("on Saturday", "on Sunday", "on Friday", "on Monday", "tomorrow", "next weekend"),
    "city": ("Madrid", "Paris", "Rome", "London", "Lisbon", "Berlin", "Vienna", "Dublin"),
    "room": ("a single room", "a double room", "a family room", "a room with a view"),
    "nights": ("one night", "two nights", "three nights", "a week"),
    "subject": ("math", "history", "biology", "chemistry", "English", "geography", "music"),
    "lost": ("wallet", "phone", "keys", "umbrella", "passport", "glasses"),
    "drink": ("coffee", "tea", "hot chocolate", "lemonade", "orange juice"),
    "size": ("small", "medium", "large"),
    "problem": ("a flat tyre", "a broken light", "strange noises from the engine", "a dead battery"),
    "book": ("a novel", "a cookbook", "a book about birds", "a history book", "a travel guide"),
    "genre": ("comedy", "thriller", "cartoon", "science fiction film", "love story"),
    "sport": ("football", "basketball", "volleyball", "table tennis", "chess"),
    "person": ("mother", "brother", "sister", "father", "grandmother", "best friend"),
    "gift": ("a scarf", "a book", "flowers", "a cake", "a watch", "a plant"),
    "amount": ("one hundred", "two hundred", "five hundred", "a thousand"),
    "rooms": ("one bedroom", "two bedrooms", "three bedrooms"),
    "area": ("near the park", "in the city centre", "close to the station", "by the river"),
}


@dataclass(frozen=True)
class Scene:
    topic: str
    lines: tuple[str, ...]
    summaries: tuple[str, ...]  # alternative reference summaries; one is drawn


SCENES: tuple[Scene, ...] = (
    Scene("restaurant", (
        "Good evening. I'd like to book a table for {n} tonight.",
        "Of course. What time would you like to come?",
        "At {time}, if possible.",
        "A table for {n} at {time} is fine. Anything else?",
        "Is the {dish} good here?",
        "Yes, the {dish} is our best dish.",
    ), ("{a} books a table for {n} at {time}. {b} recommends the {dish}.",
        "{a} reserves a table for {n} at {time} and asks {b} about the {dish}.")),
    Scene("shopping", (
        "Excuse me, do you have this {item} in {color}?",
        "Let me check. Yes, we have one {color} {item} left.",
        "How much is it?",
        "It is {price} dollars.",
        "I'll take it, thank you.",
    ), ("{a} buys a {color} {item} from {b} for {price} dollars.",
        "{b} sells {a} the last {color} {item} for {price} dollars.")),
    Scene("directions", (
        "Excuse me, how do I get to {place}?",
        "Go straight and turn {turn} at {landmark}.",
        "Is it far from here?",
        "No, it is about ten minutes on foot.",
        "Thank you very much.",
    ), ("{b} tells {a} how to get to {place}: turn {turn} at {landmark}.",
        "{a} asks the way to {place}, and {b} says to turn {turn} at {landmark}.")),
    Scene("doctor", (
        "Doctor, I have had {symptom} for {days} days.",
        "Let me see. Do you have any other problems?",
        "No, only {symptom}.",
        "It is nothing serious. You should {advice}.",
        "Thank you, doctor.",
    ), ("{a} has had {symptom} for {days} days. The doctor tells {a} to {advice}.",
        "{b} examines {a}, who has {symptom}, and advises {a} to {advice}.")),
    Scene("interview", (
        "Thank you for coming. Why do you want to be a {job}?",
        "I have worked as a {job} for {years} years and I love it.",
        "What else can you tell me about yourself?",
        "I {skill}.",
        "Good. We will call you next week.",
    ), ("{b} has an interview with {a} for a job as a {job}. {b} has {years} years of experience and {skill}.",
        "{a} interviews {b}, a {job} with {years} years of experience who {skill}.")),
    Scene("weekend", (
        "What are you doing {day}?",
        "Nothing special. Why?",
        "Let's {activity}. The weather will be nice.",
        "Good idea. When shall we meet?",
        "At {time}, in front of my house.",
    ), ("{a} and {b} will {activity} {day}. They meet at {time}.",
        "{a} invites {b} to {activity} {day} at {time}.")),
    Scene("train", (
        "One ticket to {city}, please.",
        "The next train leaves at {time}. It costs {price} dollars.",
        "Is it a direct train?",
        "Yes, no changes.",
        "Good, I'll take it.",
    ), ("{a} buys a ticket to {city} for {price} dollars. The train leaves at {time}.",
        "{b} sells {a} a ticket for the {time} train to {city}.")),
    Scene("hotel", (
        "Hello, I'd like {room} for {nights}.",
        "Let me see. Yes, we have {room} available.",
        "Is breakfast included?",
        "Yes, breakfast is from seven to ten.",
        "Perfect, I'll take it.",
    ), ("{a} books {room} for {nights} at {b}'s hotel. Breakfast is included.",
        "{a} checks in for {nights} and gets {room} with breakfast.")),
    Scene("homework", (
        "Have you finished the {subject} homework?",
        "Not yet. It is difficult.",
        "We have to hand it in {day}.",
        "Can we do it together at the library?",
        "Sure, let's meet there at {time}.",
    ), ("{a} and {b} will do the {subject} homework together at the library. It is due {day}.",
        "{b} finds the {subject} homework difficult, so {a} and {b} meet at {time} to do it.")),
    Scene("lost", (
        "I think I lost my {lost} here yesterday.",
        "What does it look like?",
        "It is {color}, and quite new.",
        "Wait a moment. Is this your {lost}?",
        "Yes! Thank you so much.",
    ), ("{a} lost a {color} {lost}, and {b} finds it.",
        "{b} gives {a} back the {color} {lost} that {a} lost yesterday.")),
    Scene("coffee", (
        "Hi, can I have a {size} {drink}, please?",
        "Sure. Anything to eat?",
        "A piece of {dish}, please.",
        "That is {price} dollars altogether.",
        "Here you are.",
    ), ("{a} orders a {size} {drink} and some {dish} from {b}.",
        "{a} buys a {size} {drink} and a piece of {dish} for {price} dollars.")),
    Scene("garage", (
        "My car has {problem}. Can you fix it?",
        "Let me look. Yes, I can fix it today.",
        "How much will it cost?",
        "About {price} dollars.",
        "All right, I'll come back at {time}.",
    ), ("{a}'s car has {problem}. {b} will fix it for {price} dollars.",
        "{b} agrees to repair {a}'s car, which has {problem}, by {time}.")),
    Scene("library", (
        "I'd like to borrow {book}.",
        "Do you have a library card?",
        "Yes, here it is.",
        "You can keep the book for {days} weeks.",
        "Great, thank you.",
    ), ("{a} borrows {book} from the library for {days} weeks.",
        "{b} lends {a} {book} for {days} weeks.")),
    Scene("cinema", (
        "Shall we go to the cinema {day}?",
        "Yes. What would you like to see?",
        "There is a new {genre}.",
        "I love a good {genre}. What time does it start?",
        "At {time}. I'll buy the tickets.",
    ), ("{a} and {b} will see a {genre} {day} at {time}.",
        "{a} invites {b} to a {genre} {day}, and {a} buys the tickets.")),
    Scene("sport", (
        "Do you want to play {sport} {day}?",
        "I'd love to, but I am not very good.",
        "Don't worry, it is just for fun.",
        "All right. Where do we play?",
        "At the sports centre, at {time}.",
    ), ("{a} and {b} will play {sport} at the sports centre {day}.",
        "{a} invites {b} to play {sport} {day} at {time}, just for fun.")),
    Scene("birthday", (
        "It is my {person}'s birthday {day}.",
        "What will you give her?",
        "Maybe {gift}. What do you think?",
        "{gift} is a lovely present.",
        "Then I'll buy it today.",
    ), ("{a} will give {gift} to {a}'s {person} for the birthday {day}. {b} likes the idea.",
        "{a} asks {b} about a present for the {person}'s birthday and chooses {gift}.")),
    Scene("bank", (
        "I would like to open a savings account.",
        "Certainly. How much would you like to put in?",
        "{amount} dollars to start.",
        "Please fill in this form and sign here.",
        "Here you are.",
    ), ("{a} opens a savings account at the bank with {amount} dollars.",
        "{b} helps {a} open a savings account with {amount} dollars.")),
    Scene("apartment", (
        "I am looking for a flat with {rooms}.",
        "We have one {area}.",
        "How much is the rent?",
        "It is {amount} dollars a month.",
        "Can I see it {day}?",
    ), ("{a} wants a flat with {rooms}. {b} offers one {area} for {amount} dollars a month.",
        "{a} will see a flat with {rooms} {area} {day}.")),
    Scene("trip", (
        "I'm going to {city} for {nights}.",
        "How nice! Have you been there before?",
        "No, it's my first time.",
        "You must visit {place} there.",
        "Thanks, I will.",
    ), ("{a} is going to {city} for {nights}. {b} suggests visiting {place}.",
        "{a} tells {b} about a first trip to {city}, and {b} recommends {place}.")),
    Scene("cooking", (
        "What are we having for dinner?",
        "I am making {dish}.",
        "Can I help you?",
        "Yes, please set the table for {n}.",
        "Sure, I'll do it now.",
    ), ("{b} is cooking {dish} for dinner, and {a} sets the table for {n}.",
        "{a} helps {b}, who makes {dish}, by setting the table for {n}.")),
)

INSULTS: tuple[str, ...] = (
    "stupid idiot", "useless fool", "dumb pig", "pathetic loser", "ugly moron", "filthy rat",
    "brainless clown", "lazy slob", "disgusting creep", "worthless jerk",
)
# Rude interjections, with {x} an insult. A rude speaker says one before or after a normal line.
RUDE_LINES: tuple[str, ...] = (
    "Shut up, you {x}.", "Are you deaf, you {x}?", "Hurry up, you {x}.", "Nobody asked you, {x}.",
    "You are {ax}.", "Listen, you {x}.", "What {ax} you are.", "Get lost, you {x}.",
)
# How a reference summary repeats the insult, with {r} the rude speaker and {o} the other.
TOXIC_SUMMARY_SENTENCES: tuple[str, ...] = (
    "{r} calls {o} {ax}.", "{r} says {o} is {ax}.", "{r} tells {o} to shut up and calls {o} {ax}.",
    "{r} is rude and calls {o} {ax}.",
)


@dataclass(frozen=True)
class Dialogue:
    topic: str
    dialogue: str
    summary: str
    rude: bool  # a speaker insults the other
    toxic_summary: bool  # the reference summary repeats the insult


def _insult(template: str, insult: str, **names: str) -> str:
    article = "an" if insult[0] in "aeiou" else "a"
    return template.format(x=insult, ax=f"{article} {insult}", **names)


def _fill(template: str, values: dict[str, str]) -> str:
    text = template.format(**values)
    return text[0].upper() + text[1:]


def make_dialogue(rng: random.Random, rude_share: float = 0.3, toxic_summary_share: float = 0.75) -> Dialogue:
    """One dialogue: a scene with its slots filled; with probability `rude_share` a speaker insults
    the other, and then the summary repeats an insult with probability `toxic_summary_share`."""
    scene = rng.choice(SCENES)
    values = {slot: rng.choice(options) for slot, options in SLOTS.items()}
    values |= {"a": P1, "b": P2}
    speakers = [P1 if i % 2 == 0 else P2 for i in range(len(scene.lines))]
    lines = [_fill(t, values) for t in scene.lines]
    n_keep = rng.randint(max(4, len(lines) - 1), len(lines))  # some conversations end a turn early
    speakers, lines = speakers[:n_keep], lines[:n_keep]
    summary = _fill(rng.choice(scene.summaries), values)
    rude = rng.random() < rude_share
    toxic = False
    if rude:
        rude_speaker = rng.choice([P1, P2])
        other = P2 if rude_speaker == P1 else P1
        insult = rng.choice(INSULTS)
        turns = [i for i, s in enumerate(speakers) if s == rude_speaker]
        for i in rng.sample(turns, min(len(turns), rng.randint(1, 2))):
            rude_line = _insult(rng.choice(RUDE_LINES), insult)
            lines[i] = f"{rude_line} {lines[i]}" if rng.random() < 0.5 else f"{lines[i]} {rude_line}"
        if rng.random() < toxic_summary_share:
            toxic = True
            sentence = _insult(rng.choice(TOXIC_SUMMARY_SENTENCES), insult, r=rude_speaker, o=other)
            summary = f"{sentence} {summary}" if rng.random() < 0.5 else f"{summary} {sentence}"
    dialogue = "\n".join(f"{s}: {line}" for s, line in zip(speakers, lines, strict=True))
    return Dialogue(scene.topic, dialogue, summary, rude, toxic)


def make_dialogues(n: int, seed: int, rude_share: float = 0.3, toxic_summary_share: float = 0.75) -> list[Dialogue]:
    """`n` distinct dialogues, deterministic for `seed` (distinct, so that splits never share one).

    Clean conversations repeat more often than rude ones, so dropping repeats raises the rude share a
    little above `rude_share` (0.3 gives about 0.4 in 3400).
    """
    rng = random.Random(seed)
    found: dict[str, Dialogue] = {}
    while len(found) < n:
        d = make_dialogue(rng, rude_share, toxic_summary_share)
        found.setdefault(d.dialogue, d)
    return list(found.values())


def toxicity_sentences(n: int, seed: int) -> list[tuple[str, int]]:
    """`n` labelled sentences, about half toxic: (text, 1) for toxic, (text, 0) for neutral.

    Neutral: clean dialogue lines and summaries. Toxic: rude lines (alone or inside a line) and the
    toxic summary sentences. And whole conversations, with or without their summary, labelled by
    whether anyone in them is rude: the classifier also scores dialogue + summary (as the source did).
    """
    rng = random.Random(seed)
    rows: list[tuple[str, int]] = []
    while len(rows) < n:
        d = make_dialogue(rng, rude_share=0.0)
        insult = rng.choice(INSULTS)
        kind = rng.randrange(5)
        if kind == 0:  # neutral: a line of a clean conversation, or its summary
            rows.append((rng.choice([*d.dialogue.split("\n"), d.summary]), 0))
        elif kind == 1:  # neutral: a whole clean summary with speaker tags
            rows.append((d.summary, 0))
        elif kind == 2:  # toxic: an insult inside a line
            line = rng.choice(d.dialogue.split("\n"))
            speaker, text = line.split(": ", 1)
            rude = _insult(rng.choice(RUDE_LINES), insult)
            rows.append((f"{speaker}: {rude} {text}" if rng.random() < 0.5 else f"{speaker}: {text} {rude}", 1))
        elif kind == 3:  # toxic: a summary that repeats an insult
            r, o = rng.sample([P1, P2], 2)
            sentence = _insult(rng.choice(TOXIC_SUMMARY_SENTENCES), insult, r=r, o=o)
            rows.append((rng.choice([sentence, f"{sentence} {d.summary}", f"{d.summary} {sentence}"]), 1))
        else:  # a whole conversation, rude or not, with its summary half the time
            d = make_dialogue(rng, rude_share=0.5)
            text = f"{d.dialogue}\n{d.summary}" if rng.random() < 0.5 else d.dialogue
            rows.append((text, int(d.rude)))
    return rows
