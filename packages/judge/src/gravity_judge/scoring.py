"""The judge's answers: distributions for groups of one-answer questions (log-probabilities over shared
prefixes, or parsed text), and full rankings for the paper protocol.

A full ranking is read in one of two ways, both the judge's own answer:
  constrained-greedy  (embedded backend, answer mode auto) the assistant turn starts "Ranking:" and each
                      rank position takes the most probable of the letters not yet ranked, scored after
                      the ranking so far ("Ranking: C > A >"); the encoded prompt is reused between steps,
                      so a ranking of n costs one prompt plus n-1 short rows. This is greedy decoding of
                      the model's answer under the constraint that it is a ranking of the given letters.
  parsed              (chat endpoints, or answer mode text) the judge writes its answer and read_ranking
                      parses it; an answer that is not a complete ranking is unusable, never completed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gravity_core.errors import InvalidInput
from gravity_core.llm import ChoiceScores, GenerationParams, LLMClient
from gravity_judge.questions import RANK_SEPARATOR, RANKING_PREFILL, AnswerFormat, Question, read_ranking


@dataclass(frozen=True)
class Answer:
    """The judge's answer to one question: a probability per label, or unusable with a reason."""

    labels: tuple[str, ...]
    probabilities: tuple[float, ...]
    method: str  # "logprobs" | "parsed"
    usable: bool
    reason: str = ""
    raw_text: str = ""

    def probability(self, label: str) -> float:
        return self.probabilities[self.labels.index(label)]

    @property
    def best_index(self) -> int:
        return max(range(len(self.labels)), key=lambda i: self.probabilities[i])

    @property
    def best_label(self) -> str:
        return self.labels[self.best_index]

    @classmethod
    def unusable(cls, labels: Sequence[str], reason: str, raw_text: str = "") -> Answer:
        return cls(tuple(labels), tuple(0.0 for _ in labels), "parsed", False, reason, raw_text)


@dataclass(frozen=True)
class RankingAnswer:
    """The judge's full ranking of the labels shown (best first), or unusable with a reason."""

    labels: tuple[str, ...]
    ranking: tuple[str, ...]
    method: str  # "constrained-greedy" | "parsed"
    usable: bool
    reason: str = ""
    raw_text: str = ""
    # Constrained reading: the probability of each label still unranked, at each rank position but the
    # last (which is forced).
    steps: tuple[dict[str, float], ...] = ()


class AnswerScorer:
    """Asks the judge model; ``mode`` "auto" reads log-probabilities, "text" generates and parses."""

    def __init__(
        self, llm: LLMClient, mode: str = "auto", text_max_tokens: int = 12, share_prefix: bool = True
    ) -> None:
        """``share_prefix`` False scores every question on its own (the benchmark's naive baseline)."""
        self.llm = llm
        self.mode = mode
        self.share_prefix = share_prefix
        self.text_max_tokens = text_max_tokens
        self.embedded = llm.info.backend == "embedded"

    def score(self, questions: Sequence[Question], fmt: AnswerFormat) -> list[Answer]:
        """One answer per question, in order; questions sharing a base are scored together."""
        if self.mode == "text":
            return self._by_text(questions, fmt)
        groups: dict[str, list[int]] = {}
        for i, q in enumerate(questions):
            groups.setdefault(q.base if self.share_prefix else f"{i}:{q.base}", []).append(i)
        out: list[Answer | None] = [None] * len(questions)
        for idx in groups.values():
            base = questions[idx[0]].base
            for i, answer in zip(
                idx, self._by_logprobs(base, [questions[i].suffix for i in idx], fmt), strict=True
            ):
                out[i] = answer
        return [a for a in out if a is not None]

    def _by_logprobs(self, base: str, suffixes: list[str], fmt: AnswerFormat) -> list[Answer]:
        choices = fmt.choices(self.embedded)
        try:
            scores = self.llm.score_choices_shared_prefix(
                [{"role": "user", "content": base}], suffixes, choices, prefill=fmt.prefill(self.embedded)
            )
        except InvalidInput as exc:  # e.g. a prompt that cannot fit the judge's context
            return [Answer.unusable(fmt.labels, "rejected_prompt", exc.message) for _ in suffixes]
        return [self._from_scores(s, fmt) for s in scores]

    @staticmethod
    def _from_scores(scores: ChoiceScores, fmt: AnswerFormat) -> Answer:
        if not scores.usable:
            return Answer.unusable(fmt.labels, "unreadable_answer", scores.raw_text or "")
        return Answer(fmt.labels, tuple(scores.probabilities), scores.method, True, "", scores.raw_text or "")

    def _by_text(self, questions: Sequence[Question], fmt: AnswerFormat) -> list[Answer]:
        convos = [[{"role": "user", "content": q.text}] for q in questions]
        params = GenerationParams(max_tokens=self.text_max_tokens)
        try:
            completions = self.llm.chat_batch(convos, params)
        except InvalidInput as exc:
            return [Answer.unusable(fmt.labels, "rejected_prompt", exc.message) for _ in questions]
        out = []
        for completion in completions:
            label = fmt.read(completion.text)
            if label is None:
                out.append(Answer.unusable(fmt.labels, "unreadable_answer", completion.text))
            else:
                probs = tuple(1.0 if lab == label else 0.0 for lab in fmt.labels)
                out.append(Answer(fmt.labels, probs, "parsed", True, "", completion.text))
        return out

    # ----------------------------------------------------------- full ranking
    @property
    def constrained_ranking(self) -> bool:
        """Whether rankings are read by letter-constrained greedy decoding (else generated and parsed)."""
        return self.mode == "auto" and self.embedded

    def rank(self, question: Question, labels: Sequence[str], max_tokens: int) -> RankingAnswer:
        if self.constrained_ranking:
            return self._rank_constrained(question, tuple(labels))
        return self._rank_parsed(question, tuple(labels), max_tokens)

    def _rank_constrained(self, question: Question, labels: tuple[str, ...]) -> RankingAnswer:
        remaining = list(labels)
        chosen: list[str] = []
        steps: list[dict[str, float]] = []
        prefill = RANKING_PREFILL
        base = [{"role": "user", "content": question.base}]
        while len(remaining) > 1:
            try:
                (scores,) = self.llm.score_choices_shared_prefix(
                    base, [question.suffix], [f" {label}" for label in remaining], prefill=prefill
                )
            except InvalidInput as exc:
                return RankingAnswer(labels, (), "constrained-greedy", False, "rejected_prompt", exc.message)
            if not scores.usable:
                text = f"{prefill} (unreadable: {scores.raw_text or ''})"
                return RankingAnswer(labels, (), "constrained-greedy", False, "unreadable_answer", text)
            steps.append({label: p for label, p in zip(remaining, scores.probabilities, strict=True)})
            best = max(range(len(remaining)), key=lambda i: scores.probabilities[i])
            chosen.append(remaining.pop(best))
            prefill += f" {chosen[-1]}{RANK_SEPARATOR}"
        chosen += remaining
        raw = f"{RANKING_PREFILL} " + f"{RANK_SEPARATOR} ".join(chosen)
        return RankingAnswer(labels, tuple(chosen), "constrained-greedy", True, "", raw, tuple(steps))

    def _rank_parsed(self, question: Question, labels: tuple[str, ...], max_tokens: int) -> RankingAnswer:
        try:
            (completion,) = self.llm.chat_batch(
                [[{"role": "user", "content": question.text}]], GenerationParams(max_tokens=max_tokens)
            )
        except InvalidInput as exc:
            return RankingAnswer(labels, (), "parsed", False, "rejected_prompt", exc.message)
        ranking = read_ranking(completion.text, labels)
        if ranking is None:
            return RankingAnswer(labels, (), "parsed", False, "unparsable_ranking", completion.text)
        return RankingAnswer(labels, ranking, "parsed", True, "", completion.text)
