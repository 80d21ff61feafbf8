"""Learning: the scoring arithmetic on constructed margins, the held-out sample, and one small real run (pairs
from the truth by the pair generator, two adapters by the real trainer, held-out pairs scored by the real
model) whose files and report are checked for shape and for the control's shuffle, never for quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gravity_core import names
from gravity_fidelity.learning import (
    CONTROL,
    NAMED,
    EvalPair,
    FacetAccuracy,
    LearningOptions,
    adapter_path,
    facet_accuracies,
    fits,
    sample_eval_pairs,
)
from gravity_pairgen.rows import make_pair


def _margins(base: list[float], gravity: list[float], control: list[float]) -> dict[str, np.ndarray]:
    return {"base": np.array(base), names.GRAVITY: np.array(gravity), CONTROL: np.array(control)}


def test_accuracy_is_the_share_of_positive_margins_and_nan_is_left_out() -> None:
    acc = FacetAccuracy(
        "values", 4, _margins([1.0, -1.0, 2.0, np.nan], [1.0, 1.0, 2.0, np.nan], [-1, -1, -1, np.nan])
    )
    assert acc.accuracy("base") == pytest.approx(2 / 3)
    assert acc.accuracy(names.GRAVITY) == 1.0
    assert acc.accuracy(CONTROL) == 0.0
    d = acc.to_dict(seed=1)
    assert d["unscored"] == 1
    assert d["gap"]["value"] == 1.0
    assert d["gap"]["ci_low"] <= d["gap"]["value"] <= d["gap"]["ci_high"]


def test_implicit_reward_counts_margins_raised_over_the_base_model() -> None:
    # GRAVITY raises two of three margins without flipping any preference; the control lowers all
    acc = FacetAccuracy("personality", 3, _margins([-5.0, -4.0, 3.0], [-4.0, -3.0, 2.0], [-6.0, -5.0, 2.0]))
    assert acc.accuracy(names.GRAVITY) == acc.accuracy("base") == pytest.approx(1 / 3)
    implicit = acc.to_dict(seed=1)["implicit_reward_accuracy"]
    assert implicit[names.GRAVITY] == pytest.approx(2 / 3, abs=1e-4) and implicit[CONTROL] == 0.0
    assert implicit["gap"]["value"] == pytest.approx(2 / 3, abs=1e-4)


def test_empty_facets_have_no_score() -> None:
    d = FacetAccuracy("interests", 0, _margins([], [], [])).to_dict(seed=1)
    assert d["n"] == 0 and d["base"] is None and d["gap"]["value"] is None


def _pair(user: str, facet: str, unit: str):
    return make_pair(user, facet, f"[{user}] q", "a", "b", (unit,))


def test_the_sample_takes_each_group_round_robin_over_readers() -> None:
    test = []
    for user in ("u1", "u2"):
        test += [_pair(user, names.CATEGORY, f"genre:g{i}") for i in range(5)]
        test += [_pair(user, names.PERSONALITY, f"bank:item{i}") for i in range(5)]
        test += [_pair(user, names.VALUES, f"statement:S{i}") for i in range(8)]
    owners = {p.pair_id: p.prompt[1:3] for p in test}
    named = {"u1": {"S1", "S2", "S3"}, "u2": {"S4"}}
    chosen = sample_eval_pairs(test, owners, named, per_facet=4, seed=5)
    by_facet = {
        f: [e for e in chosen if e.facet == f] for f in (names.INTERESTS, names.VALUES, names.PERSONALITY)
    }
    assert len(by_facet[names.INTERESTS]) == len(by_facet[names.PERSONALITY]) == 4
    for facet in (names.INTERESTS, names.PERSONALITY):
        assert sorted(e.user_id for e in by_facet[facet]) == ["u1", "u1", "u2", "u2"]
    unnamed = [e for e in by_facet[names.VALUES] if not e.named]
    named_pairs = [e for e in by_facet[names.VALUES] if e.named]
    assert len(unnamed) == 4 and len(named_pairs) == 4
    for e in named_pairs:
        assert e.pair.provenance[0].removeprefix("statement:") in named[e.user_id]
    for e in unnamed:
        assert e.pair.provenance[0].removeprefix("statement:") not in named[e.user_id]
    assert sorted(e.user_id for e in named_pairs) == ["u1", "u1", "u1", "u2"]  # u2 has only one
    assert len({e.pair.pair_id for e in chosen}) == len(chosen)
    assert chosen == sample_eval_pairs(test, owners, named, per_facet=4, seed=5)


def test_facets_split_named_values_pairs_apart() -> None:
    pairs = [
        EvalPair("u", names.VALUES, _pair("u", names.VALUES, "statement:S1"), named=True),
        EvalPair("u", names.VALUES, _pair("u", names.VALUES, "statement:S2")),
        EvalPair("u", names.INTERESTS, _pair("u", names.SUMMARY, "asin:B1")),
    ]
    groups = {a.facet: a.n for a in facet_accuracies(pairs, _margins([1, 1, 1], [1, 1, 1], [1, 1, 1]))}
    assert groups == {names.INTERESTS: 1, names.VALUES: 1, NAMED: 1, names.PERSONALITY: 0}


def test_fits_leaves_room_for_an_answer() -> None:
    assert fits(["x" * 10, "x" * 100], len, 100) == [True, False]


def test_bad_options_name_the_option() -> None:
    from gravity_core.errors import InvalidInput

    for options, option in [
        (LearningOptions(steps=0), "--steps"),
        (LearningOptions(hold_out=1.0), "--hold-out"),
        (LearningOptions(eval_pairs=0), "--eval-pairs"),
    ]:
        with pytest.raises(InvalidInput) as err:
            options.check()
        assert err.value.field == option


@pytest.mark.model
def test_a_small_real_learning_run(tmp_path: Path, make_settings) -> None:
    """2 planted readers; 1 step of 2 pairs per adapter; up to 2 held-out pairs per group, scored by 3 models."""
    import pyarrow.parquet as pq

    from gravity_core.prompts import gravity_preamble
    from gravity_fidelity.plant import PlantOptions, plant
    from gravity_fidelity.steps import learning_step
    from gravity_fidelity.truth import read_truths, truth_profile

    truth_dir = tmp_path / "planted"
    plant(PlantOptions(readers=2, seed=4), truth_dir)
    options = LearningOptions(
        steps=1, batch_size=2, eval_pairs=2, items_per_trait=4, max_length=320, overrides={"max_eval_rows": 2}
    )
    lines: list[str] = []
    data = learning_step(make_settings(), truth_dir, tmp_path / "out", options, lines.append)

    truths = read_truths(truth_dir)
    preamble = {t.user_id: gravity_preamble(truth_profile(t)) for t in truths}
    partner = data["control_derangement"]
    assert sorted(partner) == sorted(preamble) and all(partner[u] != u for u in partner)
    learning_dir = tmp_path / "out" / "learning"
    train_ids = set()
    for variant in (names.GRAVITY, CONTROL):
        assert (adapter_path(learning_dir, variant) / "adapter_model.safetensors").is_file()
        assert data["training"][variant]["steps"] == 1
        for shard in sorted((learning_dir / "pairs" / variant / names.GRAVITY).glob("*.parquet")):
            rows = pq.read_table(shard).to_pylist()
            for row in rows:
                user = row["user_id"]
                shown = preamble[user] if variant == names.GRAVITY else preamble[partner[user]]
                assert row["prompt"].startswith(shown), (variant, user)
                train_ids.add(row["pair_id"])
    # the same pairs train both adapters; no scored pair is a training pair
    scored = data["scored"]
    assert scored and not {s["pair_id"] for s in scored} & train_ids
    assert data["pairs"]["train"]["all"] + data["pairs"]["test"]["all"] <= data["pairs"]["built"]["all"]
    assert set(data["accuracy"]) == {names.INTERESTS, names.VALUES, NAMED, names.PERSONALITY}
    for group in (names.INTERESTS, names.VALUES, NAMED, names.PERSONALITY):
        assert data["accuracy"][group]["n"] <= 2
    assert data["accuracy"][names.INTERESTS]["n"] == data["accuracy"][names.PERSONALITY]["n"] == 2
    assert all(set(s["margin"]) == {"base", names.GRAVITY, CONTROL} for s in scored)
    assert all(s["margin"]["base"] is not None for s in scored)  # the embedded model gives log-probabilities
