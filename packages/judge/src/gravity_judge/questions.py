"""The judge's questions (paper D.3) and how their answers are read.

Each question is split into a ``base`` (persona and instruction, plus any text shared by a group of
questions) and a ``suffix``; questions with the same base are scored in one shared-prefix call, so the
persona is encoded once per reader instead of once per question.

D.3 asks the judge for a full ranking; a ranking cannot be read from one answer token, so the ranking
question asks for the most engaging description (the only place the win rate uses) and the full ranking
is derived from the first-place probabilities. The pairwise question is the two-candidate form of the
same prompt (the paper gives no separate wording).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from gravity_judge.persona import Persona

LIKERT_LABELS = ("1", "2", "3", "4", "5")
LIKERT_VALUES = (1.0, 2.0, 3.0, 4.0, 5.0)
MAX_CANDIDATES = len(string.ascii_uppercase)

RANK_INSTRUCTION = (
    "Please carefully read each of the following book descriptions and decide how engaging and "
    "interesting you find each description."
)
PAIR_INSTRUCTION = (
    "Please carefully read the following two book descriptions and decide which one you find more "
    "engaging and interesting."
)
LIKERT_INSTRUCTION = (
    "Please carefully read the following book description and rate how engaging and interesting you find "
    "the description from 1 to 5 (1 = not very interesting/engaging, 5 = very interesting/engaging)."
)


@dataclass(frozen=True)
class Question:
    base: str
    suffix: str

    @property
    def text(self) -> str:
        return self.base + self.suffix


@dataclass(frozen=True)
class AnswerFormat:
    """The labels a question is answered with; how they are prompted depends on the backend."""

    labels: tuple[str, ...]
    kind: str  # "letter" | "rating"

    def prefill(self, embedded: bool) -> str:
        # The embedded model continues a partial assistant turn, which focuses its next token on the answer;
        # chat endpoints are asked to answer with the label alone instead (see the question's last line).
        if not embedded:
            return ""
        return "Answer:" if self.kind == "letter" else "Rating: "

    def choices(self, embedded: bool) -> tuple[str, ...]:
        # "Answer:" + " A" keeps the letter one token with its leading space; digits are single tokens.
        if embedded and self.kind == "letter":
            return tuple(f" {label}" for label in self.labels)
        return self.labels

    def read(self, text: str) -> str | None:
        return read_letter(text, self.labels) if self.kind == "letter" else read_rating(text)


def letters(n: int) -> tuple[str, ...]:
    return tuple(string.ascii_uppercase[:n])


LIKERT = AnswerFormat(LIKERT_LABELS, "rating")
PAIR = AnswerFormat(letters(2), "letter")


def clean(text: str, max_chars: int) -> tuple[str, bool]:
    """One line of text (the prompt layout relies on it), cut at a word when longer than ``max_chars``."""
    flat = " ".join(text.split())
    if len(flat) <= max_chars:
        return flat, False
    cut = flat[:max_chars].rsplit(" ", 1)[0]
    return cut + " …", True


def _head(persona: Persona, instruction: str) -> str:
    return f"{persona.text()}\n\n{instruction}\n"


def ranking_question(persona: Persona, texts_in_order: Sequence[str]) -> Question:
    labels = letters(len(texts_in_order))
    listing = "\n".join(
        f"Description {label}: {text}" for label, text in zip(labels, texts_in_order, strict=True)
    )
    ask = (
        "\nWhich description do you find the most engaging and interesting? "
        f"Answer with its letter ({labels[0]}-{labels[-1]}) only."
    )
    return Question(_head(persona, RANK_INSTRUCTION), listing + "\n" + ask)


def pair_question(persona: Persona, first: str, second: str, share_first: bool) -> Question:
    """``share_first`` puts the first description into the base, so pairs with a common first description
    (the original, in the A/B order) share it in the encoded prefix."""
    ask = "\n\nWhich description do you find more engaging and interesting? Answer with A or B only."
    head = _head(persona, PAIR_INSTRUCTION)
    if share_first:
        return Question(f"{head}Description A: {first}\n", f"Description B: {second}{ask}")
    return Question(head, f"Description A: {first}\nDescription B: {second}{ask}")


def likert_question(persona: Persona, text: str) -> Question:
    return Question(
        _head(persona, LIKERT_INSTRUCTION),
        f"Description: {text}\n\nAnswer with a single number from 1 to 5 only.",
    )


_KEYWORD_LETTER = re.compile(
    r"\b(?:description|option|answer|choice)\s*[:#]?\s*\(?([A-Za-z])\b", re.IGNORECASE
)
_BARE_LETTER = re.compile(r"^\W*([A-Z])\W*$")
_LEADING_LETTER = re.compile(r"^\s*\(?([A-Z])(?:[).:,\s]|$)")
_RATING = re.compile(r"(?<![\d.])([1-5])(?![\d]|\.\d)")


def read_letter(text: str, labels: Sequence[str]) -> str | None:
    """The label a free-text answer names ('Description C', 'B', '(A) because ...'), or None."""
    for pattern in (_KEYWORD_LETTER, _BARE_LETTER, _LEADING_LETTER):
        match = pattern.search(text)
        if match:
            label = match.group(1).upper()
            return label if label in labels else None
    return None


def read_rating(text: str) -> str | None:
    """The first stand-alone digit 1-5 in a free-text answer ('4', 'I rate it 4/5'), or None."""
    match = _RATING.search(text)
    return match.group(1) if match else None
