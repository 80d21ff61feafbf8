"""The metric functions on constructed predictions: perfect, inverted, all-neutral, invalid answers, and the
baselines computed on the same items."""

from __future__ import annotations

import pytest

from gravity_fidelity.metrics import (
    RANDOM_DRAWS,
    accuracy,
    compare,
    macro_f1,
    majority_label,
    random_baseline,
    set_recovery,
)
from gravity_fidelity.phrasing import STANCES

TRUTH = ["support", "support", "oppose", "oppose", "neutral"]


def test_perfect_predictions_score_one() -> None:
    assert accuracy(TRUTH, TRUTH) == 1.0
    assert macro_f1(TRUTH, TRUTH, STANCES) == 1.0


def test_inverted_stances_score_zero() -> None:
    truth = ["support", "oppose", "support", "oppose"]
    inverted = ["oppose", "support", "oppose", "support"]
    assert accuracy(truth, inverted) == 0.0
    assert macro_f1(truth, inverted, STANCES) == 0.0


def test_all_neutral_predictions() -> None:
    # neutral: TP 1, FP 4, FN 0 -> F1 2/6; support and oppose: F1 0; the macro average is over three labels
    result = compare(TRUTH, ["neutral"] * 5, STANCES)
    assert result.model.accuracy == pytest.approx(0.2)
    assert result.model.macro_f1 == pytest.approx((1 / 3) / 3)


def test_unexpressed_items_all_neutral_truth() -> None:
    """Unexpressed statements: the right answer is neutral, so the majority baseline is perfect there."""
    predicted = ["neutral", "support", "neutral", "oppose"]
    result = compare(["neutral"] * 4, predicted, STANCES)
    assert result.model.accuracy == 0.5
    assert result.majority_label == "neutral"
    assert result.majority.accuracy == 1.0 and result.majority.macro_f1 == 1.0
    assert result.random.accuracy == pytest.approx(1 / 3)


def test_invalid_predictions_are_wrong_and_counted_but_no_class() -> None:
    truth = ["support", "oppose"]
    predicted = ["unreadable", "oppose"]
    result = compare(truth, predicted, STANCES)
    assert result.model.invalid == 1
    assert result.model.accuracy == 0.5
    # support F1 0 (missed), oppose F1 1; "unreadable" adds no class to the average
    assert result.model.macro_f1 == pytest.approx(0.5)


def test_majority_baseline_is_computed_on_the_same_items() -> None:
    truth = ["support", "support", "oppose"]
    assert majority_label(truth, list(STANCES)) == "support"
    result = compare(truth, ["oppose"] * 3, STANCES)
    assert result.majority.accuracy == pytest.approx(2 / 3)
    # support: TP 2, FP 1 -> F1 0.8; oppose: TP 0 -> 0
    assert result.majority.macro_f1 == pytest.approx(0.4)


def test_majority_ties_follow_label_order() -> None:
    assert majority_label(["oppose", "support"], list(STANCES)) == "support"


def test_random_baseline_is_exact_in_accuracy_and_seeded_in_f1() -> None:
    truth = ["support", "oppose", "neutral"] * 100
    first = random_baseline(truth, STANCES, seed=3)
    assert first.accuracy == pytest.approx(1 / 3)
    assert first == random_baseline(truth, STANCES, seed=3)
    # balanced classes: every label's expected F1 is about 1/3
    assert first.macro_f1 == pytest.approx(1 / 3, abs=0.03)
    assert RANDOM_DRAWS >= 100


def test_two_label_random_baseline() -> None:
    assert random_baseline(["high", "low", "low"], ("high", "low")).accuracy == 0.5


def test_empty_items_have_no_score() -> None:
    result = compare([], [], STANCES)
    assert result.model.n == 0 and result.model.accuracy is None and result.random.macro_f1 is None


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        accuracy(["support"], [])


def test_set_recovery_is_micro_averaged() -> None:
    result = set_recovery([{"A", "B"}, {"C"}], [{"A"}, {"C", "D"}])
    assert result.true_positives == 2
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == pytest.approx(2 / 3)
    assert set_recovery([set()], [set()]).precision is None


def test_the_comparison_shows_what_was_predicted() -> None:
    result = compare(["support", "oppose", "oppose"], ["support", "support", "unreadable"], STANCES)
    assert result.predicted == {"support": 2, "unreadable": 1}
    assert result.confusion == {"oppose": {"support": 1, "unreadable": 1}, "support": {"support": 1}}
    assert result.to_dict()["predicted"] == result.predicted
