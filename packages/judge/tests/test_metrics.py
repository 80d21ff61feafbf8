"""Metric arithmetic on hand-made judgments: no model involved."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import wilcoxon

from gravity_judge.evaluate import UnitResult
from gravity_judge.inputs import Unit
from gravity_judge.judging import (
    LikertJudgment,
    PairJudgment,
    RankJudgment,
    likert_from_answer,
    pair_from_answers,
    rank_from_answers,
)
from gravity_judge.metrics import ablation_tests, method_metrics, preference_values, win_values
from gravity_judge.persona import Persona
from gravity_judge.scoring import Answer
from gravity_judge.settings import JudgeSettings
from gravity_judge.stats import estimate, paired_wilcoxon, resample_indices, stars


def _unit(i: int, country: str = "USA", genre_group: str = "Fiction") -> Unit:
    persona = Persona(f"u{i}", "young", "female", country, "")
    return Unit(f"u{i}", f"b{i}", "T", "G", genre_group, "orig", {"gravity": "g", "lamp": "l"}, persona)


def _rank(winners: list[str], candidates=("original", "lamp", "gravity")) -> RankJudgment:
    probs = {c: (1.0 / len(winners) if c in winners else 0.0) for c in candidates}
    return RankJudgment(
        list(candidates), probs, sorted(candidates, key=lambda c: -probs[c]), winners, 1.0, 3, 3, 1, True
    )


def _pair(method: str, p_method: float, usable: bool = True, margin: float = 0.0) -> PairJudgment:
    outcome = "b" if p_method > 0.5 + margin else ("a" if p_method < 0.5 - margin else "tie")
    return PairJudgment("original", method, 1 - p_method, outcome, True, False, usable)


def _likert(method: str, score: float) -> LikertJudgment:
    return LikertJudgment(method, score, (), not math.isnan(score))


def test_rank_averages_first_place_over_orders_and_scores_agreement() -> None:
    ids = ["original", "lamp", "gravity"]
    perms = [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
    labels = ("A", "B", "C")
    # order 1 shows gravity third and picks it; order 2 shows gravity second and picks it;
    # order 3 shows gravity first but picks lamp (shown third).
    answers = [
        Answer(labels, (0.1, 0.1, 0.8), "logprobs", True),
        Answer(labels, (0.2, 0.7, 0.1), "logprobs", True),
        Answer(labels, (0.3, 0.1, 0.6), "logprobs", True),
    ]
    r = rank_from_answers(ids, perms, answers)
    assert r.first_place["gravity"] == pytest.approx((0.8 + 0.7 + 0.3) / 3)
    assert r.first_place["lamp"] == pytest.approx((0.1 + 0.2 + 0.6) / 3)
    assert r.first_place["original"] == pytest.approx((0.1 + 0.1 + 0.1) / 3)
    assert r.winners == ["gravity"] and r.ranking == ["gravity", "lamp", "original"]
    assert r.order_agreement == pytest.approx(2 / 3)
    assert r.first_position_picks == 0  # the pick was never the description shown first


def test_rank_skips_unusable_orders_and_marks_all_unusable() -> None:
    ids = ["original", "gravity"]
    ok = Answer(("A", "B"), (0.2, 0.8), "logprobs", True)
    bad = Answer.unusable(("A", "B"), "unreadable_answer", "hmm")
    r = rank_from_answers(ids, [[0, 1], [1, 0]], [ok, bad])
    assert r.usable and r.orders_used == 1 and r.first_place["gravity"] == pytest.approx(0.8)
    none = rank_from_answers(ids, [[0, 1], [1, 0]], [bad, bad])
    assert not none.usable and none.reason == "unreadable_answer"


def test_exact_ties_split_the_win() -> None:
    ids = ["original", "lamp", "gravity"]

    def parsed(i: int) -> Answer:
        return Answer(("A", "B", "C"), tuple(1.0 if k == i else 0.0 for k in range(3)), "parsed", True)

    r = rank_from_answers(ids, [[0, 1, 2], [0, 1, 2]], [parsed(1), parsed(2)])
    assert r.winners == ["lamp", "gravity"]
    res = [UnitResult(_unit(0), ranking=r)]
    assert win_values(res, "lamp")[0] == 0.5 and win_values(res, "original")[0] == 0.0


def test_pair_is_averaged_over_both_orders_and_flags_position_bias() -> None:
    # A/B order: a (original) shown first; B/A order: b shown first.
    content = pair_from_answers(
        "original",
        "gravity",
        Answer(("A", "B"), (0.3, 0.7), "logprobs", True),  # prefers gravity in slot B
        Answer(("A", "B"), (0.8, 0.2), "logprobs", True),  # prefers gravity in slot A
    )
    assert content.probability_a == pytest.approx((0.3 + 0.2) / 2)
    assert content.outcome == "b" and content.preferred == "gravity"
    assert content.orders_agree and not content.position_biased

    biased = pair_from_answers(
        "original",
        "gravity",
        Answer(("A", "B"), (0.9, 0.1), "logprobs", True),
        Answer(("A", "B"), (0.7, 0.3), "logprobs", True),
    )
    assert biased.position_biased and not biased.orders_agree
    # averaged P(original) = (0.9 + 0.3) / 2 = 0.6: the position-biased judge still leans to the original
    assert biased.probability_a == pytest.approx(0.6) and biased.outcome == "a"

    parsed_bias = pair_from_answers(
        "original",
        "gravity",
        Answer(("A", "B"), (1.0, 0.0), "parsed", True),
        Answer(("A", "B"), (1.0, 0.0), "parsed", True),
    )
    assert parsed_bias.outcome == "tie" and parsed_bias.preferred == "" and parsed_bias.position_biased

    margin = pair_from_answers(
        "original",
        "gravity",
        Answer(("A", "B"), (0.45, 0.55), "logprobs", True),
        Answer(("A", "B"), (0.55, 0.45), "logprobs", True),
        0.1,
    )
    assert margin.outcome == "tie"  # P(gravity) = 0.55, inside the 0.1 tie margin


def test_likert_expectation_from_the_answer_distribution() -> None:
    answer = Answer(("1", "2", "3", "4", "5"), (0.1, 0.1, 0.2, 0.2, 0.4), "logprobs", True)
    rating = likert_from_answer("gravity", answer)
    assert rating.score == pytest.approx(0.1 + 0.2 + 0.6 + 0.8 + 2.0)
    assert not likert_from_answer("x", Answer.unusable(answer.labels, "unreadable_answer")).usable


def test_method_metrics_rates_ties_and_missing_units() -> None:
    results = [
        UnitResult(
            _unit(0),
            _rank(["gravity"]),
            {"gravity": _pair("gravity", 0.8), "lamp": _pair("lamp", 0.3)},
            {"original": _likert("original", 3.0), "gravity": _likert("gravity", 4.5)},
            {"gravity": 70.0, "lamp": 90.0},
        ),
        UnitResult(
            _unit(1),
            _rank(["lamp"]),
            {"gravity": _pair("gravity", 0.5), "lamp": _pair("lamp", 0.9)},
            {"original": _likert("original", 2.0), "gravity": _likert("gravity", float("nan"))},
            {"gravity": 80.0},
        ),
        UnitResult(
            _unit(2),
            _rank(["gravity"]),
            {"gravity": _pair("gravity", 0.6), "lamp": _pair("lamp", 0.6, usable=False)},
            {},
            {},
        ),
        UnitResult(_unit(3), None, {}, {}, {}),  # nothing judged: counts nowhere
    ]
    cfg = JudgeSettings(bootstrap_samples=200)
    out = method_metrics(results, ["original", "lamp", "gravity"], cfg, "test")
    assert out["gravity"]["top1_win_rate"]["value"] == pytest.approx(200 / 3, abs=1e-3)
    assert out["gravity"]["top1_win_rate"]["n"] == 3
    assert out["original"]["top1_win_rate"]["value"] == 0.0
    gain = out["gravity"]["preference_gain"]
    assert (gain["wins"], gain["ties"], gain["losses"], gain["n"]) == (2, 1, 0, 3)
    assert gain["value"] == pytest.approx(200 / 3, abs=1e-3)  # ties are not preferences
    assert out["lamp"]["preference_gain"]["n"] == 2 and out["lamp"]["preference_gain"]["value"] == 50.0
    assert out["gravity"]["interestingness"]["value"] == 4.5 and out["gravity"]["interestingness"]["n"] == 1
    assert out["original"]["interestingness"]["value"] == 2.5
    assert out["gravity"]["similarity"]["value"] == 75.0
    assert out["original"]["preference_gain"] is None and out["original"]["similarity"] is None
    lo, hi = gain["ci_low"], gain["ci_high"]
    assert 0.0 <= lo <= gain["value"] <= hi <= 100.0


def test_bootstrap_interval_is_seeded_and_shrinks_with_more_units() -> None:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 2, 20).astype(float)
    large = np.tile(small, 25)
    a = estimate(small, resample_indices(20, 500, 7), 0.95, 100)
    b = estimate(small, resample_indices(20, 500, 7), 0.95, 100)
    assert a == b
    c = estimate(large, resample_indices(500, 500, 7), 0.95, 100)
    assert c.value == pytest.approx(a.value)
    assert (c.high - c.low) < (a.high - a.low) / 2
    const = estimate(np.ones(10), resample_indices(10, 100, 1), 0.95, 100)
    assert const.low == const.high == const.value == 100.0
    empty = estimate(np.array([math.nan, math.nan]), resample_indices(2, 10, 1))
    assert empty.value is None and empty.n == 0


def test_wilcoxon_matches_scipy_and_stars() -> None:
    rng = np.random.default_rng(3)
    ref = rng.uniform(0.6, 0.9, 30)
    worse = ref - rng.uniform(0.05, 0.2, 30)
    result = paired_wilcoxon(ref, worse)
    expected = wilcoxon(ref - worse)
    assert result.p_value == pytest.approx(expected.pvalue) and result.n == 30
    assert result.p_value < 0.01 and result.stars == "**"
    noisy = ref + rng.normal(0, 0.05, 30)
    assert paired_wilcoxon(ref, noisy).stars in ("", "*")
    same = paired_wilcoxon(ref, ref.copy())
    assert same.p_value == 1.0 and same.stars == "" and same.n_nonzero == 0
    with_nan = paired_wilcoxon(np.array([0.9, math.nan, 0.8]), np.array([0.1, 0.5, math.nan]))
    assert with_nan.n == 1
    assert stars(0.049) == "*" and stars(0.0099) == "**" and stars(0.05) == "" and stars(None) == ""


def test_ablation_tests_pair_units_and_report_delta() -> None:
    results = []
    for i in range(12):
        unit = _unit(i)
        unit.outputs["gravity-no-values"] = "x"
        pairs = {
            "gravity": _pair("gravity", 0.8),
            "gravity-no-values": _pair("gravity-no-values", 0.8 if i < 4 else 0.3),
        }
        if i == 11:
            del pairs["gravity-no-values"]  # not judged: the unit is left out of the paired test
        results.append(UnitResult(unit, pairs=pairs))
    out = ablation_tests(
        results, ["original", "gravity", "gravity-no-values"], JudgeSettings(bootstrap_samples=100)
    )
    (test,) = out["tests"]
    assert test["n_pairs"] == 11
    assert test["reference_gain"] == 100.0
    assert test["preference_gain"] == pytest.approx(400 / 11, abs=1e-3)
    assert test["delta"]["value"] == pytest.approx(400 / 11 - 100, abs=1e-3)
    assert test["wilcoxon"]["p_value"] < 0.05 and test["wilcoxon"]["stars"] in ("*", "**")
    missing_ref = ablation_tests(results, ["original", "gravity-no-values"], JudgeSettings())
    assert missing_ref["tests"] == [] and "reference" in missing_ref["note"]


def test_grouping_by_country_and_genre_and_reliability() -> None:
    from gravity_judge.evaluate import EvaluationRun, UnusableLog
    from gravity_judge.inputs import EvaluationSet
    from gravity_judge.metrics import aggregate

    results = [
        UnitResult(_unit(0, "USA", "Fiction"), _rank(["gravity"]), {"gravity": _pair("gravity", 0.9)}),
        UnitResult(_unit(1, "USA", "Nonfiction"), _rank(["lamp"]), {"gravity": _pair("gravity", 0.2)}),
        UnitResult(_unit(2, "Japan", "Fiction"), _rank(["gravity"]), {"gravity": _pair("gravity", 0.7)}),
    ]
    results[1].pairs["gravity"].position_biased = True
    results[1].pairs["gravity"].orders_agree = False
    evalset = EvaluationSet([r.unit for r in results], ["lamp", "gravity"])
    run = EvaluationRun(
        evalset,
        results,
        ["original", "lamp", "gravity"],
        ["ranking", "pairwise"],
        UnusableLog(),
        "m",
        "b",
        "auto",
        0,
        __import__("collections").Counter(),
        {},
        {},
    )
    agg = aggregate(run, JudgeSettings(bootstrap_samples=50))
    assert list(agg["by_country"]) == ["USA", "Japan"]
    assert agg["by_country"]["USA"]["units"] == 2
    assert agg["by_country"]["USA"]["methods"]["gravity"]["preference_gain"]["value"] == 50.0
    assert agg["by_country"]["Japan"]["methods"]["gravity"]["top1_win_rate"]["value"] == 100.0
    assert agg["by_genre_group"]["Fiction"]["methods"]["gravity"]["preference_gain"]["value"] == 100.0
    assert agg["by_genre_group"]["Nonfiction"]["methods"]["gravity"]["preference_gain"]["value"] == 0.0
    rel = agg["reliability"]["pairwise"]
    assert rel["pairs"] == 3 and rel["position_bias_rate"]["value"] == pytest.approx(100 / 3, abs=1e-3)
    assert rel["order_agreement"]["value"] == pytest.approx(200 / 3, abs=1e-3)
    assert np.all(np.isnan(preference_values(results, "lamp")))  # lamp was never compared
