"""The LLM judge: top-1 ranking over shuffled orders, pairwise preference in both orders, 1-5 Likert.

Position bias is controlled by design: a ranking is asked in several presentation orders (rotations of a
seeded shuffle, so each candidate is shown in different places) and the first-place probabilities are
averaged; a pair is asked as A/B and B/A and the preference probability is averaged over both.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from gravity_core.errors import InvalidInput
from gravity_core.llm import LLMClient
from gravity_judge.persona import Persona
from gravity_judge.questions import (
    LIKERT,
    LIKERT_VALUES,
    MAX_CANDIDATES,
    PAIR,
    AnswerFormat,
    clean,
    letters,
    likert_question,
    pair_question,
    ranking_question,
)
from gravity_judge.scoring import Answer, AnswerScorer
from gravity_judge.settings import JudgeSettings

_EPS = 1e-9


@dataclass(frozen=True)
class Candidate:
    id: str
    text: str


@dataclass
class RankJudgment:
    candidates: list[str]
    # Mean probability of being judged first, over the usable orders.
    first_place: dict[str, float]
    # Best first; ties keep the candidates' given order.
    ranking: list[str]
    # Every candidate sharing the highest mean (one, except for exact ties in parsed answers).
    winners: list[str]
    # Fraction of usable orders whose top pick was ranking[0].
    order_agreement: float
    orders_used: int
    orders_asked: int
    # Usable orders whose top pick was the description shown first.
    first_position_picks: int
    usable: bool
    reason: str = ""
    answer_methods: list[str] = field(default_factory=list)
    raw_answers: list[str] = field(default_factory=list)


@dataclass
class PairJudgment:
    a: str
    b: str
    # P(a preferred over b), averaged over the A/B and B/A orders.
    probability_a: float
    # "a", "b" or "tie".
    outcome: str
    orders_agree: bool
    position_biased: bool
    usable: bool
    reason: str = ""
    answer_methods: list[str] = field(default_factory=list)
    raw_answers: list[str] = field(default_factory=list)

    @property
    def preferred(self) -> str:
        return {"a": self.a, "b": self.b}.get(self.outcome, "")


@dataclass
class LikertJudgment:
    id: str
    score: float
    distribution: tuple[float, ...]
    usable: bool
    reason: str = ""
    answer_method: str = ""
    raw_answer: str = ""


def presentation_orders(n: int, orders: int, rng: random.Random) -> list[list[int]]:
    """``orders`` permutations of range(n): rotations of one shuffle spaced evenly (each order shows a
    different candidate first), then fresh shuffles when more orders than candidates are asked for."""
    base = list(range(n))
    rng.shuffle(base)
    rotations = min(orders, n)
    step = max(1, n // rotations)
    out = [base[k * step :] + base[: k * step] for k in range(rotations)]
    while len(out) < orders:
        extra = list(range(n))
        rng.shuffle(extra)
        out.append(extra)
    return out


def order_rng(seed: int, *parts: str) -> random.Random:
    digest = hashlib.sha256(":".join((str(seed), *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class Judge:
    def __init__(
        self, llm: LLMClient, settings: JudgeSettings | None = None, share_prefix: bool = True
    ) -> None:
        self.llm = llm
        self.settings = settings or JudgeSettings()
        self.scorer = AnswerScorer(
            llm, self.settings.answer_mode, self.settings.text_max_tokens, share_prefix
        )

    @property
    def model(self) -> str:
        return self.llm.info.name

    def _text(self, candidate: Candidate) -> str:
        return clean(candidate.text, self.settings.max_description_chars)[0]

    # ----------------------------------------------------------------- ranking
    def rank(
        self,
        persona: Persona,
        candidates: Sequence[Candidate],
        orders: int | None = None,
        seed: int | None = None,
        key: str = "",
    ) -> RankJudgment:
        """Which candidate is the most engaging, averaged over ``orders`` shuffled presentation orders."""
        if not 2 <= len(candidates) <= MAX_CANDIDATES:
            raise InvalidInput(
                "candidates", f"a ranking needs 2 to {MAX_CANDIDATES} candidates, got {len(candidates)}"
            )
        n_orders = orders or self.settings.orders
        rng = order_rng(self.settings.seed if seed is None else seed, persona.user_id, key)
        perms = presentation_orders(len(candidates), n_orders, rng)
        texts = [self._text(c) for c in candidates]
        questions = [ranking_question(persona, [texts[i] for i in perm]) for perm in perms]
        fmt = AnswerFormat(letters(len(candidates)), "letter")
        answers = self.scorer.score(questions, fmt)
        return rank_from_answers([c.id for c in candidates], perms, answers)

    # ---------------------------------------------------------------- pairwise
    def compare(
        self, persona: Persona, reference: Candidate, others: Sequence[Candidate]
    ) -> list[PairJudgment]:
        """Each of ``others`` against ``reference``, asked in both orders (reference first, then second)."""
        if not others:
            return []
        ref = self._text(reference)
        texts = [self._text(c) for c in others]
        first = [pair_question(persona, ref, t, share_first=True) for t in texts]
        second = [pair_question(persona, t, ref, share_first=False) for t in texts]
        answers = self.scorer.score(first + second, PAIR)
        n = len(others)
        return [
            pair_from_answers(reference.id, c.id, answers[k], answers[n + k], self.settings.tie_margin)
            for k, c in enumerate(others)
        ]

    # ------------------------------------------------------------------ Likert
    def rate(self, persona: Persona, candidates: Sequence[Candidate]) -> list[LikertJudgment]:
        questions = [likert_question(persona, self._text(c)) for c in candidates]
        answers = self.scorer.score(questions, LIKERT)
        return [likert_from_answer(c.id, a) for c, a in zip(candidates, answers, strict=True)]


def rank_from_answers(
    ids: Sequence[str], perms: Sequence[Sequence[int]], answers: Sequence[Answer]
) -> RankJudgment:
    """Average each candidate's first-place probability over the usable orders."""
    usable = [(perm, a) for perm, a in zip(perms, answers, strict=True) if a.usable]
    methods = [a.method for a in answers if a.usable]
    raws = [a.raw_text for a in answers if a.raw_text]
    if not usable:
        reasons = sorted({a.reason for a in answers})
        return RankJudgment(
            list(ids),
            {},
            [],
            [],
            0.0,
            0,
            len(answers),
            0,
            False,
            ",".join(reasons) or "no_answer",
            methods,
            raws,
        )
    totals = [0.0] * len(ids)
    tops: list[int] = []
    first_picks = 0
    for perm, answer in usable:
        for position, candidate in enumerate(perm):
            totals[candidate] += answer.probabilities[position]
        best_position = answer.best_index
        tops.append(perm[best_position])
        first_picks += int(best_position == 0)
    means = [t / len(usable) for t in totals]
    top = max(means)
    winners = [i for i, m in enumerate(means) if m >= top - _EPS]
    ranking = sorted(range(len(ids)), key=lambda i: (-means[i], i))
    # Against the reported winner (first of any tie), so a judge that always crowns the first slot shows
    # low agreement even when its averaged probabilities tie exactly.
    agreement = sum(1 for t in tops if t == ranking[0]) / len(tops)
    return RankJudgment(
        list(ids),
        {ids[i]: means[i] for i in range(len(ids))},
        [ids[i] for i in ranking],
        [ids[i] for i in winners],
        agreement,
        len(usable),
        len(answers),
        first_picks,
        True,
        "",
        methods,
        raws,
    )


def pair_from_answers(
    a: str, b: str, a_first: Answer, b_first: Answer, tie_margin: float = 0.0
) -> PairJudgment:
    """Combine the A/B answer (``a`` shown first) and the B/A answer (``b`` shown first)."""
    methods = [x.method for x in (a_first, b_first) if x.usable]
    raws = [x.raw_text for x in (a_first, b_first) if x.raw_text]
    if not (a_first.usable and b_first.usable):
        reason = next(x.reason for x in (a_first, b_first) if not x.usable)
        return PairJudgment(a, b, 0.5, "tie", False, False, False, reason, methods, raws)
    p_a_first = a_first.probability("A")  # a is description A
    p_a_second = b_first.probability("B")  # a is description B
    probability_a = (p_a_first + p_a_second) / 2
    if probability_a > 0.5 + tie_margin + _EPS:
        outcome = "a"
    elif probability_a < 0.5 - tie_margin - _EPS:
        outcome = "b"
    else:
        outcome = "tie"
    first_pick = a_first.labels[a_first.best_index]
    second_pick = b_first.labels[b_first.best_index]
    position_biased = first_pick == second_pick  # same slot both times: the slot decided, not the text
    return PairJudgment(
        a, b, probability_a, outcome, not position_biased, position_biased, True, "", methods, raws
    )


def likert_from_answer(candidate_id: str, answer: Answer) -> LikertJudgment:
    if not answer.usable:
        return LikertJudgment(candidate_id, float("nan"), (), False, answer.reason, "", answer.raw_text)
    score = sum(p * v for p, v in zip(answer.probabilities, LIKERT_VALUES, strict=True))
    return LikertJudgment(candidate_id, score, answer.probabilities, True, "", answer.method, answer.raw_text)
