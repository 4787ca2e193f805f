"""Instruction data: Alpaca-style records, prompt styles, splits, a dataset and a padding collate.

The data side of chapter 01, after rasbt/LLMs-from-scratch ch07. A record is a dict
`{"instruction": str, "input": str, "output": str}` (`input` may be empty). The `hub` profile
downloads the source's 1100 records; the `tiny` profile generates as many from the tiny world
(`tiny_instruction_records`), writes them to JSON and loads them back the same way.
"""

from __future__ import annotations

import json
import random
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch.utils.data import Dataset

from llmtut.profiles import HubUnavailableError, check_profile
from llmtut.world import WORD_PAIRS

Record = dict[str, str]
FIELDS = ("instruction", "input", "output")
SOURCE_URL = (
    "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch07/01_main-chapter-code/instruction-data.json"
)

# ---------------------------------------------------------------------------------------------
# The tiny world's instruction tasks. Every answer is short and the only correct one.
# ---------------------------------------------------------------------------------------------

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
    instruction-tuned. The tiny GPT-2 is pretrained on it (`llmtut.tiny.gpt2_base`)."""
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


# ---------------------------------------------------------------------------------------------
# JSON files, as in the source: one list of objects.
# ---------------------------------------------------------------------------------------------


def validate_records(records: Any) -> list[Record]:
    """`records` itself if it is a list of objects with string fields instruction, input and output;
    otherwise a ValueError naming the record index and the field. Extra keys are allowed."""
    if not isinstance(records, list):
        raise ValueError(f"instruction data must be a list of records (JSON objects), got {type(records).__name__}.")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise ValueError(f"record {i}: expected an object with fields {FIELDS}, got {type(rec).__name__}.")
        for field in FIELDS:
            if field not in rec:
                raise ValueError(f"record {i}: field {field!r} is missing.")
            if not isinstance(rec[field], str):
                raise ValueError(f"record {i}: field {field!r} is {type(rec[field]).__name__}, expected str.")
    return records


def write_records(records: list[Record], path: str | Path) -> Path:
    """Validate `records` and write them as an indented UTF-8 JSON list (accents kept as they are)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(validate_records(records), indent=4, ensure_ascii=False), encoding="utf-8")
    return path


def load_records(path: str | Path) -> list[Record]:
    """Records from a JSON file, validated."""
    return validate_records(json.loads(Path(path).read_text(encoding="utf-8")))


def download_instruction_data(path: str | Path, url: str = SOURCE_URL, timeout: float = 30) -> list[Record]:
    """The `hub` profile's data: download `url` to `path` unless it is there already, then load it.

    A network failure raises HubUnavailableError naming the URL and the `tiny` profile. The file is
    written only once fully downloaded, so a failed download leaves no partial file to be trusted.
    """
    path = Path(path)
    if not path.exists():
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                text = response.read().decode("utf-8")
        except OSError as err:  # URLError, HTTPError, refused connections and timeouts all are
            raise HubUnavailableError(
                f"Could not download the instruction data from {url} ({type(err).__name__}: {err}). "
                "Check your network, or run this chapter offline with PROFILE = 'tiny' "
                "(papermill: -p PROFILE tiny; or set LLMTUT_PROFILE=tiny)."
            ) from err
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return load_records(path)


def load_instruction_data(path: str | Path, profile: str, n: int = 1100, seed: int = 0) -> list[Record]:
    """The chapter's data in `profile`: the source's file (`hub`), or `n` tiny-world records written
    to `path` and loaded back the same way (`tiny`)."""
    if check_profile(profile) == "hub":
        return download_instruction_data(path)
    write_records(tiny_instruction_records(n, seed), path)
    return load_records(path)


# ---------------------------------------------------------------------------------------------
# Prompt styles. `format_*(record)` is the prompt (what the model is given at inference);
# `format_*(record, with_response=True)` appends the response header and the output (training text).
# ---------------------------------------------------------------------------------------------

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
# What separates prompt and output, per style; strip it from generated text to get the answer.
RESPONSE_HEADERS = {"alpaca": "\n\n### Response:\n", "phi3": "\n<|assistant|>\n"}


def format_alpaca(record: Record, with_response: bool = False) -> str:
    """The source's Alpaca prompt; "### Input:" appears only when the input is not empty."""
    text = f"{ALPACA_PREAMBLE}\n\n### Instruction:\n{record['instruction']}"
    if record["input"]:
        text += f"\n\n### Input:\n{record['input']}"
    if with_response:
        text += RESPONSE_HEADERS["alpaca"] + record["output"]
    return text


def format_phi3(record: Record, with_response: bool = False) -> str:
    """Phi-3's chat format: "<|user|>\\n{instruction}[\\n{input}]<|end|>" then "\\n<|assistant|>\\n{output}".

    The source's exercise 7.1 writes "<|user|>\\n{instruction}\\n{input}\\n<|assistant|>:\\n{output}".
    We follow Phi-3's own template instead: "<|end|>" closes the user turn and "<|assistant|>" has no
    colon. The assistant turn is closed by the end-of-text token that `collate` appends (as in the
    Alpaca style), not by a second "<|end|>".
    """
    text = f"<|user|>\n{record['instruction']}"
    if record["input"]:
        text += f"\n{record['input']}"
    text += "<|end|>"
    if with_response:
        text += RESPONSE_HEADERS["phi3"] + record["output"]
    return text


def to_messages(record: Record) -> list[dict[str, str]]:
    """The record as a chat (for `tokenizer.apply_chat_template`): the user says the instruction
    and, on the next line, the input (as in `format_phi3`); the assistant answers with the output."""
    user = record["instruction"] + (f"\n{record['input']}" if record["input"] else "")
    return [{"role": "user", "content": user}, {"role": "assistant", "content": record["output"]}]


Formatter = Callable[..., str]
PROMPT_STYLES: dict[str, Formatter] = {"alpaca": format_alpaca, "phi3": format_phi3}


# ---------------------------------------------------------------------------------------------
# Splitting, the dataset and the collate.
# ---------------------------------------------------------------------------------------------


def split_records(
    records: Sequence[Record], seed: int, fractions: tuple[float, float, float] = (0.85, 0.10, 0.05)
) -> tuple[list[Record], list[Record], list[Record]]:
    """(train, test, validation), in the source's order: shuffle reproducibly by `seed`, then take
    int(n * train) for training, int(n * test) for testing and the rest (about 5%) for validation."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative shares (train, test, val) summing to 1, got {fractions}.")
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    n_train, n_test = int(len(shuffled) * fractions[0]), int(len(shuffled) * fractions[1])
    return shuffled[:n_train], shuffled[n_train : n_train + n_test], shuffled[n_train + n_test :]


class InstructionItem(NamedTuple):
    """A tokenized example and the length of its prompt (instruction + input), for masking."""

    input_ids: list[int]
    prompt_len: int


Encoder = Callable[[str], list[int]]


def _encoder(tokenizer: Any) -> Encoder:
    # A Hugging Face or tiktoken tokenizer has .encode (and HF tokenizers are callable too, but
    # return a BatchEncoding); anything else must be a text -> ids function.
    return tokenizer.encode if hasattr(tokenizer, "encode") else tokenizer


def _common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class InstructionDataset(Dataset):
    """Records pre-tokenized as `formatter(record, with_response=True)`, as in the source.

    An item is a list of token ids, or with `mask_instructions` an `InstructionItem` that also holds
    the prompt length, so `collate(..., mask_instructions=True)` can ignore the prompt's targets.
    The prompt length counts the prompt's tokens that are also the first tokens of the full text:
    when BPE merges a token across the prompt/response boundary, that token is trained on rather
    than a response token masked.
    """

    def __init__(
        self,
        records: Sequence[Record],
        tokenizer: Any,
        formatter: Formatter = format_alpaca,
        mask_instructions: bool = False,
    ):
        encode = _encoder(tokenizer)
        self.records = list(records)
        self.mask_instructions = mask_instructions
        self.encoded_texts: list[list[int]] = []
        self.prompt_lengths: list[int] = []
        for rec in self.records:
            ids = list(encode(formatter(rec, with_response=True)))
            self.encoded_texts.append(ids)
            if mask_instructions:
                self.prompt_lengths.append(_common_prefix_len(encode(formatter(rec)), ids))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> list[int] | InstructionItem:
        if self.mask_instructions:
            return InstructionItem(self.encoded_texts[index], self.prompt_lengths[index])
        return self.encoded_texts[index]


def collate(
    batch: Sequence[Sequence[int] | InstructionItem],
    pad_token_id: int = 50256,
    ignore_index: int = -100,
    allowed_max_length: int | None = None,
    device: str | torch.device = "cpu",
    mask_instructions: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for next-token training, as the source's `custom_collate_fn`.

    Each item gets one end-of-text token (`pad_token_id`, which the model must learn to emit) and is
    padded to the batch's longest item + 1; inputs are all but the last position, targets are shifted
    by one. In targets every pad token but the first becomes `ignore_index`. With `allowed_max_length`
    both are truncated to that length. With `mask_instructions` (items must be `InstructionItem`s)
    the targets that predict prompt tokens, the first prompt_len - 1, are ignored too.

    Raises ValueError for an item left with no target to train on, rather than return it silently.
    """
    if not batch:
        raise ValueError("collate got an empty batch.")
    if allowed_max_length is not None and allowed_max_length < 1:
        raise ValueError(f"allowed_max_length must be at least 1, got {allowed_max_length}.")
    items = []
    for i, item in enumerate(batch):
        if isinstance(item, InstructionItem):
            ids, prompt_len = list(item.input_ids), item.prompt_len
            if not 0 <= prompt_len <= len(ids):
                raise ValueError(f"item {i}: prompt_len={prompt_len} is outside its {len(ids)} tokens.")
        elif mask_instructions:
            raise ValueError(
                f"item {i} is a plain list of ids, so its prompt length is unknown and mask_instructions "
                "cannot mask it. Build the dataset with InstructionDataset(..., mask_instructions=True)."
            )
        else:
            ids, prompt_len = list(item), 0
        items.append((ids, prompt_len))

    batch_max_length = max(len(ids) + 1 for ids, _ in items)
    inputs_lst, targets_lst = [], []
    for i, (ids, prompt_len) in enumerate(items):
        new_item = ids + [pad_token_id]  # the end-of-text token to learn
        padded = new_item + [pad_token_id] * (batch_max_length - len(new_item))
        inputs = torch.tensor(padded[:-1], dtype=torch.long)
        targets = torch.tensor(padded[1:], dtype=torch.long)
        # Keep the first pad target (learn to stop), ignore the padding after it.
        pad_positions = torch.nonzero(targets == pad_token_id).flatten()
        if pad_positions.numel() > 1:
            targets[pad_positions[1:]] = ignore_index
        if mask_instructions and prompt_len > 1:
            # Target j predicts token j + 1, so targets 0 .. prompt_len - 2 predict prompt tokens.
            targets[: prompt_len - 1] = ignore_index
        if allowed_max_length is not None:
            inputs, targets = inputs[:allowed_max_length], targets[:allowed_max_length]
        if bool((targets == ignore_index).all()):
            if mask_instructions and allowed_max_length is not None and prompt_len - 1 >= allowed_max_length:
                why = (
                    f"its prompt is {prompt_len} tokens and allowed_max_length={allowed_max_length} cuts the "
                    f"example before its response starts. Raise allowed_max_length to at least {prompt_len} "
                    f"({len(ids) + 1} keeps the whole response and its end-of-text token), or drop the example"
                )
            else:
                why = "every target is ignore_index. Check pad_token_id, prompt_len and allowed_max_length"
            raise ValueError(f"item {i} has no target to train on: {why}.")
        inputs_lst.append(inputs)
        targets_lst.append(targets)
    return torch.stack(inputs_lst).to(device), torch.stack(targets_lst).to(device)


# The source's toy batch, and what `collate` must make of it (written out by hand, not computed).
TOY_BATCH: tuple[list[int], ...] = ([0, 1, 2, 3, 4], [5, 6], [7, 8, 9])


def toy_collate_expected(
    pad: int = 50256, allowed_max_length: int | None = 4, ignore_index: int = -100
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) that `collate(TOY_BATCH, pad, ignore_index, allowed_max_length)` must return."""
    p, m = pad, ignore_index
    inputs = [[0, 1, 2, 3, 4], [5, 6, p, p, p], [7, 8, 9, p, p]]
    targets = [[1, 2, 3, 4, p], [6, p, m, m, m], [8, 9, p, m, m]]
    if allowed_max_length is not None:
        inputs = [row[:allowed_max_length] for row in inputs]
        targets = [row[:allowed_max_length] for row in targets]
    return torch.tensor(inputs), torch.tensor(targets)
