"""Table 4, inference accuracy and judge agreement computed on constructed answers with known numbers, the
exports, and the participant's Big Five scored with the profiler's keying."""

from __future__ import annotations

import csv
import io
import math

import pytest

from gravity.v1 import profile_pb2
from gravity_study import results as res
from gravity_study.instruments import ipip_items
from gravity_study.personality import big_five


def near(x: float) -> object:
    """Reported figures are rounded to 4 decimals."""
    return pytest.approx(x, abs=1e-3)


METHODS = ["original", "gravity", "tri-agent"]


def screen(
    p: str, country: str, order: list[str], ratings: list[float], judge: list[str] | None = None
) -> res.RankedScreen:
    return res.RankedScreen(
        p,
        country,
        f"b-{p}-{'-'.join(order)}",
        {m: i + 1 for i, m in enumerate(order)},
        dict(zip(order, ratings, strict=True)),
        judge_ranking=tuple(judge or ()),
    )


SCREENS = [
    # USA: gravity wins 2 of 3, tri-agent 1; original last twice
    screen(
        "u1", "USA", ["gravity", "tri-agent", "original"], [5, 4, 2], ["gravity", "original", "tri-agent"]
    ),
    screen(
        "u1", "USA", ["gravity", "original", "tri-agent"], [4, 3, 2], ["tri-agent", "gravity", "original"]
    ),
    screen(
        "u2", "USA", ["tri-agent", "gravity", "original"], [5, 4, 1], ["tri-agent", "gravity", "original"]
    ),
    # Japan: original wins once, gravity once
    screen("j1", "Japan", ["original", "tri-agent", "gravity"], [5, 3, 1]),
    screen("j1", "Japan", ["gravity", "tri-agent", "original"], [4, 4, 4]),
]


def test_table4_overall_matches_hand_counts() -> None:
    t = res.table4(SCREENS, METHODS, samples=200, confidence=0.95, seed=1, group="overall")
    assert t["gravity"]["top1_win_rate"]["value"] == near(300 / 5)
    assert t["tri-agent"]["top1_win_rate"]["value"] == near(100 / 5)
    assert t["original"]["top1_win_rate"]["value"] == near(100 / 5)
    # above the original: gravity in 4 of 5 screens, tri-agent in 3 of 5
    assert t["gravity"]["preference_gain"]["value"] == near(80.0)
    assert t["tri-agent"]["preference_gain"]["value"] == near(60.0)
    assert t["original"]["preference_gain"] is None
    assert t["gravity"]["interestingness"]["value"] == near((5 + 4 + 4 + 1 + 4) / 5)
    assert t["original"]["interestingness"]["value"] == near((2 + 3 + 1 + 5 + 4) / 5)
    e = t["gravity"]["top1_win_rate"]
    assert e["n"] == 5 and e["ci_low"] <= e["value"] <= e["ci_high"]
    # win rates over methods sum to 100 on every screen
    assert sum(t[m]["top1_win_rate"]["value"] for m in METHODS) == near(100.0)


def test_per_country_agreement_and_judge_table4() -> None:
    verifications = [
        res.Verification("u1", "USA", (True, True, True, True, False)),
        res.Verification("u2", "USA", (True, True, True, False, False)),
        res.Verification("j1", "Japan", (True,) * 5),
    ]
    out = res.compute(SCREENS, verifications, METHODS, samples=200, seed=3)
    usa, japan = out["by_country"]["USA"], out["by_country"]["Japan"]
    assert usa["table4"]["gravity"]["top1_win_rate"]["value"] == near(200 / 3)
    assert japan["table4"]["original"]["top1_win_rate"]["value"] == near(50.0)
    assert usa["inference"]["accuracy"]["value"] == near(70.0)  # (80 + 60) / 2 participants
    assert japan["inference"]["accuracy"]["value"] == near(100.0)
    assert out["overall"]["inference"]["accuracy"]["value"] == near((80 + 60 + 100) / 3)
    # judged screens: USA only; identical top-1 on screens 1 and 3 of 3
    agreement = out["overall"]["agreement"]
    assert agreement["screens"] == 3
    assert agreement["identical_top1"]["value"] == near(200 / 3)
    taus = [
        res.kendall_tau(["gravity", "tri-agent", "original"], ["gravity", "original", "tri-agent"]),
        res.kendall_tau(["gravity", "original", "tri-agent"], ["tri-agent", "gravity", "original"]),
        1.0,
    ]
    assert taus[:2] == [near(1 / 3), near(-1 / 3)]
    assert agreement["kendall_tau"]["value"] == near(sum(taus) / 3)
    assert agreement["chance_identical_top1"] == near(100 / 3)
    judge = out["overall"]["judge_table4"]
    assert judge["tri-agent"]["top1_win_rate"]["value"] == near(200 / 3)
    assert judge["gravity"]["preference_gain"]["value"] == near(100.0)  # above the original in all 3
    assert judge["tri-agent"]["preference_gain"]["value"] == near(200 / 3)
    assert japan["judge_table4"] is None and japan["agreement"]["screens"] == 0


def test_kendall_tau_extremes() -> None:
    assert res.kendall_tau(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert res.kendall_tau(["a", "b", "c"], ["c", "b", "a"]) == -1.0
    assert math.isnan(res.kendall_tau(["a"], ["a"]))


def test_csv_and_json_exports_carry_every_number() -> None:
    out = res.compute(SCREENS, [res.Verification("u1", "USA", (True, False))], METHODS, samples=50)
    rows = list(csv.reader(io.StringIO(res.to_csv(out))))
    assert tuple(rows[0]) == res.CSV_HEADERS
    found = {(r[0], r[1], r[2], r[3]): r[4] for r in rows[1:]}
    assert float(found[("overall", "table4", "gravity", "top1_win_rate")]) == near(60.0)
    assert float(found[("country:USA", "inference", "", "accuracy")]) == near(50.0)
    assert ("overall", "table4", "original", "preference_gain") not in found
    assert float(found[("overall", "agreement", "", "identical_top1")]) == near(200 / 3)


def test_big_five_uses_the_profilers_reverse_keying_and_threshold() -> None:
    items = ipip_items()
    # every item answered 5: forward items score high, reverse items count as 1
    answers = {i.id: 5 for i in items}
    personality = big_five(answers, threshold=0.5)
    scores = {t.trait: t.score for t in personality.traits}
    for letter, trait in (("O", profile_pb2.TRAIT_OPENNESS), ("N", profile_pb2.TRAIT_NEUROTICISM)):
        own = [i for i in items if i.trait == letter]
        reverse = sum(1 for i in own if i.reverse)
        expected = ((len(own) - reverse) * 5 + reverse * 1) / len(own)
        assert scores[trait] == near((expected - 1) / 4)
    assert all(t.readable_items == t.items == 4 for t in personality.traits)
    assert personality.estimator == "mini-ipip-self-report"
    low = big_five({i.id: (1 if not i.reverse else 5) for i in items}, threshold=0.5)
    assert {t.level for t in low.traits} == {profile_pb2.TRAIT_LEVEL_LOW}
    with pytest.raises(ValueError, match="without an answer"):
        big_five({i.id: 3 for i in items[:-1]}, threshold=0.5)
