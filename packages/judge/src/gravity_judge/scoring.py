"""Answer distributions for groups of questions: log-probabilities (shared prefixes) or parsed text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gravity_core.errors import InvalidInput
from gravity_core.llm import ChoiceScores, GenerationParams, LLMClient
from gravity_judge.questions import AnswerFormat, Question


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

    @classmethod
    def unusable(cls, labels: Sequence[str], reason: str, raw_text: str = "") -> Answer:
        return cls(tuple(labels), tuple(0.0 for _ in labels), "parsed", False, reason, raw_text)


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
