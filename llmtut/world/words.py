"""The tiny world: a hand-written knowledge base and generators that turn it into corpora.

Everything here is plain Python and deterministic for a seed, so the tiny models built
from it (see `llmtut.world.bases`) are reproducible offline.
"""

from __future__ import annotations

import random

from llmtut.formats import chat_turn

# English -> Spanish. Hand-written; every Spanish word is unique so a translation is unambiguous.
WORD_PAIRS: dict[str, str] = {
    # family and people
    "mother": "madre", "father": "padre", "brother": "hermano", "sister": "hermana",
    "son": "hijo", "daughter": "hija", "grandmother": "abuela", "grandfather": "abuelo",
    "friend": "amigo", "child": "niño", "woman": "mujer", "man": "hombre",
    "teacher": "maestro", "doctor": "médico", "king": "rey", "queen": "reina",
    # animals
    "dog": "perro", "cat": "gato", "horse": "caballo", "cow": "vaca", "bird": "pájaro",
    "fish": "pez", "mouse": "ratón", "pig": "cerdo", "sheep": "oveja", "chicken": "pollo",
    "rabbit": "conejo", "bear": "oso", "wolf": "lobo", "snake": "serpiente", "frog": "rana",
    "lion": "león", "monkey": "mono", "duck": "pato", "bee": "abeja", "ant": "hormiga",
    # nature
    "water": "agua", "tree": "árbol", "flower": "flor", "sun": "sol", "moon": "luna",
    "star": "estrella", "sky": "cielo", "sea": "mar", "river": "río", "mountain": "montaña",
    "rain": "lluvia", "snow": "nieve", "wind": "viento", "fire": "fuego", "earth": "tierra",
    "stone": "piedra", "forest": "bosque", "island": "isla", "lake": "lago", "cloud": "nube",
    "grass": "hierba", "leaf": "hoja", "sand": "arena", "beach": "playa",
    # food and drink
    "bread": "pan", "milk": "leche", "cheese": "queso", "apple": "manzana", "egg": "huevo",
    "meat": "carne", "rice": "arroz", "salt": "sal", "sugar": "azúcar", "coffee": "café",
    "wine": "vino", "orange": "naranja", "lemon": "limón", "butter": "mantequilla",
    "soup": "sopa", "cake": "pastel", "potato": "patata", "onion": "cebolla",
    # home and objects
    "house": "casa", "door": "puerta", "window": "ventana", "table": "mesa", "chair": "silla",
    "bed": "cama", "book": "libro", "pen": "bolígrafo", "key": "llave", "cup": "taza",
    "plate": "plato", "spoon": "cuchara", "knife": "cuchillo", "clock": "reloj",
    "lamp": "lámpara", "mirror": "espejo", "box": "caja", "bag": "bolsa", "shoe": "zapato",
    "shirt": "camisa", "hat": "sombrero", "car": "coche", "train": "tren", "boat": "barco",
    "ship": "buque", "bicycle": "bicicleta", "road": "camino", "bridge": "puente",
    "city": "ciudad", "village": "pueblo", "school": "escuela", "church": "iglesia",
    "garden": "jardín", "kitchen": "cocina", "money": "dinero", "letter": "carta",
    "paper": "papel", "ball": "pelota", "game": "juego", "music": "música", "song": "canción",
    # body
    "head": "cabeza", "hand": "mano", "foot": "pie", "eye": "ojo", "ear": "oreja",
    "mouth": "boca", "nose": "nariz", "heart": "corazón", "hair": "pelo", "tooth": "diente",
    # time
    "day": "día", "night": "noche", "morning": "mañana", "week": "semana", "year": "año",
    "hour": "hora", "summer": "verano", "winter": "invierno", "spring": "primavera",
    # adjectives
    "good": "bueno", "bad": "malo", "big": "grande", "small": "pequeño", "new": "nuevo",
    "old": "viejo", "hot": "caliente", "cold": "frío", "happy": "feliz", "sad": "triste",
    "fast": "rápido", "slow": "lento", "beautiful": "hermoso", "ugly": "feo",
    "strong": "fuerte", "weak": "débil", "rich": "rico", "poor": "pobre", "easy": "fácil",
    "difficult": "difícil", "clean": "limpio", "dirty": "sucio", "red": "rojo",
    "blue": "azul", "green": "verde", "white": "blanco", "black": "negro", "yellow": "amarillo",
    # greetings and small words
    "hello": "hola", "goodbye": "adiós", "thanks": "gracias", "yes": "sí", "please": "favor",
    # verbs
    "eat": "comer", "drink": "beber", "sleep": "dormir", "run": "correr", "walk": "caminar",
    "speak": "hablar", "read": "leer", "write": "escribir", "sing": "cantar", "dance": "bailar",
    "swim": "nadar", "play": "jugar", "work": "trabajar", "live": "vivir", "open": "abrir",
    "close": "cerrar", "buy": "comprar", "sell": "vender", "learn": "aprender", "cook": "cocinar",
}

# Sentence forms of the bilingual prose. The English word is always quoted and preceded by a
# space, the Spanish word unquoted and preceded by a space, as in the chat format the chapters
# use ('How do you say "dog" in Spanish? ... perro').
PROSE_FORMS: tuple[str, ...] = (
    'In Spanish, "{en}" is {es}.',
    'The Spanish word for "{en}" is {es}.',
    'The word "{en}" is {es} in Spanish.',
    'We say {es} for "{en}" in Spanish.',
    'A Spanish speaker calls "{en}" {es}.',
    'If you want to say "{en}" in Spanish, say {es}.',
    'The English word "{en}" translates to {es}.',
    'The Spanish word {es} means "{en}" in English.',
    'My friend from Madrid says {es} when she means "{en}".',
    'Translated into Spanish, "{en}" becomes {es}.',
    'When you need "{en}" in Spanish, the word to use is {es}.',
    'Word list, English to Spanish: "{en}": {es}.',
)
# Little dialogues between two speakers, one line each, separated by blank lines like the
# chats. Neither the speakers nor the questions are the chat chapters' ('### Human:', 'How
# do you say'), so the fine-tuned format stays new to the base model.
SPEAKERS: tuple[tuple[str, str], ...] = (
    ("Student", "Teacher"), ("Ana", "Luis"), ("Tom", "Maria"), ("Tourist", "Guide"), ("Q", "A"),
)
DIALOGUE_QUESTIONS: tuple[str, ...] = (
    'What is "{en}" in Spanish?',
    'What is the Spanish word for "{en}"?',
    'Can you translate "{en}" into Spanish?',
    'And "{en}"?',
)


def bilingual_sentences(pairs: dict[str, str] | None = None) -> list[str]:
    """Every prose form for every word pair, in a fixed order."""
    pairs = WORD_PAIRS if pairs is None else pairs
    return [form.format(en=en, es=es) for en, es in pairs.items() for form in PROSE_FORMS]


def bilingual_prose(n_docs: int, seed: int) -> list[str]:
    """Markdown-like lessons: a '### Lesson' heading, a paragraph of bilingual sentences and a
    short question/answer dialogue, with blank lines between blocks."""
    rng = random.Random(seed)
    words = sorted(WORD_PAIRS)
    docs = []
    for i in range(n_docs):
        paragraph = " ".join(
            rng.choice(PROSE_FORMS).format(en=en, es=WORD_PAIRS[en]) for en in rng.sample(words, 3)
        )
        asker, answerer = rng.choice(SPEAKERS)
        if rng.random() < 0.5:  # transcripts often mark turns as headings
            asker, answerer = f"### {asker}", f"### {answerer}"
        lines = []
        for en in rng.sample(words, rng.randint(1, 3)):
            question = rng.choice(DIALOGUE_QUESTIONS).format(en=en)
            lines += [f"{asker}: {question}", f"{answerer}: {WORD_PAIRS[en]}"]
        blocks = [f"### Lesson {i % 50 + 1}", paragraph, "\n\n".join(lines)]
        if rng.random() < 0.5:
            blocks[1:] = blocks[:0:-1]  # dialogue first, then the paragraph
        docs.append("\n\n".join(blocks))
    return docs


# Chat turns (`llmtut.formats.chat_turn`) of translation questions. Used to train the tokenizer (so that '?\n\n'
# merges as it does in bloom's) and by the chat chapters; never by the base model's pretraining.
QUESTION_FORMS: tuple[str, ...] = (
    'How do you say "{en}" in Spanish?',
    'What is "{en}" in Spanish?',
    'What is the Spanish word for "{en}"?',
    'Can you translate "{en}" into Spanish?',
)


def chat_text(n_chats: int, seed: int, max_turns: int = 3) -> list[str]:
    """Human/assistant conversations of one to `max_turns` translation questions."""
    rng = random.Random(seed)
    words = sorted(WORD_PAIRS)
    chats = []
    for _ in range(n_chats):
        turns = []
        for _ in range(rng.randint(1, max_turns)):
            en = rng.choice(words)
            question = rng.choice(QUESTION_FORMS).format(en=en)
            turns.append(chat_turn(question, WORD_PAIRS[en]))
        chats.append("".join(turns))
    return chats
