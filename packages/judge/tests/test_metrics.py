"""Metric arithmetic on hand-made judgments: no model involved."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from judge_fixtures import ScriptedJudge
from scipy.stats import wilcoxon

from gravity_judge.debias import correct, estimate_prior
from gravity_judge.evaluate import UnitResult
from gravity_judge.inputs import Unit
from gravity_judge.judging import (
    LikertJudgment,
    PairJudgment,
    PaperRanking,
    RankJudgment,
    likert_from_answer,
    pair_from_answers,
    rank_from_answers,
)
from gravity_judge.metrics import (
    ablation_tests,
    aggregate,
    likert_values,
    method_metrics,
    preference_values,
    win_values,
)
from gravity_judge.ordering import balanced_orders
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
    run.protocols = ["debiased"]
    agg = aggregate(run, JudgeSettings(bootstrap_samples=50))
    debiased = agg["by_protocol"]["debiased"]
    assert list(debiased["by_country"]) == ["USA", "Japan"]
    assert debiased["by_country"]["USA"]["units"] == 2
    assert debiased["by_country"]["USA"]["methods"]["gravity"]["preference_gain"]["value"] == 50.0
    assert debiased["by_country"]["Japan"]["methods"]["gravity"]["top1_win_rate"]["value"] == 100.0
    assert debiased["by_genre_group"]["Fiction"]["methods"]["gravity"]["preference_gain"]["value"] == 100.0
    assert debiased["by_genre_group"]["Nonfiction"]["methods"]["gravity"]["preference_gain"]["value"] == 0.0
    rel = agg["position_bias"]["debiased"]["pairwise"]
    assert rel["pairs"] == 3
    assert rel["position_bias_rate"]["after"]["value"] == pytest.approx(100 / 3, abs=1e-3)
    assert rel["order_agreement"]["value"] == pytest.approx(200 / 3, abs=1e-3)
    assert agg["agreement"] is None and "paper" not in agg["position_bias"]
    assert np.all(np.isnan(preference_values(results, "lamp")))  # lamp was never compared


# ------------------------------------------------------------------ the paper protocol's reading
def _paper(shown: list[str], ranking: list[str], usable: bool = True) -> PaperRanking:
    return PaperRanking(sorted(shown), shown, ranking if usable else [], usable, "" if usable else "x")


def test_paper_top1_and_preference_gain_come_from_one_ranking() -> None:
    shown = ["lamp", "original", "gravity"]
    results = [
        UnitResult(_unit(0), paper=_paper(shown, ["gravity", "original", "lamp"])),
        UnitResult(_unit(1), paper=_paper(shown, ["lamp", "gravity", "original"])),
        UnitResult(_unit(2), paper=_paper(shown, ["original", "lamp", "gravity"])),
        UnitResult(_unit(3), paper=_paper(shown, [], usable=False)),  # unparsable: counted nowhere
    ]
    assert list(win_values(results, "gravity", "paper")[:3]) == [1.0, 0.0, 0.0]
    assert math.isnan(win_values(results, "gravity", "paper")[3])
    # ranked above the original in the same ranking, even when not first
    assert list(preference_values(results, "gravity", "paper")[:3]) == [1.0, 1.0, 0.0]
    assert list(preference_values(results, "lamp", "paper")[:3]) == [0.0, 1.0, 0.0]
    out = method_metrics(
        results, ["original", "lamp", "gravity"], JudgeSettings(bootstrap_samples=0), "t", "paper"
    )
    assert out["gravity"]["top1_win_rate"]["value"] == pytest.approx(100 / 3, abs=1e-3)
    assert out["gravity"]["top1_win_rate"]["n"] == 3
    gain = out["gravity"]["preference_gain"]
    assert gain["value"] == pytest.approx(200 / 3, abs=1e-3) and (
        gain["wins"],
        gain["ties"],
        gain["losses"],
    ) == (2, 0, 1)
    assert out["original"]["top1_win_rate"]["value"] == pytest.approx(100 / 3, abs=1e-3)
    # the debiased columns of the same units are empty: no top pick or pairs were asked
    assert (
        method_metrics(results, ["gravity"], JudgeSettings(), "t")["gravity"]["top1_win_rate"]["value"]
        is None
    )


def test_paper_interestingness_is_the_answer_and_debiased_the_expectation() -> None:
    answer = Answer(("1", "2", "3", "4", "5"), (0.1, 0.1, 0.2, 0.45, 0.15), "logprobs", True)
    rating = likert_from_answer("gravity", answer)
    results = [UnitResult(_unit(0), likert={"gravity": rating})]
    assert likert_values(results, "gravity", "paper")[0] == 4.0
    assert likert_values(results, "gravity", "debiased")[0] == pytest.approx(3.45)


# ------------------------------------------------------------------ the debiased protocol's correction
PLANTED = (0.55, 0.25, 0.15, 0.05)  # a judge that prefers slot A whatever it shows


def _answers_with_prior(content: list[float], perms: list[list[int]], prior=PLANTED) -> list[Answer]:  # type: ignore[no-untyped-def]
    """P(slot j) ∝ prior(j) · content(candidate shown in j): a pure position prior on top of a preference."""
    labels = tuple("ABCD"[: len(content)])
    out = []
    for perm in perms:
        w = [prior[j] * content[c] for j, c in enumerate(perm)]
        out.append(Answer(labels, tuple(x / sum(w) for x in w), "logprobs", True))
    return out


def test_pride_estimates_a_planted_slot_prior_and_divides_it_out() -> None:
    perms = balanced_orders(4, 0, random.Random(5))
    contents = [[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25], [0.05, 0.05, 0.8, 0.1]]
    answers = [a for c in contents for a in _answers_with_prior(c, perms)]
    prior = estimate_prior([a.probabilities for a in answers])
    assert prior is not None and prior.observations == 16
    assert prior.probabilities == pytest.approx(PLANTED, abs=1e-9)
    for a in answers[:4]:  # each corrected answer is the content preference of the slots' descriptions
        assert correct(a.probabilities, prior) != pytest.approx(a.probabilities)
    ids = ["original", "lamp", "gravity", "tri-agent"]
    for content in contents:
        raw = rank_from_answers(ids, perms, _answers_with_prior(content, perms))
        fixed = rank_from_answers(ids, perms, _answers_with_prior(content, perms), prior)
        assert [fixed.first_place[k] for k in ids] == pytest.approx(content, abs=1e-9)
        assert fixed.prior is prior and raw.balanced and fixed.balanced
        if len(set(content)) == 1:  # no preference: the raw answers pick whatever sits in slot A
            assert raw.raw_picks == [0, 0, 0, 0] and raw.first_position_picks == 4
        best = max(range(4), key=lambda i: content[i])
        if content.count(max(content)) == 1:
            assert fixed.winners == [ids[best]] and fixed.order_agreement == 1.0
            assert fixed.picks == [perm.index(best) for perm in perms]  # the slot the favourite sat in


def test_pride_on_pairs_turns_same_slot_answers_into_the_content_preference() -> None:
    def pair(p_method: float, prior=(0.85, 0.15)) -> tuple[Answer, Answer]:  # type: ignore[no-untyped-def]
        ab = [prior[0] * (1 - p_method), prior[1] * p_method]  # original in slot A
        ba = [prior[0] * p_method, prior[1] * (1 - p_method)]  # method in slot A
        norm = lambda w: tuple(x / sum(w) for x in w)  # noqa: E731
        return Answer(("A", "B"), norm(ab), "logprobs", True), Answer(("A", "B"), norm(ba), "logprobs", True)

    answers = [pair(p) for p in (0.7, 0.6, 0.3, 0.65)]
    prior = estimate_prior([a.probabilities for ab in answers for a in ab])
    assert prior is not None and prior.probabilities == pytest.approx((0.85, 0.15), abs=1e-9)
    raw = pair_from_answers("original", "gravity", *answers[0])
    fixed = pair_from_answers("original", "gravity", *answers[0], prior=prior)
    assert raw.position_biased  # slot A won both orders, so the slot decided
    assert fixed.probability_a == pytest.approx(0.3) and fixed.outcome == "b" and not fixed.position_biased
    assert fixed.raw_position_biased and fixed.raw_probability_a == pytest.approx(raw.probability_a)


def test_parsed_answers_are_not_rescaled() -> None:
    one_hot = Answer(("A", "B"), (1.0, 0.0), "parsed", True)
    prior = estimate_prior([(0.9, 0.1), (0.8, 0.2)])
    fixed = pair_from_answers("original", "gravity", one_hot, one_hot, prior=prior)
    assert fixed.probability_a == 0.5 and fixed.position_biased and fixed.outcome == "tie"
    assert estimate_prior([]) is None


def test_evaluation_corrects_a_planted_prior_and_reports_bias_before_and_after(
    generations_path,
    profiles_path,  # type: ignore[no-untyped-def]
) -> None:
    """End to end on the scripted judge with a strong slot-A prior: before the correction the top picks sit
    in slot A; after it, the VIVID descriptions win every unit and the slot-A share falls to the share of
    units where a VIVID description was shown there."""
    from gravity_core.profiles import ProfileStore
    from gravity_core.skips import SkipLog
    from gravity_judge.evaluate import Evaluator
    from gravity_judge.inputs import assemble, rows_from_file
    from gravity_judge.judging import Judge

    store = ProfileStore.from_jsonl(profiles_path, SkipLog())
    skips = SkipLog()
    evalset = assemble(
        rows_from_file(generations_path, skips), lambda u: Persona.from_profile(store.get(u)), skips
    )
    cfg = JudgeSettings(bootstrap_samples=0, metrics=["ranking", "pairwise"], protocol="debiased")
    prior = (0.9, 0.06, 0.03, 0.01)
    llm = ScriptedJudge(mode="prior", prior=prior)
    run = Evaluator(lambda: Judge(llm, cfg), cfg).run(evalset)
    assert run.priors.ranking[4] is not None
    assert run.priors.ranking[4].probabilities == pytest.approx(prior, abs=1e-6)
    assert run.priors.pairwise.probabilities == pytest.approx((0.9 / 0.96, 0.06 / 0.96), abs=1e-6)
    for r in run.results:
        assert set(r.ranking.winners) <= {"lamp", "gravity"}
        assert sum(1 for p in r.ranking.raw_picks if p == 0) >= 3  # slot A won before the correction
        assert all(p.outcome == ("b" if "VIVID" in r.unit.outputs[m] else "tie") for m, p in r.pairs.items())
    bias = aggregate(run, cfg)["position_bias"]["debiased"]
    assert bias["ranking"]["before"]["first_slot_rate"]["value"] == 100.0
    assert (
        bias["ranking"]["after"]["first_slot_rate"]["value"] == 50.0
    )  # 2 VIVID of 4: in slot A half the time
    assert bias["pairwise"]["position_bias_rate"]["before"]["value"] == 100.0
    assert bias["pairwise"]["position_bias_rate"]["after"]["value"] < 100.0
