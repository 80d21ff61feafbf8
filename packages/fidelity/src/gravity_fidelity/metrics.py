"""Agreement between a known truth and what a stage produced, with baselines computed on the same items.

Used by the recovery report (stances, traits, demographics, genres) and nothing here knows where the
labels came from. A prediction outside the truth's label set (an unreadable answer, an UNKNOWN trait, a
demographic left unknown) counts as wrong and is counted apart; it is never a class of its own, so it lowers
the recall of the item's true label without adding a class to the macro average.

Baselines, on exactly the scored items:

* **majority** predicts the most frequent true label of those items for every item (ties: label order);
* **random** predicts uniformly among the task's labels; its accuracy is 1/k exactly, its macro-F1 the
  mean over :data:`RANDOM_DRAWS` seeded labellings (the expectation has no simple closed form).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

RANDOM_DRAWS = 1000


@dataclass(frozen=True)
class Scores:
    """Accuracy and macro-F1 of predictions against the truth, on ``n`` items."""

    n: int
    accuracy: float | None
    macro_f1: float | None
    # Predictions outside the label set (unreadable, unknown), counted wrong.
    invalid: int = 0

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "n": self.n,
            "accuracy": _round(self.accuracy),
            "macro_f1": _round(self.macro_f1),
            "invalid": self.invalid,
        }


@dataclass(frozen=True)
class Comparison:
    """A stage's scores beside the two baselines on the same items."""

    model: Scores
    majority: Scores
    random: Scores
    majority_label: str
    # How often each label was predicted, and the (true, predicted) pairs: what a low score is made of.
    predicted: dict[str, int] = field(default_factory=dict)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            **self.model.to_dict(),
            "majority": self.majority.to_dict(),
            "majority_label": self.majority_label,
            "random": self.random.to_dict(),
            "predicted": self.predicted,
            "confusion": self.confusion,
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float | None:
    _check(truth, predicted)
    if not truth:
        return None
    return sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth)


def macro_f1(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> float | None:
    """Unweighted mean of per-label F1 over the labels of ``labels`` that occur in the truth or among the
    predictions (a label nobody used or predicted has no F1 to average). Predictions outside ``labels``
    count only as misses of the true label."""
    _check(truth, predicted)
    if not truth:
        return None
    used = [label for label in labels if label in set(truth) or label in set(predicted)]
    f1s = []
    for label in used:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted, strict=True))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s) if f1s else None


def scores(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> Scores:
    invalid = sum(p not in labels for p in predicted)
    return Scores(len(truth), accuracy(truth, predicted), macro_f1(truth, predicted, labels), invalid)


def majority_label(truth: Sequence[str], labels: Sequence[str]) -> str:
    counts = Counter(truth)
    return max(labels, key=lambda label: (counts[label], -labels.index(label)))


def compare(
    truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str], seed: int = 0
) -> Comparison:
    """The predictions' scores and both baselines' on the same items."""
    labels = list(labels)
    majority = majority_label(truth, labels) if truth else labels[0]
    confusion: dict[str, dict[str, int]] = {}
    for t, p in zip(truth, predicted, strict=True):
        row = confusion.setdefault(t, {})
        row[p] = row.get(p, 0) + 1
    return Comparison(
        scores(truth, predicted, labels),
        scores(truth, [majority] * len(truth), labels),
        random_baseline(truth, labels, seed),
        majority,
        dict(sorted(Counter(predicted).items())),
        {t: dict(sorted(row.items())) for t, row in sorted(confusion.items())},
    )


def random_baseline(truth: Sequence[str], labels: Sequence[str], seed: int = 0) -> Scores:
    """Uniform random labelling: accuracy 1/k exactly, macro-F1 averaged over seeded draws."""
    if not truth:
        return Scores(0, None, None)
    rng = random.Random(seed)
    total = 0.0
    for _ in range(RANDOM_DRAWS):
        guess = [rng.choice(labels) for _ in truth]
        total += macro_f1(truth, guess, labels) or 0.0
    return Scores(len(truth), 1.0 / len(labels), total / RANDOM_DRAWS)


@dataclass(frozen=True)
class SetRecovery:
    """Micro-averaged precision and recall of predicted sets (e.g. a reader's genres) against true sets."""

    true_positives: int
    predicted: int
    actual: int

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.actual if self.actual else None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "true_positives": self.true_positives,
            "predicted": self.predicted,
            "actual": self.actual,
        }


def set_recovery(truth: Sequence[set[str]], predicted: Sequence[set[str]]) -> SetRecovery:
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true sets but {len(predicted)} predicted sets")
    return SetRecovery(
        sum(len(t & p) for t, p in zip(truth, predicted, strict=True)),
        sum(len(p) for p in predicted),
        sum(len(t) for t in truth),
    )


def _check(truth: Sequence[str], predicted: Sequence[str]) -> None:
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
