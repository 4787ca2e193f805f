"""The tiny world's instruction tasks: Alpaca-style records with one short, correct answer each.

Eight tasks (spelling, plural, antonym, translate, capitalize, uppercase, arithmetic, simile) in a
few phrasings each, from small hand-written word lists; `tiny_instruction_records` draws the `tiny`
profile's stand-in for the source's 1100-record instruction JSON, and `knowledge_prose` writes the
facts behind the tasks as plain prose for the tiny GPT-2's pretraining (`llmtut.world.bases`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from llmtut.formats import Record
from llmtut.world.words import WORD_PAIRS

# Each word occurs in one pair only, so every antonym question has one answer.
ANTONYMS: tuple[tuple[str, str], ...] = (
    ("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad"), ("good", "bad"),
    ("rich", "poor"), ("strong", "weak"), ("easy", "difficult"), ("clean", "dirty"),
    ("open", "close"), ("light", "dark"), ("up", "down"), ("left", "right"), ("day", "night"),
    ("black", "white"), ("tall", "short"), ("early", "late"), ("full", "empty"), ("wet", "dry"),
    ("hard", "soft"), ("buy", "sell"), ("win", "lose"), ("push", "pull"), ("give", "take"),
    ("begin", "end"), ("love", "hate"), ("always", "never"), ("inside", "outside"),
    ("above", "below"), ("before", "after"), ("first", "last"), ("true", "false"),
    ("loud", "quiet"), ("thick", "thin"), ("wide", "narrow"), ("deep", "shallow"),
    ("sweet", "sour"), ("beautiful", "ugly"), ("friend", "enemy"), ("question", "answer"),
    ("remember", "forget"), ("increase", "decrease"), ("north", "south"), ("east", "west"),
    ("asleep", "awake"), ("alive", "dead"), ("cheap", "expensive"), ("safe", "dangerous"),
    ("polite", "rude"), ("laugh", "cry"), ("top", "bottom"), ("young", "old"),
)

# Plurals the suffix rules of `plural` get wrong (and -f/-fe/-o nouns, which vary).
IRREGULAR_PLURALS: dict[str, str] = {
    "child": "children", "man": "men", "woman": "women", "mouse": "mice", "tooth": "teeth",
    "foot": "feet", "goose": "geese", "person": "people", "ox": "oxen", "sheep": "sheep",
    "fish": "fish", "deer": "deer", "leaf": "leaves", "wolf": "wolves", "knife": "knives",
    "life": "lives", "wife": "wives", "half": "halves", "shelf": "shelves", "loaf": "loaves",
    "thief": "thieves", "potato": "potatoes", "tomato": "tomatoes", "hero": "heroes",
    "cactus": "cacti", "roof": "roofs", "piano": "pianos", "photo": "photos",
}
# Countable nouns that follow the rules: -s, -es after s/x/z/ch/sh, consonant + y -> -ies.
REGULAR_NOUNS: tuple[str, ...] = (
    "mother", "father", "brother", "sister", "son", "daughter", "friend", "teacher", "doctor",
    "king", "queen", "dog", "cat", "horse", "cow", "bird", "pig", "chicken", "rabbit", "bear",
    "snake", "frog", "lion", "monkey", "duck", "bee", "ant", "tree", "flower", "star",
    "river", "mountain", "forest", "island", "lake", "cloud", "beach", "apple", "egg",
    "orange", "lemon", "cake", "onion", "house", "door", "window", "table", "chair", "bed",
    "book", "pen", "key", "cup", "plate", "spoon", "clock", "lamp", "mirror", "box", "bag",
    "shoe", "shirt", "hat", "car", "train", "boat", "ship", "bicycle", "road", "bridge",
    "city", "village", "school", "church", "garden", "kitchen", "letter", "ball", "game",
    "song", "head", "hand", "eye", "ear", "mouth", "nose", "heart", "day", "night", "week",
    "year", "hour", "baby", "lady", "party", "story", "family", "country", "cherry", "berry",
    "bus", "glass", "dish", "brush", "fox", "watch", "peach", "bench", "boy", "toy", "valley",
    "donkey", "dress", "class", "kiss", "wish", "lunch", "match", "tax", "quiz", "army",
)

# Simile rewrites: "The car is very fast." -> "The car is as fast as a cheetah."
# adjective -> (what it is compared with, subjects that plausibly have the property).
SIMILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "fast": ("a cheetah", ("car", "train", "horse", "runner", "boat")),
    "slow": ("a snail", ("bus", "river", "queue", "turtle", "computer")),
    "strong": ("an ox", ("man", "wind", "coffee", "rope", "horse")),
    "busy": ("a bee", ("teacher", "kitchen", "doctor", "street", "baker")),
    "cold": ("ice", ("water", "room", "wind", "night", "soup")),
    "white": ("snow", ("shirt", "cat", "wall", "cloud", "paper")),
    "light": ("a feather", ("bag", "box", "blanket", "jacket", "basket")),
    "quiet": ("a mouse", ("child", "library", "house", "village", "student")),
    "brave": ("a lion", ("soldier", "girl", "boy", "firefighter", "knight")),
    "tall": ("a giraffe", ("tree", "tower", "man", "building", "player")),
    "big": ("an elephant", ("dog", "truck", "house", "ship", "box")),
    "hot": ("fire", ("oven", "sand", "tea", "summer", "stove")),
    "sweet": ("honey", ("cake", "apple", "tea", "juice", "orange")),
    "hard": ("a rock", ("bread", "floor", "bed", "cheese", "ground")),
    "soft": ("a pillow", ("bed", "sofa", "cat", "blanket", "bread")),
    "bright": ("the sun", ("lamp", "room", "star", "screen", "morning")),
    "wise": ("an owl", ("teacher", "king", "grandmother", "judge", "woman")),
    "red": ("a rose", ("dress", "apple", "car", "door", "sky")),
    "dry": ("a bone", ("ground", "bread", "towel", "garden", "field")),
    "flat": ("a pancake", ("road", "field", "tyre", "ball", "land")),
    "heavy": ("lead", ("bag", "box", "door", "suitcase", "stone")),
    "sharp": ("a razor", ("knife", "pencil", "sword", "needle", "axe")),
    "smooth": ("silk", ("road", "skin", "stone", "table", "sea")),
    "proud": ("a peacock", ("father", "mother", "king", "player", "winner")),
    "clear": ("crystal", ("water", "sky", "glass", "lake", "voice")),
    "green": ("grass", ("shirt", "field", "leaf", "door", "bottle")),
    "blue": ("the sky", ("sea", "car", "dress", "wall", "lake")),
    "hungry": ("a wolf", ("boy", "dog", "baby", "student", "cat")),
    "gentle": ("a lamb", ("nurse", "horse", "giant", "dog", "father")),
    "deep": ("the ocean", ("lake", "river", "hole", "well", "voice")),
    "old": ("the hills", ("castle", "tree", "man", "church", "bridge")),
    "cool": ("a cucumber", ("pilot", "player", "driver", "captain", "singer")),
}
DETERMINERS: tuple[str, ...] = ("The", "My", "Our", "Her", "His", "This", "That", "Their", "Your")

# Parts of the plain sentences of the capitalisation tasks.
SENTENCE_DETS: tuple[str, ...] = ("the", "my", "our", "her", "his", "this", "that", "your")  # no "a": "a old"
SENTENCE_ADJS: tuple[str, ...] = (
    "small", "big", "old", "young", "happy", "sad", "hungry", "tired", "brown", "little", "quiet", "clever",
)
SENTENCE_PEOPLE: tuple[str, ...] = ("teacher", "doctor", "boy", "girl", "man", "woman", "farmer", "baker")
SENTENCE_ANIMALS: tuple[str, ...] = ("dog", "cat", "horse", "bird", "rabbit", "duck")
SENTENCE_PREDICATES: tuple[str, ...] = (  # anyone, person or animal
    "sleeps in the garden", "runs to the river", "eats the bread", "sits near the window",
    "swims in the lake", "waits by the door", "plays with a ball", "looks at the moon",
    "drinks cold water", "likes the rain",
)
PEOPLE_PREDICATES: tuple[str, ...] = (
    "walks to school", "lives in a small village", "sings a song", "reads a book", "cooks the soup",
)


def plural(noun: str) -> str:
    """The plural of an English noun: the irregular list first, then the suffix rules."""
    if noun in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


# One-edit slips of the rules below that happen to be (or look like) real words, found by reading
# all of them: asking to correct "loin" into "lion" would teach nonsense.
REAL_WORD_SLIPS = frozenset(
    {"god", "clod", "loin", "slat", "snog", "mousse", "potto", "mon", "dor", "por", "helo", "forrest",
     "sumer", "bal", "tre", "sel", "wek", "fot", "cok", "bok", "spon", "toth"}
)


def misspellings(word: str) -> list[str]:
    """Typical one-edit slips of `word`, in a fixed order: two adjacent inner letters swapped (the
    first and last letters stay: "baer" for "bear"), a consonant doubled, not the first ("wollf"),
    a doubled letter written once ("aple"), or in words of six letters or more an inner vowel
    dropped ("frend"). The word itself is never among them."""
    out: dict[str, None] = {}  # an ordered set
    n = len(word)
    for i in range(1, n - 2):
        out[word[:i] + word[i + 1] + word[i] + word[i + 2 :]] = None  # swap
    for i in range(1, n):
        if word[i] not in "aeiouy":
            out[word[: i + 1] + word[i:]] = None  # double
    for i in range(1, n - 1):
        if word[i] == word[i + 1] or (n >= 6 and word[i] in "aeiou"):
            out[word[:i] + word[i + 1 :]] = None  # drop
    out.pop(word, None)  # swapping two equal letters changes nothing
    return list(out)


def _spelling_items() -> list[tuple[str, str]]:
    # Words of 4+ letters (a misspelt "sun" is hardly a word to recognise). A misspelling is kept
    # only when it is not a known word and comes from one word, so the correction is unique.
    words = sorted(w for w in WORD_PAIRS if len(w) >= 4)
    known = set(WORD_PAIRS) | set(REGULAR_NOUNS) | set(IRREGULAR_PLURALS) | {w for p in ANTONYMS for w in p}
    sources: dict[str, list[str]] = {}
    for w in words:
        for m in misspellings(w):
            sources.setdefault(m, []).append(w)
    return [(m, ws[0]) for m, ws in sources.items() if len(ws) == 1 and m not in known | REAL_WORD_SLIPS]


def _arithmetic_items() -> list[tuple[str, str]]:
    items = [(f"{a} + {b}", str(a + b)) for a in range(1, 21) for b in range(1, 21)]
    items += [(f"{a} - {b}", str(a - b)) for a in range(2, 21) for b in range(1, a)]  # never negative
    items += [(f"{a} * {b}", str(a * b)) for a in range(2, 13) for b in range(2, 13)]
    return items


def _sentences() -> list[str]:
    """Plain lowercase sentences: "the hungry dog sleeps in the garden."."""
    subjects = [(n, SENTENCE_PREDICATES + PEOPLE_PREDICATES) for n in SENTENCE_PEOPLE]
    subjects += [(n, SENTENCE_PREDICATES) for n in SENTENCE_ANIMALS]
    return [f"{d} {a} {n} {p}." for n, preds in subjects for p in preds for d in SENTENCE_DETS for a in SENTENCE_ADJS]


def _simile_items() -> list[tuple[str, str]]:
    return [
        (f"{d} {s} is very {adj}.", f"{d} {s} is as {adj} as {like}.")
        for adj, (like, subjects) in SIMILES.items()
        for s in subjects
        for d in DETERMINERS
    ]


def knowledge_prose(n_docs: int, seed: int) -> list[str]:
    """The facts behind the tasks (plurals, opposites, similes, sums, sentences in capitals), written
    as plain prose and never in an instruction format: what a base model may have read before it is
    instruction-tuned. The tiny GPT-2 is pretrained on it (`llmtut.world.bases.gpt2_base`)."""
    rng = random.Random(seed)
    nouns = [*REGULAR_NOUNS, *IRREGULAR_PLURALS]
    sentences = _sentences()

    def fact() -> str:
        kind = rng.randrange(6)
        if kind == 0:
            noun = rng.choice(nouns)
            many = plural(noun)
            return rng.choice([f"One {noun}, two {many}.", f"I saw a {noun} and then many {many}.",
                               f"The {many} were here; one {noun} stayed."])
        if kind == 1:
            a, b = rng.choice(ANTONYMS)
            a, b = (b, a) if rng.random() < 0.5 else (a, b)
            return rng.choice([f"{a.capitalize()} is the opposite of {b}.", f"The opposite of {a} is {b}.",
                               f"Not {a} but {b}."])
        if kind == 2:
            adj = rng.choice(list(SIMILES))
            like, subjects = SIMILES[adj]
            det, subject = rng.choice(DETERMINERS), rng.choice(subjects)
            return rng.choice([f"{det} {subject} is as {adj} as {like}.",
                               f"{det} {subject} was very {adj}, as {adj} as {like}."])
        if kind == 3:
            a, b = rng.randrange(1, 20), rng.randrange(1, 20)
            return rng.choice([f"{a} plus {b} is {a + b}.", f"{a} + {b} = {a + b}.",
                               f"{max(a, b)} - {min(a, b)} = {max(a, b) - min(a, b)}."])
        sentence = rng.choice(sentences)
        sentence = sentence[0].upper() + sentence[1:]
        return sentence.upper() if kind == 4 and rng.random() < 0.3 else sentence

    return [" ".join(fact() for _ in range(rng.randrange(4, 9))) for _ in range(n_docs)]


# task -> (phrasings, items). A phrasing is (instruction, input) with "{x}" where the item's input
# goes: in the input field, or inside the instruction with an empty input (Alpaca without
# "### Input:"). An item is (x, output).
Phrasings = tuple[tuple[str, str], ...]
TASKS: dict[str, tuple[Phrasings, Callable[[], list[tuple[str, str]]]]] = {
    "spelling": (
        (
            ("Correct the spelling of the word.", "{x}"),
            ("Fix the misspelled word.", "{x}"),
            ("Spell the given word correctly.", "{x}"),
            ("What is the correct spelling of '{x}'?", ""),
            ("The word '{x}' is misspelled. Write it correctly.", ""),
        ),
        _spelling_items,
    ),
    "plural": (
        (
            ("Convert the noun to its plural form.", "{x}"),
            ("Give the plural of the word.", "{x}"),
            ("Write the plural form of the following noun.", "{x}"),
            ("What is the plural of '{x}'?", ""),
            ("What is the plural form of '{x}'?", ""),
        ),
        lambda: [(n, plural(n)) for n in (*REGULAR_NOUNS, *IRREGULAR_PLURALS)],
    ),
    "antonym": (
        (
            ("Provide an antonym for the word.", "{x}"),
            ("Write the opposite of the given word.", "{x}"),
            ("Give the antonym of the following word.", "{x}"),
            ("What is the opposite of '{x}'?", ""),
            ("What is an antonym of '{x}'?", ""),
        ),
        lambda: [pair for a, b in ANTONYMS for pair in ((a, b), (b, a))],
    ),
    "translate": (
        (
            ("Translate the word into Spanish.", "{x}"),
            ("Give the Spanish translation of the following word.", "{x}"),
            ("Translate this English word to Spanish.", "{x}"),
            ("Translate '{x}' into Spanish.", ""),
            ("What is the Spanish word for '{x}'?", ""),
        ),
        lambda: list(WORD_PAIRS.items()),
    ),
    "capitalize": (
        (
            ("Capitalize the first letter of the sentence.", "{x}"),
            ("Rewrite the sentence so that it begins with a capital letter.", "{x}"),
            ("Correct the capitalization of the first word.", "{x}"),
            ("Start this sentence with a capital letter: {x}", ""),
        ),
        lambda: [(s, s[0].upper() + s[1:]) for s in _sentences()],
    ),
    "uppercase": (
        (
            ("Convert the sentence to uppercase.", "{x}"),
            ("Rewrite the text in capital letters.", "{x}"),
            ("Write the following sentence in all caps.", "{x}"),
            ("Convert to uppercase: {x}", ""),
        ),
        lambda: [(s[0].upper() + s[1:], s.upper()) for s in _sentences()],
    ),
    "arithmetic": (
        (
            ("What is {x}?", ""),
            ("Calculate {x}.", ""),
            ("Compute the result.", "{x}"),
            ("Solve the arithmetic problem.", "{x}"),
        ),
        _arithmetic_items,
    ),
    "simile": (
        (
            ("Rewrite the sentence using a simile.", "{x}"),
            ("Rewrite the following sentence with a simile.", "{x}"),
            ("Replace 'very' with a simile.", "{x}"),
            ("Rewrite this sentence using a simile: {x}", ""),
        ),
        _simile_items,
    ),
}


def _task_stream(task: str, rng: random.Random) -> Iterator[Record]:
    """The records of a task, lazily, ordered so that the first ones cover as many items as
    possible: round r gives every (shuffled) item its r-th (shuffled) phrasing."""
    phrasings, make_items = TASKS[task]
    items = make_items()
    rng.shuffle(items)
    orders: list[list[int]] = []  # each item's phrasing order, drawn when the item first comes up
    for r in range(len(phrasings)):
        for i, (x, output) in enumerate(items):
            if r == 0:
                orders.append(rng.sample(range(len(phrasings)), len(phrasings)))
            instruction, inp = phrasings[orders[i][r]]
            yield {"instruction": instruction.format(x=x), "input": inp.format(x=x), "output": output}


def tiny_instruction_records(n: int = 1100, seed: int = 0, with_task: bool = False) -> list[Record]:
    """`n` distinct instruction records from the tiny world, the tasks of `TASKS` in equal shares,
    in a shuffled order. Same `n` and `seed`, same list; a smaller `n` gives a subset of a larger one.
    With `with_task`, each record also names its task under "task" (for tables of the mix; the
    formatters ignore extra keys)."""
    quotas = {t: n // len(TASKS) + (i < n % len(TASKS)) for i, t in enumerate(TASKS)}
    out: list[Record] = []
    seen: set[tuple[str, str, str]] = set()
    for task, quota in quotas.items():
        taken = 0
        # One generator per task, so a task's records do not depend on how many the others took.
        for rec in _task_stream(task, random.Random(f"{seed}:{task}")):
            if taken == quota:
                break
            key = (rec["instruction"], rec["input"], rec["output"])
            if key in seen:
                continue
            seen.add(key)
            out.append({**rec, "task": task} if with_task else rec)
            taken += 1
        if taken < quota:
            raise ValueError(f"n={n} is too many: the {task!r} task has only {taken} distinct records.")
    random.Random(seed).shuffle(out)
    return out
