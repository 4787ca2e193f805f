"""The tiny world's science: a hand-written knowledge base and ARC-style questions made from it.

The offline stand-in for ARC-Easy (chapter 06). The knowledge base is a list of relations, each a
small table of (subject, object) facts with the sentence that states a fact and the questions that
ask for one side given the other: "A thermometer measures temperature." gives "Which tool is used to
measure temperature?" (the answer is a subject) and "What does a thermometer measure?" (an object).
Distractors come from the same relation, so they are plausible, and never hold under it. Every
answer is made of words of at least 4 letters, and what a question gives has at least one such word:
InferDPT (`llmtut.inferdpt`) perturbs only such words, so the words that decide an answer are the
ones a privacy budget protects. Everything is deterministic for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LABELS = ("A", "B", "C", "D")


@dataclass(frozen=True)
class Relation:
    """A table of facts with how to state them and ask about them.

    Templates take {s} and {o} (the subject and object as they are) and {a_s} and {a_o} (with "a" or
    "an"); a rendered sentence starts with a capital letter. Each subject appears once, so a question
    that gives the subject has exactly one right object.
    """

    name: str
    family: str
    fact: str  # the sentence that states a fact; rationales quote it
    facts: tuple[tuple[str, str], ...]  # (subject, object)
    ask_subject: tuple[str, ...] = ()  # questions that give the object; the answer is a subject
    ask_object: tuple[str, ...] = ()  # questions that give the subject; the answer is an object
    asked: tuple[str, ...] | None = None  # objects that ask_subject questions are made for (None: all)
    prose: tuple[str, ...] = ()  # other ways to state a fact, for science_prose


@dataclass(frozen=True)
class Fact:
    relation: str
    family: str
    subject: str
    object: str
    sentence: str


@dataclass(frozen=True)
class ScienceQuestion:
    """One multiple-choice question, with ARC's fields plus the fact behind it and a rationale."""

    id: str
    question: str
    choices: dict[str, list[str]]  # {"text": [4 answers], "label": ["A", "B", "C", "D"]}, as on the Hub
    answerKey: str  # ARC's field name
    fact: str
    rationale: str
    family: str


def _by_object(groups: dict[str, tuple[str, ...]]) -> tuple[tuple[str, str], ...]:
    """Facts of a many-to-one relation, written object first: {"mammal": ("whale", ...)}."""
    return tuple((s, o) for o, subjects in groups.items() for s in subjects)


def _pairs(table: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(table.items())


# Vocabulary relations share their sentences: a term (the subject) and its definition (the object).
# Only the definition is given in questions, since definitions are long and full of short words.
_VOCAB_FACT = "The term {s} means {o}."
_VOCAB_ASK = ("Which term means {o}?", "Which term describes {o}?", "What do scientists call {o}?")
_VOCAB_PROSE = ("Scientists use the term {s} for {o}.",)


def _vocab(name: str, family: str, terms: dict[str, str]) -> Relation:
    return Relation(name, family, _VOCAB_FACT, _pairs(terms), ask_subject=_VOCAB_ASK, prose=_VOCAB_PROSE)


RELATIONS: tuple[Relation, ...] = (
    # animals
    Relation(
        "animal_class", "animals", "{a_s} is {a_o}.",
        _by_object({
            "mammal": ("whale", "dolphin", "horse", "rabbit", "tiger", "elephant", "monkey", "kangaroo"),
            "bird": ("eagle", "penguin", "ostrich", "parrot", "sparrow", "robin"),
            "reptile": ("snake", "lizard", "turtle", "crocodile", "tortoise"),
            "amphibian": ("frog", "toad", "salamander", "newt"),
            "fish": ("shark", "salmon", "trout", "tuna", "goldfish"),
            "insect": ("beetle", "butterfly", "grasshopper", "ladybug", "mosquito", "honeybee"),
        }),
        ask_subject=("Which of these animals is {a_o}?", "Which animal is {a_o}?",
                     "Which of these animals belongs to the {o} group?"),
        ask_object=("What kind of animal is {a_s}?", "{a_s} belongs to which group of animals?",
                    "Which group of animals does {a_s} belong to?"),
        prose=("Scientists classify {a_s} as {a_o}.", "{a_s} belongs to the {o} group of animals."),
    ),
    Relation(
        "animal_young", "animals", "A young {s} is called {a_o}.",
        _pairs({
            "frog": "tadpole", "butterfly": "caterpillar", "horse": "foal", "sheep": "lamb",
            "kangaroo": "joey", "duck": "duckling", "swan": "cygnet", "goose": "gosling", "deer": "fawn",
            "chicken": "chick", "eagle": "eaglet",
        }),
        ask_subject=("{a_o} is the young of which animal?", "Which animal begins its life as {a_o}?"),
        ask_object=("What is a young {s} called?", "A baby {s} is called what?"),
        prose=("{a_o} grows up to become {a_s}.",),
    ),
    Relation(
        "animal_diet", "animals", "{a_s} is {a_o}.",
        _by_object({
            "herbivore": ("rabbit", "deer", "giraffe", "zebra", "koala"),
            "carnivore": ("lion", "wolf", "tiger", "hawk", "shark"),
            "omnivore": ("raccoon", "chimpanzee", "crow", "skunk"),
        }),
        ask_subject=("Which of these animals is {a_o}?", "Which animal is {a_o}?"),
        prose=("Scientists call {a_s} {a_o} because of what it eats.",),
    ),
    _vocab("diet_terms", "animals", {
        "herbivore": "an animal that eats only plants",
        "carnivore": "an animal that eats only meat",
        "omnivore": "an animal that eats both plants and animals",
        "insectivore": "an animal that eats mostly insects",
    }),
    _vocab("animal_behavior", "animals", {
        "hibernation": "a long deep sleep that some animals take through the winter",
        "migration": "a long journey that animals make each year to find food or warmth",
        "camouflage": "colors or patterns that help an animal hide in its surroundings",
        "metamorphosis": "a big change in body form as some animals grow, like a caterpillar turning "
                         "into a butterfly",
        "instinct": "a behavior that an animal is born knowing how to do",
    }),
    # ecosystems
    _vocab("ecology", "ecosystems", {
        "predator": "an animal that hunts other animals for food",
        "prey": "an animal that is hunted and eaten by other animals",
        "scavenger": "an animal that feeds on animals that are already dead",
        "decomposer": "a living thing, such as a mushroom, that breaks down dead plants and animals",
        "producer": "a living thing, such as a plant, that makes its own food",
        "habitat": "the natural home of a plant or animal",
        "food chain": "the path of energy as one living thing eats another",
    }),
    Relation(
        "habitat", "ecosystems", "{a_s} lives in the {o}.",
        _by_object({
            "desert": ("camel", "cactus", "roadrunner"),
            "ocean": ("octopus", "jellyfish", "swordfish", "starfish"),
            "arctic": ("polar bear", "walrus", "narwhal"),
            "rainforest": ("toucan", "orangutan", "sloth"),
            "grassland": ("bison", "zebra", "meadowlark"),
            "pond": ("water lily", "duckweed", "cattail"),
        }),
        ask_subject=("Which of these lives in the {o}?", "Which of these would you find in the {o}?"),
        ask_object=("Where does {a_s} live?", "In which habitat would you find {a_s}?"),
        prose=("You can find {a_s} in the {o}.",),
    ),
    # plants
    Relation(
        "plant_part", "plants", "The part of a plant that {o} is the {s}.",
        _pairs({
            "root": "takes in water from the soil",
            "leaf": "makes food from sunlight",
            "stem": "holds the plant up and carries water to the leaves",
            "flower": "makes pollen and seeds",
            "fruit": "holds and protects the seeds",
            "seed": "grows into a new plant",
        }),
        ask_subject=("Which part of a plant {o}?", "In a plant, which part {o}?"),
        prose=("In a plant, the {s} {o}.",),
    ),
    _vocab("plant_terms", "plants", {
        "photosynthesis": "the way plants use sunlight, water and carbon dioxide to make food",
        "pollination": "the moving of pollen from one flower to another",
        "germination": "the start of growth when a seed sprouts",
        "transpiration": "the loss of water vapor through the leaves of a plant",
        "chlorophyll": "the green substance in leaves that captures sunlight",
        "seedling": "a very young plant that has just sprouted",
    }),
    # the human body
    Relation(
        "body_part", "body", "The job of the {s} is to {o}.",
        _pairs({
            "heart": "pump blood", "lungs": "take in oxygen from the air", "stomach": "break down food",
            "brain": "think and remember", "skin": "cover and protect the body",
            "skeleton": "support the body and give it shape", "muscles": "move the bones",
            "kidneys": "filter waste out of the blood", "eyes": "sense light so you can see",
            "ears": "hear sounds", "nose": "smell odors", "tongue": "taste food",
            "teeth": "bite and chew food", "intestines": "absorb nutrients from digested food",
            "nerves": "carry messages between the brain and the body",
        }),
        ask_subject=("Which part of the body is used to {o}?", "Which body part helps you {o}?"),
        prose=("People use their {s} to {o}.",),
    ),
    # matter
    Relation(
        "phase_change", "matter", "{s} is the change in which {o}.",
        _pairs({
            "melting": "solid ice turns into liquid water",
            "freezing": "liquid water turns into solid ice",
            "evaporation": "liquid water turns into water vapor",
            "condensation": "water vapor turns into liquid water",
            "sublimation": "solid ice turns directly into water vapor",
            "deposition": "water vapor turns directly into solid frost",
        }),
        ask_subject=("What is the name of the change in which {o}?", "When {o}, what is this change called?",
                     "Which process happens when {o}?"),
        prose=("When {o}, the change is called {s}.",),
    ),
    Relation(
        "room_temperature_state", "matter", "{s} is {a_o} at room temperature.",
        _by_object({
            "solid": ("iron", "salt", "sand", "wood", "sugar"),
            "liquid": ("milk", "honey", "water", "vinegar", "mercury"),
        }),
        ask_subject=("Which of these is {a_o} at room temperature?",
                     "At room temperature, which of these is {a_o}?"),
        prose=("At room temperature, {s} is {a_o}.",),
    ),
    Relation(
        "change_kind", "matter", "{s} is {a_o}.",
        _by_object({
            "physical change": ("cutting paper", "melting butter", "breaking glass", "freezing water",
                                "folding clothes"),
            "chemical change": ("burning wood", "rusting iron", "baking bread", "rotting fruit",
                                "cooking eggs"),
        }),
        ask_subject=("Which of these is {a_o}?", "Which of these is an example of {a_o}?"),
        prose=("{s} is an example of {a_o}.",),
    ),
    # materials
    Relation(
        "electric_conductor", "materials", "{s} is a good {o} of electricity.",
        _by_object({
            "conductor": ("copper", "aluminum", "silver", "gold"),
            "insulator": ("rubber", "plastic", "glass", "wood"),
        }),
        ask_subject=("Which of these materials is a good {o} of electricity?",
                     "Which material is a good {o} of electricity?"),
    ),
    Relation(
        "floats", "materials", "{a_s} {o} in water.",
        _by_object({
            "floats": ("cork", "wooden block", "apple", "feather", "beach ball"),
            "sinks": ("stone", "iron nail", "glass marble", "steel spoon", "coin"),
        }),
        ask_subject=("Which of these objects {o} in water?",
                     "If you drop these objects into water, which one {o}?"),
        prose=("Drop {a_s} into water and it {o}.",),
    ),
    Relation(
        "magnet", "materials", "A magnet {o} {a_s}.",
        _by_object({
            "attracts": ("iron nail", "steel paperclip", "steel needle", "iron horseshoe"),
            "does not attract": ("wooden spoon", "glass marble", "rubber band", "plastic comb", "copper coin",
                                 "cotton shirt"),
        }),
        ask_subject=("Which of these objects would a magnet attract?",
                     "Which of these objects would stick to a magnet?"),
        asked=("attracts",),  # "which would a magnet not attract?" reads badly; the others are distractors
    ),
    Relation(
        "transparency", "materials", "{s} is {o}.",
        _by_object({
            "transparent": ("clear glass", "clear plastic", "clean water"),
            "translucent": ("frosted glass", "tissue paper", "parchment paper"),
            "opaque": ("cardboard", "brick", "wood"),
        }),
        ask_subject=("Which of these materials is {o}?", "Which material is {o}?"),
    ),
    # forces and energy
    _vocab("forces", "energy", {
        "gravity": "the force that pulls objects toward the center of the Earth",
        "friction": "the force that slows objects when they rub against each other",
        "magnetism": "the force that pulls iron objects toward a magnet",
        "buoyancy": "the upward push of water that helps things float",
        "inertia": "the way an object keeps still or keeps moving until a force acts on it",
    }),
    Relation(
        "energy_source", "energy", "{s} is {a_o} source of energy.",
        _by_object({
            "renewable": ("sunlight", "wind", "flowing water", "geothermal heat"),
            "nonrenewable": ("coal", "petroleum", "uranium"),
        }),
        ask_subject=("Which of these is {a_o} source of energy?", "Which energy source is {o}?"),
    ),
    Relation(
        "energy_device", "energy", "{a_s} changes {o}.",
        _pairs({
            "solar panel": "sunlight into electricity", "light bulb": "electricity into light",
            "loudspeaker": "electricity into sound", "microphone": "sound into electricity",
            "electric motor": "electricity into motion", "generator": "motion into electricity",
            "battery": "stored chemical energy into electricity",
        }),
        ask_subject=("Which device changes {o}?", "Which of these devices changes {o}?"),
    ),
    Relation(
        "simple_machine", "energy", "{a_s} is {o}.",
        _pairs({
            "lever": "a stiff bar that turns on a fixed point",
            "pulley": "a wheel with a rope around it, used to lift loads",
            "inclined plane": "a flat sloping surface, like a ramp",
            "wedge": "two sloping sides that meet in a sharp edge, used to split things",
            "screw": "a ramp wrapped around a post",
        }),
        ask_subject=("Which simple machine is {o}?", "What do we call a simple machine that is {o}?"),
    ),
    _vocab("light_and_sound", "energy", {
        "reflection": "light bouncing off a smooth surface such as a mirror",
        "refraction": "light bending as it passes from air into water",
        "shadow": "a dark shape made when an object blocks light",
        "echo": "a sound that bounces off a surface and comes back",
        "vibration": "a fast back and forth movement that makes sound",
        "pitch": "the highness or lowness of a sound",
    }),
    # tools
    Relation(
        "measures", "tools", "{a_s} measures {o}.",
        _pairs({
            "thermometer": "temperature", "ruler": "length", "balance": "mass", "stopwatch": "time",
            "graduated cylinder": "volume", "anemometer": "wind speed", "rain gauge": "rainfall",
            "barometer": "atmospheric pressure", "hygrometer": "humidity",
        }),
        ask_subject=("Which tool is used to measure {o}?", "Which instrument measures {o}?",
                     "A student wants to measure {o}. Which tool should the student use?"),
        ask_object=("What does {a_s} measure?", "What is {a_s} used to measure?"),
        prose=("Scientists use {a_s} to measure {o}.", "To measure {o}, use {a_s}."),
    ),
    Relation(
        "observes", "tools", "A scientist uses {a_s} to {o}.",
        _pairs({
            "telescope": "look at distant planets and stars", "microscope": "look at tiny living cells",
            "compass": "find which direction is north", "wind vane": "see which way the breeze is blowing",
            "seismograph": "record the shaking of the ground in an earthquake",
        }),
        ask_subject=("Which tool would a scientist use to {o}?", "Which of these tools is used to {o}?"),
    ),
    # earth science
    _vocab("earth_terms", "earth", {
        "erosion": "the moving of soil and rock from one place to another by wind, water or ice",
        "weathering": "the slow breaking of rock into smaller pieces",
        "fossil": "the remains or traces of an ancient living thing preserved in rock",
        "magma": "melted rock deep under the ground",
        "lava": "melted rock that flows out onto the surface of the Earth",
        "earthquake": "a sudden shaking of the ground",
        "volcano": "an opening in the crust of the Earth where lava comes out",
        "glacier": "a huge, slow-moving sheet of ice",
        "igneous rock": "rock that forms when melted rock cools and hardens",
        "sedimentary rock": "rock that forms from layers of sand and mud pressed together",
        "metamorphic rock": "rock that forms when heat and pressure change another rock",
    }),
    Relation(
        "rock_kind", "earth", "{s} is {a_o} rock.",
        _by_object({
            "igneous": ("granite", "basalt", "obsidian"),
            "sedimentary": ("sandstone", "limestone", "shale"),
            "metamorphic": ("marble", "slate", "quartzite"),
        }),
        ask_subject=("Which of these is {a_o} rock?", "Which of these rocks is {o}?"),
    ),
    # space
    _vocab("space_terms", "space", {
        "star": "a huge ball of hot glowing gas that gives off its own light",
        "planet": "a large round object that orbits a star",
        "moon": "a natural object that orbits a planet",
        "orbit": "the curved path of an object around a star or planet",
        "axis": "the imaginary line that a planet spins around",
        "rotation": "one full spin of a planet on its axis",
        "revolution": "one full trip of a planet around the Sun",
        "comet": "a ball of ice and dust with a long glowing tail",
        "asteroid": "a rocky object that orbits the Sun, mostly between Mars and Jupiter",
        "meteor": "a streak of light made when a space rock burns up in the air",
        "galaxy": "a huge system of billions of stars held together by gravity",
        "constellation": "a group of stars that forms a picture in the night sky",
    }),
    Relation(
        "solar_system", "space", "{s} is {o}.",
        _pairs({
            "Mercury": "the planet closest to the Sun", "Venus": "the hottest planet in our solar system",
            "Earth": "the only planet known to have living things",
            "Mars": "the planet covered in rusty red dust",
            "Jupiter": "the largest planet in our solar system",
            "Saturn": "the planet with the brightest rings",
            "Uranus": "the planet that spins on its side", "Neptune": "the planet farthest from the Sun",
        }),
        ask_subject=("Which of these is {o}?", "In our solar system, which of these is {o}?"),
    ),
    # weather
    Relation(
        "cloud_kind", "weather", "{s} clouds are {o}.",
        _pairs({
            "cumulus": "puffy and white like cotton", "stratus": "flat and gray like a blanket",
            "cirrus": "thin and wispy, high in the sky",
            "cumulonimbus": "tall and dark, and bring thunderstorms",
        }),
        ask_subject=("Which clouds are {o}?", "What are clouds called that are {o}?"),
    ),
    _vocab("weather_terms", "weather", {
        "precipitation": "water that falls from clouds as rain, snow, sleet or hail",
        "runoff": "rainwater that flows over the ground into streams",
        "groundwater": "water stored in soil and rock under the ground",
        "humidity": "the amount of water vapor in the air",
        "climate": "the usual weather of a place over many years",
        "drought": "a long time with very little rain",
        "flood": "water that covers land that is usually dry",
        "hurricane": "a huge spinning storm that forms over warm ocean water",
        "tornado": "a spinning column of air that reaches down from a storm cloud to the ground",
        "blizzard": "a long snowstorm with strong winds",
        "thunder": "the loud sound that follows a flash of lightning",
        "lightning": "a giant spark of electricity in a storm cloud",
        "frost": "thin ice that forms on cold surfaces on clear nights",
    }),
)
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(r.family for r in RELATIONS))
_RELATION = {r.name: r for r in RELATIONS}


def _with_article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def render(template: str, s: str = "", o: str = "") -> str:
    """A template with a subject and an object filled in, starting with a capital letter."""
    text = template.format(s=s, o=o, a_s=_with_article(s), a_o=_with_article(o))
    return text[:1].upper() + text[1:]


FACTS: tuple[Fact, ...] = tuple(
    Fact(r.name, r.family, s, o, render(r.fact, s, o)) for r in RELATIONS for s, o in r.facts
)


def _facts(families: Sequence[str] | None) -> list[Fact]:
    if families is not None and (unknown := set(families) - set(FAMILIES)):
        raise ValueError(f"unknown families {sorted(unknown)}; choose from {FAMILIES}")
    return [f for f in FACTS if families is None or f.family in families]


def _directions(fact: Fact) -> list[str]:
    """What a question about this fact can ask for: its "subject", its "object", or both."""
    r = _RELATION[fact.relation]
    out = []
    if r.ask_subject and (r.asked is None or fact.object in r.asked):
        out.append("subject")
    if r.ask_object:
        out.append("object")
    return out


def _question(fact: Fact, ask: str, rng: random.Random, qid: str) -> ScienceQuestion:
    r = _RELATION[fact.relation]
    if ask == "subject":
        text = render(rng.choice(r.ask_subject), o=fact.object)
        answer = fact.subject
        pool = [s for s, o in r.facts if o != fact.object]  # subjects are unique: none of these holds
    else:
        text = render(rng.choice(r.ask_object), s=fact.subject)
        answer = fact.object
        pool = sorted({o for _, o in r.facts} - {fact.object})
    texts = rng.sample(pool, 3)
    position = rng.randrange(4)  # uniform over A-D
    texts.insert(position, answer)
    return ScienceQuestion(
        id=qid,
        question=text,
        choices={"text": texts, "label": list(LABELS)},
        answerKey=LABELS[position],
        fact=fact.sentence,
        rationale=f"{fact.sentence} So the answer is {answer}.",
        family=fact.family,
    )


def make_questions(n: int, seed: int, families: Sequence[str] | None = None) -> list[ScienceQuestion]:
    """`n` distinct questions (by question text and choices), deterministic for `seed`.

    A fact is drawn uniformly, then what to ask about it, a question form and three distractors from
    its relation. `families` keeps only some families of FAMILIES (all by default).
    """
    rng = random.Random(seed)
    facts = [f for f in _facts(families) if _directions(f)]
    found: dict[tuple[str, tuple[str, ...]], ScienceQuestion] = {}
    misses = 0  # draws in a row that gave a question already found
    while len(found) < n:
        fact = rng.choice(facts)
        q = _question(fact, rng.choice(_directions(fact)), rng, f"TinyARC_{seed}_{len(found):05d}")
        key = (q.question, tuple(q.choices["text"]))
        misses = misses + 1 if key in found else 0
        if misses > 10_000:
            raise ValueError(
                f"found only {len(found)} distinct questions in families {families}; ask for fewer"
            )
        found.setdefault(key, q)
    return list(found.values())


def to_arc_records(questions: Sequence[ScienceQuestion]) -> list[dict[str, Any]]:
    """Rows shaped like the Hub's ARC-Easy (id, question, choices {text, label}, answerKey)."""
    return [
        {
            "id": q.id,
            "question": q.question,
            "choices": {"text": list(q.choices["text"]), "label": list(q.choices["label"])},
            "answerKey": q.answerKey,
        }
        for q in questions
    ]


def science_prose(n_docs: int, seed: int, families: Sequence[str] | None = None) -> list[str]:
    """Paragraphs of three to six facts, mostly of one family, for pretraining.

    Facts are taken in rounds: each round, every fact once, the families in a random order and the
    facts shuffled within each. A fact's first appearance uses its fact sentence (the one rationales
    quote), later ones any of its relation's sentences. So every fact appears, in its fact sentence,
    once `n_docs * 3 >= len(FACTS)` (for the families asked for).
    """
    rng = random.Random(seed)
    facts = _facts(families)
    queue: list[Fact] = []
    seen: set[Fact] = set()
    docs = []
    for _ in range(n_docs):
        k = rng.randint(3, 6)
        while len(queue) < k:
            order = list(dict.fromkeys(f.family for f in facts))
            rng.shuffle(order)
            for family in order:
                group = [f for f in facts if f.family == family]
                rng.shuffle(group)
                queue += group
        sentences = []
        for fact in queue[:k]:
            r = _RELATION[fact.relation]
            form = rng.choice((r.fact, *r.prose)) if fact in seen else r.fact
            seen.add(fact)
            sentences.append(render(form, fact.subject, fact.object))
        del queue[:k]
        docs.append(" ".join(sentences))
    return docs
