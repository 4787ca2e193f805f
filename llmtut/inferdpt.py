"""InferDPT: perturbing a prompt word by word, with differential privacy, before it leaves the machine.

InferDPT (Tong et al., "InferDPT: Privacy-preserving inference for black-box large language models")
replaces each word of a private prompt by a random word of similar meaning before the prompt is sent
to a remote LLM. Meaning is measured in a language model's input-embedding space, restricted to
a vocabulary of whole words (alphabetic tokens of at least `min_letters` letters). For each word:

1. add Laplace noise of scale delta_f / (epsilon / 2) to its embedding;
2. the candidate set is every vocabulary word at least as cosine-similar to the word as the noisy
   vector is (the word itself always qualifies);
3. draw one candidate by the exponential mechanism, with weights exp(epsilon / 2 * similarity).

A small privacy budget epsilon means much noise, a large candidate set and nearly uniform weights:
most words change. A large one keeps most words. PDSS (chapter 06) sends the perturbed questions to
the teacher and lets a small local model recover what the perturbation destroyed.

Differences from the reference implementations (InferDPT's and FATE-LLM's), on purpose:
- similarities are computed with torch when needed, for the words of the text being perturbed,
  instead of precomputed N x N sorted-similarity JSON files: this scales to a 150k-token vocabulary;
- the text is split into runs of letters and everything between them, so it is rebuilt exactly:
  whitespace, punctuation, numbers, short words and words that are not one vocabulary token pass
  through unchanged (the references tokenize, drop or randomize some of these, and re-join);
- the sensitivity delta_f is computed over the kit's own words (the domain of the mechanism). As in
  both references it is per embedding dimension by default (max - min of each column, so the noise
  has one scale per dimension); `sensitivity="global"` uses one scalar, max - min over all values;
- randomness comes from a numpy Generator seeded per call, so a perturbation is reproducible.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

# A run of letters (any script): the unit InferDPT perturbs. Everything between runs is kept as is.
WORD = re.compile(r"[^\W\d_]+")
_SPLIT = re.compile(r"([^\W\d_]+)")  # the same, captured: re.split then alternates gaps and words
# What tokenizers put in front of a word-initial token: a space (after decoding), GPT-2's byte-level
# space, sentencepiece's space.
_MARKERS = (" ", "\u0120", "\u2581")

Sensitivity = Literal["per_dim", "global"]


def _fix_case(word: str, like: str) -> str:
    """`word` with the case of `like`'s first letter (acronyms such as NASA are never lower-cased)."""
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    if like[:1].islower() and not word.isupper():
        return word[:1].lower() + word[1:]
    return word


class InferDPTKit:
    """A word vocabulary with its embeddings and sensitivity: everything InferDPT's perturbation needs.

    Build one from a model with `InferDPTKit.from_model(model, tokenizer)`, keep it with `save(folder)`
    and `InferDPTKit.load(folder)`, and perturb with `perturb(text, epsilon, seed)`.
    """

    def __init__(
        self,
        words: Sequence[str],
        embeddings: torch.Tensor,
        delta_f: torch.Tensor,
        *,
        token_ids: Sequence[int] | None = None,
        min_letters: int = 4,
        sensitivity: Sensitivity = "per_dim",
    ) -> None:
        if len(words) != embeddings.shape[0] or len(set(words)) != len(words):
            raise ValueError(
                f"need one embedding row per distinct word, got {len(words)} words and "
                f"{embeddings.shape[0]} rows."
            )
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.embeddings = embeddings.detach().float().cpu()
        self.delta_f = delta_f.detach().double().cpu()
        self.token_ids = list(token_ids) if token_ids is not None else None
        self.min_letters, self.sensitivity = min_letters, sensitivity
        self._unit = F.normalize(self.embeddings, dim=1)  # unit rows: cosine similarity is a dot product
        self._delta_f64 = self.delta_f.numpy()

    # ----- building, saving, loading -----

    @classmethod
    def from_model(
        cls, model, tokenizer, min_letters: int = 4, sensitivity: Sensitivity = "per_dim",
        word_initial_only: bool = False,
    ) -> InferDPTKit:
        """The kit of a model's input embeddings, over its alphabetic word tokens of >= `min_letters` letters.

        Each token id is decoded and one leading space marker (" ", "Ġ", "▁") stripped; tokens whose
        rest is alphabetic (`str.isalpha`) and long enough are kept. Where several tokens decode to the
        same word (GPT-2's "Ġplanet" and "planet"), the word-initial one is kept: it is the token that
        stands for the whole word in running text. `word_initial_only` drops the others too: pieces
        such as "ects" of "insects" can then never be drawn as a replacement word.
        """
        weight = model.get_input_embeddings().weight.detach().float().cpu()
        special = set(tokenizer.all_special_ids)
        ids = [i for i in range(min(len(tokenizer), weight.shape[0])) if i not in special]
        decoded = tokenizer.batch_decode([[i] for i in ids])
        raw = tokenizer.convert_ids_to_tokens(ids)
        chosen: dict[str, tuple[int, bool]] = {}  # word -> (token id, is word-initial)
        for token_id, text, piece in zip(ids, decoded, raw, strict=True):
            initial = text.startswith(_MARKERS) or str(piece).startswith(_MARKERS)
            word = text[1:] if text.startswith(_MARKERS) else text
            if len(word) < min_letters or not word.isalpha() or (word_initial_only and not initial):
                continue
            if word not in chosen or (initial and not chosen[word][1]):
                chosen[word] = (token_id, initial)
        if not chosen:
            raise ValueError(
                f"No token of this tokenizer decodes to a word of at least {min_letters} letters."
            )
        words = list(chosen)
        token_ids = [chosen[w][0] for w in words]
        embeddings = weight[token_ids]
        if sensitivity == "per_dim":
            delta_f = embeddings.max(dim=0).values - embeddings.min(dim=0).values
        elif sensitivity == "global":
            delta_f = embeddings.max() - embeddings.min()
        else:
            raise ValueError(f"sensitivity must be 'per_dim' or 'global', got {sensitivity!r}.")
        return cls(
            words, embeddings, delta_f, token_ids=token_ids, min_letters=min_letters, sensitivity=sensitivity
        )

    def save(self, folder: str | Path) -> Path:
        """Write the kit to `folder`: tensors.pt (embeddings, delta_f) and kit.json (words, settings)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"embeddings": self.embeddings, "delta_f": self.delta_f}, folder / "tensors.pt")
        meta = {
            "words": self.words,
            "token_ids": self.token_ids,
            "min_letters": self.min_letters,
            "sensitivity": self.sensitivity,
        }
        (folder / "kit.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> InferDPTKit:
        """The kit that `save` wrote to `folder`: it perturbs exactly as the saved one did."""
        folder = Path(folder)
        meta = json.loads((folder / "kit.json").read_text(encoding="utf-8"))
        tensors = torch.load(folder / "tensors.pt", weights_only=True)
        return cls(
            meta["words"],
            tensors["embeddings"],
            tensors["delta_f"],
            token_ids=meta["token_ids"],
            min_letters=meta["min_letters"],
            sensitivity=meta["sensitivity"],
        )

    # ----- perturbing -----

    def lookup(self, word: str) -> int | None:
        """The kit's index of `word` as written, else lower-cased, else capitalized; None if absent."""
        for form in (word, word.lower(), word.capitalize()):
            if form in self.index:
                return self.index[form]
        return None

    def vocab_word(self, word: str) -> str | None:
        """The kit's own spelling of `word` (found as `lookup` finds it: "Which" -> "which"), or None.
        `candidates` and `words` use this spelling."""
        i = self.lookup(word)
        return None if i is None else self.words[i]

    def longest_word(self, text: str) -> str | None:
        """The longest word of `text` that the kit can perturb (the first, among equally long ones), in the
        kit's own spelling; None if there is none."""
        found = [w for w in WORD.findall(text) if self.lookup(w) is not None]
        return self.vocab_word(max(found, key=len)) if found else None

    def coverage(self, text: str) -> float:
        """The share of `text`'s words of >= min_letters letters that the kit can perturb (1.0 if none)."""
        long = [w for w in WORD.findall(text) if len(w) >= self.min_letters]
        return sum(self.lookup(w) is not None for w in long) / len(long) if long else 1.0

    def _similarities(self, indices: list[int]) -> np.ndarray:
        """Cosine similarities of the given words to every kit word, one row per index."""
        return (self._unit[indices] @ self._unit.T).double().numpy()

    def _candidate_set(
        self, i: int, similarities: np.ndarray, epsilon: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Word `i`'s candidates after one noise draw, and their exponential-mechanism probabilities."""
        e = self.embeddings[i].double().numpy()  # float64 noise, as in the references
        noisy = e + rng.laplace(0.0, self._delta_f64 / (epsilon / 2), size=e.shape)
        threshold = noisy @ e / (np.linalg.norm(noisy) * np.linalg.norm(e) + 1e-12)
        mask = similarities >= threshold
        mask[i] = True  # the word itself (similarity 1) always qualifies, float rounding notwithstanding
        candidates = np.flatnonzero(mask)
        logits = epsilon / 2 * similarities[candidates]  # utility = similarity, sensitivity Delta_u = 1
        weights = np.exp(logits - logits.max())  # shifted by the max: no overflow, same probabilities
        return candidates, weights / weights.sum()

    def candidates(self, word: str, epsilon: float, seed: int | Sequence[int]) -> dict[str, float]:
        """One draw's candidate set for `word` with each candidate's probability (a view into `perturb`).

        The keys are the kit's spellings: `word` itself is under `vocab_word(word)` ("Which" may be "which")."""
        i = self.lookup(word)
        if i is None:
            raise KeyError(f"{word!r} is not in the kit's vocabulary of {len(self.words)} words.")
        rng = np.random.default_rng(seed)
        indices, probs = self._candidate_set(i, self._similarities([i])[0], _check(epsilon), rng)
        return {self.words[j]: float(p) for j, p in zip(indices, probs, strict=True)}

    def perturb(self, text: str, epsilon: float | None, seed: int | Sequence[int]) -> str:
        """`text` with each kit word replaced by InferDPT's draw at privacy budget `epsilon`.

        Everything else (whitespace, punctuation, numbers, short words, words that are not a token of
        the kit's vocabulary) passes through unchanged, and a replacement keeps the case of the
        original's first letter. `epsilon=None` or `inf` means no perturbation. The same `seed`
        (an int, or a sequence such as `(SEED, row_index)` for one stream per text) gives the same result.
        """
        if epsilon is None or math.isinf(epsilon):
            return text
        epsilon = _check(epsilon)
        parts = _SPLIT.split(text)  # gap, word, gap, word, ..., gap
        found = {k: self.lookup(parts[k]) for k in range(1, len(parts), 2)}
        found = {k: i for k, i in found.items() if i is not None}
        if not found:
            return text
        rows = dict(zip(found.values(), self._similarities(list(found.values())), strict=True))
        rng = np.random.default_rng(seed)
        for k, i in found.items():  # in text order: the seed fixes which draws each word gets
            candidates, probs = self._candidate_set(i, rows[i], epsilon, rng)
            choice = int(rng.choice(candidates, p=probs))
            if choice != i:
                parts[k] = _fix_case(self.words[choice], parts[k])
        return "".join(parts)


def _check(epsilon: float) -> float:
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0 (or None / inf for no perturbation), got {epsilon}.")
    return float(epsilon)


def changed_fraction(original: str, perturbed: str, min_letters: int = 1) -> float:
    """The share of `original`'s words (runs of letters, >= `min_letters` long) not kept in `perturbed`.

    Words are compared position by position when both texts have as many (as `InferDPTKit.perturb`
    guarantees); otherwise, e.g. for a model's rewrite, a word counts as kept when difflib aligns it
    with an identical word. 0.0 for a text without such words.
    """
    before, after = WORD.findall(original), WORD.findall(perturbed)
    if len(before) == len(after):
        kept = [b == a for b, a in zip(before, after, strict=True)]
    else:
        kept = [False] * len(before)
        for block in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_matching_blocks():
            kept[block.a : block.a + block.size] = [True] * block.size
    counted = [k for k, w in zip(kept, before, strict=True) if len(w) >= min_letters]
    return sum(not k for k in counted) / len(counted) if counted else 0.0
