"""The LLM judge: the paper's full ranking, the debiased top pick over balanced orders, pairwise preference
in both orders, and the 1-5 Likert rating.

Paper protocol (§4.1, D.3): one ranking of every description per (reader, book), in one seeded shuffled
order that is recorded. Debiased protocol: the top pick asked in balanced orders (ordering.py) and each
pair asked as A/B and B/A; the judgments keep every raw answer so the judge's slot prior, estimated across
all readers, can be divided out afterwards (debias.py) and the judgment re-derived with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gravity_core.errors import InvalidInput
from gravity_core.llm import LLMClient
from gravity_judge.debias import SlotPrior, SlotPriors, correct, estimate_prior
from gravity_judge.ordering import balanced_orders, is_balanced, order_rng, shuffled
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
    paper_ranking_question,
    ranking_question,
)
from gravity_judge.scoring import Answer, AnswerScorer, RankingAnswer
from gravity_judge.settings import JudgeSettings

_EPS = 1e-9


@dataclass(frozen=True)
class Candidate:
    id: str
    text: str


@dataclass
class PaperRanking:
    """The paper protocol's judgment of one (reader, book): the judge's full ranking in one order."""

    candidates: list[str]
    # Candidate ids in the order they were shown (slot A first).
    shown: list[str]
    # Candidate ids, best first; empty when unusable.
    ranking: list[str]
    usable: bool
    reason: str = ""
    method: str = ""
    raw_text: str = ""
    # Constrained reading: candidate id -> probability at each rank position (see scoring.RankingAnswer).
    steps: list[dict[str, float]] = field(default_factory=list)

    @property
    def top(self) -> str | None:
        return self.ranking[0] if self.usable else None

    @property
    def top_slot(self) -> int | None:
        """The slot (0 = shown first) of the description ranked first."""
        return self.shown.index(self.ranking[0]) if self.usable else None

    def position(self, candidate: str) -> int | None:
        """Rank of ``candidate`` (0 = best), or None when it was not ranked."""
        if not self.usable or candidate not in self.ranking:
            return None
        return self.ranking.index(candidate)


@dataclass
class RankJudgment:
    """The debiased protocol's top pick for one (reader, book), over balanced presentation orders."""

    candidates: list[str]
    # Mean probability of being judged first over the usable orders (after the slot-prior correction
    # when ``prior`` is set).
    first_place: dict[str, float]
    # Best first; ties keep the candidates' given order.
    ranking: list[str]
    # Every candidate sharing the highest mean (one, except for exact ties in parsed answers).
    winners: list[str]
    # Fraction of usable orders whose top pick was ranking[0].
    order_agreement: float
    orders_used: int
    orders_asked: int
    # Usable orders whose top pick was the description shown first, before the correction.
    first_position_picks: int
    usable: bool
    reason: str = ""
    answer_methods: list[str] = field(default_factory=list)
    raw_answers: list[str] = field(default_factory=list)
    # The orders asked (candidate index per slot) and the judge's answer to each, as given.
    orders: list[list[int]] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    balanced: bool = False
    prior: SlotPrior | None = None
    # Slot of each usable order's top pick, before and after the correction.
    raw_picks: list[int] = field(default_factory=list)
    picks: list[int] = field(default_factory=list)
    # Mean first-place probability before the correction.
    raw_first_place: dict[str, float] = field(default_factory=dict)


@dataclass
class PairJudgment:
    a: str
    b: str
    # P(a preferred over b), averaged over the A/B and B/A orders (after the slot-prior correction when
    # ``prior`` is set).
    probability_a: float
    # "a", "b" or "tie".
    outcome: str
    orders_agree: bool
    position_biased: bool
    usable: bool
    reason: str = ""
    answer_methods: list[str] = field(default_factory=list)
    raw_answers: list[str] = field(default_factory=list)
    # The A/B answer (a shown first) and the B/A answer (b shown first), as given.
    answers: tuple[Answer, ...] = ()
    prior: SlotPrior | None = None
    # Before the correction: P(a preferred) and whether the same slot won both orders.
    raw_probability_a: float = 0.5
    raw_position_biased: bool = False

    @property
    def preferred(self) -> str:
        return {"a": self.a, "b": self.b}.get(self.outcome, "")


@dataclass
class LikertJudgment:
    id: str
    # Expected score Σ p(k)·k (the debiased protocol's reading).
    score: float
    distribution: tuple[float, ...]
    usable: bool
    reason: str = ""
    answer_method: str = ""
    raw_answer: str = ""
    # The answer itself: the most probable digit, or the parsed one (the paper protocol's reading).
    answered: float = float("nan")


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

    @staticmethod
    def _check(candidates: Sequence[Candidate]) -> None:
        if not 2 <= len(candidates) <= MAX_CANDIDATES:
            raise InvalidInput(
                "candidates", f"a ranking needs 2 to {MAX_CANDIDATES} candidates, got {len(candidates)}"
            )

    # ------------------------------------------------------- paper: ranking
    def rank_paper(
        self, persona: Persona, candidates: Sequence[Candidate], seed: int | None = None, key: str = ""
    ) -> PaperRanking:
        """D.3: the judge ranks every candidate, shown once in a seeded shuffled order."""
        self._check(candidates)
        rng = order_rng(self.settings.seed if seed is None else seed, "paper", persona.user_id, key)
        order = shuffled(len(candidates), rng)
        shown = [candidates[i] for i in order]
        question = paper_ranking_question(persona, [self._text(c) for c in shown])
        labels = letters(len(shown))
        answer = self.scorer.rank(question, labels, self.settings.ranking_max_tokens)
        return paper_from_answer([c.id for c in candidates], [c.id for c in shown], answer)

    # ------------------------------------------------- debiased: top pick
    def rank(
        self,
        persona: Persona,
        candidates: Sequence[Candidate],
        orders: int | None = None,
        seed: int | None = None,
        key: str = "",
    ) -> RankJudgment:
        """Which candidate is the most engaging, asked in balanced orders (``orders`` caps how many; 0 or
        None uses judge.orders, whose 0 means one order per candidate)."""
        self._check(candidates)
        cap = self.settings.orders if orders is None else orders
        rng = order_rng(self.settings.seed if seed is None else seed, persona.user_id, key)
        perms = balanced_orders(len(candidates), cap, rng)
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


def paper_from_answer(ids: Sequence[str], shown: Sequence[str], answer: RankingAnswer) -> PaperRanking:
    """Map the judge's ranking of labels back to candidate ids (label A = ``shown[0]``)."""
    by_label = dict(zip(answer.labels, shown, strict=True))
    steps = [{by_label[label]: p for label, p in step.items()} for step in answer.steps]
    return PaperRanking(
        candidates=list(ids),
        shown=list(shown),
        ranking=[by_label[label] for label in answer.ranking] if answer.usable else [],
        usable=answer.usable,
        reason=answer.reason,
        method=answer.method,
        raw_text=answer.raw_text,
        steps=steps,
    )


def corrected_probabilities(answer: Answer, prior: SlotPrior | None) -> tuple[float, ...]:
    """The answer's distribution over slots with the prior divided out."""
    # A parsed answer is one-hot: dividing by a prior cannot move it (see debias.py).
    return correct(answer.probabilities, prior) if answer.method == "logprobs" else answer.probabilities


def _best(probabilities: Sequence[float]) -> int:
    return max(range(len(probabilities)), key=lambda i: probabilities[i])


def rank_from_answers(
    ids: Sequence[str],
    perms: Sequence[Sequence[int]],
    answers: Sequence[Answer],
    prior: SlotPrior | None = None,
) -> RankJudgment:
    """Average each candidate's first-place probability over the usable orders, after dividing each
    answer by the slot ``prior`` when one is given."""
    usable = [(perm, a) for perm, a in zip(perms, answers, strict=True) if a.usable]
    methods = [a.method for a in answers if a.usable]
    raws = [a.raw_text for a in answers if a.raw_text]
    common: dict[str, Any] = {
        "answer_methods": methods,
        "raw_answers": raws,
        "orders": [list(p) for p in perms],
        "answers": list(answers),
        "balanced": is_balanced(perms),
        "prior": prior,
    }
    if not usable:
        reasons = sorted({a.reason for a in answers})
        return RankJudgment(
            list(ids), {}, [], [], 0.0, 0, len(answers), 0, False, ",".join(reasons) or "no_answer", **common
        )
    totals = [0.0] * len(ids)
    raw_totals = [0.0] * len(ids)
    tops: list[int] = []
    picks: list[int] = []
    raw_picks: list[int] = []
    for perm, answer in usable:
        probs = corrected_probabilities(answer, prior)
        for position, candidate in enumerate(perm):
            totals[candidate] += probs[position]
            raw_totals[candidate] += answer.probabilities[position]
        picks.append(_best(probs))
        raw_picks.append(answer.best_index)
        tops.append(perm[picks[-1]])
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
        sum(1 for p in raw_picks if p == 0),
        True,
        "",
        raw_picks=raw_picks,
        picks=picks,
        raw_first_place={ids[i]: raw_totals[i] / len(usable) for i in range(len(ids))},
        **common,
    )


def pair_from_answers(
    a: str,
    b: str,
    a_first: Answer,
    b_first: Answer,
    tie_margin: float = 0.0,
    prior: SlotPrior | None = None,
) -> PairJudgment:
    """Combine the A/B answer (``a`` shown first) and the B/A answer (``b`` shown first), each divided by
    the slot ``prior`` when one is given."""
    methods = [x.method for x in (a_first, b_first) if x.usable]
    raws = [x.raw_text for x in (a_first, b_first) if x.raw_text]
    if not (a_first.usable and b_first.usable):
        reason = next(x.reason for x in (a_first, b_first) if not x.usable)
        return PairJudgment(
            a, b, 0.5, "tie", False, False, False, reason, methods, raws, (a_first, b_first), prior
        )
    ab, ba = corrected_probabilities(a_first, prior), corrected_probabilities(b_first, prior)
    # a is slot A in the first order and slot B in the second.
    probability_a = (ab[0] + ba[1]) / 2
    raw_probability_a = (a_first.probabilities[0] + b_first.probabilities[1]) / 2
    if probability_a > 0.5 + tie_margin + _EPS:
        outcome = "a"
    elif probability_a < 0.5 - tie_margin - _EPS:
        outcome = "b"
    else:
        outcome = "tie"
    position_biased = _best(ab) == _best(ba)  # same slot both times: the slot decided, not the text
    return PairJudgment(
        a,
        b,
        probability_a,
        outcome,
        not position_biased,
        position_biased,
        True,
        "",
        methods,
        raws,
        (a_first, b_first),
        prior,
        raw_probability_a,
        a_first.best_index == b_first.best_index,
    )


def likert_from_answer(candidate_id: str, answer: Answer) -> LikertJudgment:
    if not answer.usable:
        return LikertJudgment(candidate_id, float("nan"), (), False, answer.reason, "", answer.raw_text)
    score = sum(p * v for p, v in zip(answer.probabilities, LIKERT_VALUES, strict=True))
    return LikertJudgment(
        candidate_id,
        score,
        answer.probabilities,
        True,
        "",
        answer.method,
        answer.raw_text,
        LIKERT_VALUES[answer.best_index],
    )


def _all_logprobs(answers: Sequence[Answer]) -> bool:
    return bool(answers) and all(a.usable and a.method == "logprobs" for a in answers)


def correct_judgments(
    ranks: Sequence[RankJudgment], pairs: Sequence[PairJudgment], tie_margin: float = 0.0
) -> tuple[list[RankJudgment], list[PairJudgment], SlotPriors]:
    """Estimate the judge's slot priors from the debiased judgments' answers and re-derive every judgment
    with its prior divided out. Only judgments whose every order was answered with log-probabilities
    enter the estimate, so each contributes a balanced set of answers (per reader when fully balanced)."""
    by_slots: dict[int, list[tuple[float, ...]]] = {}
    for rank in ranks:
        if _all_logprobs(rank.answers):
            for a in rank.answers:
                by_slots.setdefault(len(a.probabilities), []).append(a.probabilities)
    priors = SlotPriors(
        {n: estimate_prior(d) for n, d in by_slots.items()},
        estimate_prior([a.probabilities for p in pairs if _all_logprobs(p.answers) for a in p.answers]),
    )
    fixed_ranks = [
        rank_from_answers(r.candidates, r.orders, r.answers, priors.ranking.get(len(r.candidates)))
        if r.answers
        else r
        for r in ranks
    ]
    fixed_pairs = [
        pair_from_answers(p.a, p.b, *p.answers, tie_margin, priors.pairwise) if len(p.answers) == 2 else p
        for p in pairs
    ]
    return fixed_ranks, fixed_pairs, priors
