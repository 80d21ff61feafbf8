"""The held-out split is by unit (no training pair shares a statement, book, genre or item with a test pair) and
the profile-blind control really permutes profiles: a derangement, every reader's preamble replaced by
another's, the rest of each pair untouched."""

from __future__ import annotations

from collections import Counter

import pytest

from gravity_core import names
from gravity_fidelity.split import choose_hold_out, derangement, split_pairs, swap_preamble
from gravity_pairgen.rows import Pair, make_pair


def _pairs() -> list[Pair]:
    out = []
    for user in ("u1", "u2", "u3"):
        pre = f"[profile of {user}] "
        for g, d in (("Mystery", "Romance"), ("Poetry", "Horror"), ("Mystery", "Horror")):
            out.append(
                make_pair(user, names.CATEGORY, pre + "pick a genre", g, d, (f"genre:{g}", f"genre:{d}"))
            )
        for a, b in (("A1", "B1"), ("A2", "B2"), ("A3", "B1")):
            out.append(make_pair(user, names.SUMMARY, pre + "pick a book", a, b, (f"asin:{a}", f"asin:{b}")))
        for s in range(12):
            out.append(
                make_pair(
                    user,
                    names.VALUES,
                    pre + f"scenario {s}",
                    "yes",
                    "no",
                    (f"statement:S{s}", f"scenario:{s}"),
                )
            )
        for trait in ("openness", "neuroticism"):
            for i in range(8):
                out.append(
                    make_pair(
                        user, names.PERSONALITY, pre + "situation", "hi", "lo", (f"trait:{trait}{i}",), trait
                    )
                )
    return out


def test_no_training_pair_shares_a_unit_with_a_test_pair() -> None:
    pairs = _pairs()
    hold = choose_hold_out(pairs, 0.25, seed=3)
    train, test = split_pairs(pairs, hold)
    assert train and test and len(train) + len(test) == len(pairs)
    train_units = {u for p in train for u in p.provenance}
    # Scenario ids are not units; every other provenance id of a test pair that is held out is absent from training
    for pair in test:
        held = [u for u in pair.provenance if u in hold.units]
        assert held, pair
        assert not set(held) & train_units
    assert hold.count("statement:") == 3  # a quarter of 12
    assert hold.count("genre:") >= 1 and hold.count("asin:") >= 1
    assert hold.items == 4  # a quarter of each trait's 8 items


def test_hold_out_is_seeded() -> None:
    pairs = _pairs()
    assert choose_hold_out(pairs, 0.25, 3) == choose_hold_out(pairs, 0.25, 3)
    assert choose_hold_out(pairs, 0.25, 3) != choose_hold_out(pairs, 0.25, 4)
    with pytest.raises(ValueError):
        choose_hold_out(pairs, 1.0, 3)


@pytest.mark.parametrize("n", [2, 3, 8, 25])
def test_the_control_shuffle_is_a_derangement(n: int) -> None:
    readers = sorted(f"r{i}" for i in range(n))
    partner = derangement(readers, seed=n)
    assert sorted(partner) == readers
    assert sorted(partner.values()) == readers  # a permutation
    assert all(partner[r] != r for r in readers)  # nobody keeps their own profile
    assert derangement(list(reversed(readers)), seed=n) == partner  # input order does not matter


def test_derangements_differ_by_seed_and_need_two_readers() -> None:
    readers = [f"r{i}" for i in range(8)]
    assert len({tuple(sorted(derangement(readers, s).items())) for s in range(10)}) > 1
    with pytest.raises(ValueError):
        derangement(["only"], 1)


def test_swap_preamble_replaces_only_the_profile() -> None:
    pair = make_pair(
        "u1", names.VALUES, "[profile u1] the question", "yes", "no", ("statement:S1", "scenario:1")
    )
    swapped = swap_preamble(pair, "[profile u1] ", "[profile u2] ")
    assert swapped.prompt == "[profile u2] the question"
    assert (swapped.pair_id, swapped.chosen, swapped.rejected, swapped.provenance) == (
        pair.pair_id,
        pair.chosen,
        pair.rejected,
        pair.provenance,
    )
    with pytest.raises(ValueError):
        swap_preamble(pair, "[profile u3] ", "[profile u2] ")


def test_every_training_pair_of_the_control_carries_another_readers_preamble() -> None:
    pairs = _pairs()
    owner = {p.pair_id: p.prompt.split("]")[0] + "] " for p in pairs}
    users = sorted({pre for pre in owner.values()})
    partner = derangement(users, 5)
    control = [swap_preamble(p, owner[p.pair_id], partner[owner[p.pair_id]]) for p in pairs]
    shown = Counter(c.prompt.split("]")[0] + "] " for c in control)
    assert all(c.prompt.split("]")[0] + "] " != owner[c.pair_id] for c in control)
    # each reader's preamble still appears as often as before: profiles are moved, not dropped
    assert shown == Counter(owner.values())
