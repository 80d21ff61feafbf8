"""The demo's stage clock: overlapping stages, the estimate of the time left and the table (no processes)."""

from __future__ import annotations

import time

import pytest

from gravity_stack.processes import THREAD_VARIABLES, thread_env
from gravity_stack.timing import FASTEST_PACE, MODEL_CONVERSION_S, REFERENCE_S, StageClock, slot_schedule


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The clock the stages read: ``now[0] += s`` lets ``s`` seconds pass."""
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    return clock


def test_estimate_scales_the_reference_by_this_runs_speed_and_the_table_shows_overlap(
    now: list[float],
) -> None:
    lines: list[str] = []
    clock = StageClock(lines.append)
    clock.plan("broker", "broker")
    clock.plan("profiling", "profiling", units=4)
    clock.plan("generation", "generation", units=10)
    clock.plan("judging", "judging", units=2)
    assert clock.remaining_s() is None  # nothing finished: nothing to scale by
    with clock.step("broker"):
        now[0] += 2 * REFERENCE_S["broker"]  # this machine runs at half the reference speed
    # ... which a stage of seconds cannot tell (the demo began by saying 9 minutes with 14 to go): the reference
    reference_left = (
        4 * REFERENCE_S["profiling"] + 10 * REFERENCE_S["generation"] + 2 * REFERENCE_S["judging"]
    )
    assert clock.remaining_s() == pytest.approx(reference_left)
    clock.begin("profiling")
    now[0] += 2 * 4 * REFERENCE_S["profiling"] - 5
    clock.begin("generation")  # overlaps profiling
    now[0] += 5
    clock.end("profiling")  # a long stage at half the reference speed: the rest is expected at that pace
    assert clock.remaining_s() == pytest.approx(
        2 * (10 * REFERENCE_S["generation"] + 2 * REFERENCE_S["judging"]) - 5
    )
    now[0] += 20
    clock.end("generation")
    assert any("left, estimated" in line for line in lines)  # printed as each later stage began
    table = clock.table()
    assert table.splitlines()[0].split() == ["stage", "from", "to", "seconds", "share"]
    assert "generation" in table and "judging" not in table  # a stage that never began is not listed
    assert "overlapped for 5s" in table
    assert clock.as_dict()["generation"] == {
        "start_s": pytest.approx(2 * REFERENCE_S["broker"] + 2 * 4 * REFERENCE_S["profiling"] - 5, abs=0.1),
        "seconds": 25.0,
        "units": 10,
    }


def test_running_stages_overlap_and_a_stage_reporting_progress_is_extrapolated_from_its_pace(
    now: list[float],
) -> None:
    clock = StageClock(lambda _: None)
    clock.plan("broker", "broker")
    clock.plan("pairs+training", "training", units=1)
    clock.plan("generation", "generation", units=10)
    clock.plan("judging", "judging", units=1)
    with clock.step("broker"):
        now[0] += REFERENCE_S["broker"]  # the reference speed
    clock.begin("pairs+training")
    clock.begin("generation")
    now[0] += 10 * REFERENCE_S["pairs+training"]  # training overran its reference tenfold
    clock.set_progress("pairs+training", 2, 3)  # ... and is two thirds done
    clock.set_progress("generation", 10, 10)
    # training: its pace (15 references in all) weighed 2/3, the reference, at least the 10 taken, 1/3; then
    # judging. Not the sum of the running stages' references
    assert clock.remaining_s() == pytest.approx(
        10 / 3 * REFERENCE_S["pairs+training"] + REFERENCE_S["judging"]
    )


def test_overlapping_stages_are_placed_on_the_demos_schedule_not_added_up(now: list[float]) -> None:
    """The demo's first estimates said 21 minutes left with 11 to go: generation and recovery, which run
    beside training, were added after it."""
    clock = StageClock(lambda _: None)
    clock.plan("broker", "broker")
    clock.plan("profiling", "profiling", units=8)
    clock.plan("pairs+training", "training", units=8)
    clock.plan("generation", "generation", units=72, after=("profiling",), ends_after=("pairs+training",))
    clock.plan("recovery", "recovery", units=2, after=("pairs+training",))
    clock.plan("judging", "judging", units=8, after=("generation",))
    with clock.step("broker"):
        now[0] += REFERENCE_S["broker"]  # the reference speed
    with clock.step("profiling"):
        now[0] += 8 * REFERENCE_S["profiling"]
    training, judging = 8 * REFERENCE_S["pairs+training"], 8 * REFERENCE_S["judging"]
    assert 72 * REFERENCE_S["generation"] < training  # as measured: generation waits for the adapters
    assert clock.remaining_s() == pytest.approx(training + judging)

    clock.begin("pairs+training")
    clock.begin("generation")
    now[0] += 100
    clock.set_progress("generation", 48, 72)  # the prompt-only descriptions are ahead of training...
    # ... and still end with it: the adapters' descriptions need the adapters
    assert clock.remaining_s() == pytest.approx(training - 100 + judging)


def test_between_steps_of_progress_the_estimate_counts_down_instead_of_growing(now: list[float]) -> None:
    """Training reports progress in steps minutes apart (the pairs, then each adapter). Measured at every
    poll, the pace fell while the next adapter trained: the demo said 15 minutes left with 7 to go."""
    clock = StageClock(lambda _: None)
    clock.plan("broker", "broker")
    clock.plan("pairs+training", "training", units=8)
    clock.plan("judging", "judging", units=8)
    with clock.step("broker"):
        now[0] += REFERENCE_S["broker"]  # the reference speed
    judging, reference = 8 * REFERENCE_S["judging"], 8 * REFERENCE_S["pairs+training"]
    clock.begin("pairs+training")
    now[0] += 60
    clock.set_progress("pairs+training", 1, 4)  # a quarter done in 60 s: 240 s in all at that pace
    in_all = 240 / 4 + reference * 3 / 4  # the pace weighs in by the fraction done, the reference by the rest
    assert clock.remaining_s() == pytest.approx(in_all - 60 + judging)
    for _ in range(30):  # the next step runs; polls report the same progress
        now[0] += 4
        clock.set_progress("pairs+training", 1, 4)
    assert clock.remaining_s() == pytest.approx(in_all - 180 + judging)
    clock.set_progress("pairs+training", 3, 4)  # the next step lands: the pace is measured again
    assert clock.remaining_s() == pytest.approx(240 * 3 / 4 + reference / 4 - 180 + judging)


def test_a_young_stage_leans_on_the_reference_and_an_old_one_on_its_pace(now: list[float]) -> None:
    """The first descriptions share the cores with training: 9 of 48 done once made the demo say 21 minutes
    left with 13 to go. Early progress weighs in little; near the end, the pace decides."""
    clock = StageClock(lambda _: None)
    clock.plan("broker", "broker")
    clock.plan("generation", "generation", units=100)
    with clock.step("broker"):
        now[0] += REFERENCE_S["broker"]  # the reference speed
    reference = 100 * REFERENCE_S["generation"]
    clock.begin("generation")
    now[0] += reference / 5
    clock.set_progress("generation", 5, 100)  # a pace four times slower than the reference
    young = clock.remaining_s()
    assert young == pytest.approx(0.05 * 4 * reference + 0.95 * reference - reference / 5)
    assert young < 4 * reference - reference / 5  # what the pace alone would say
    now[0] += 3.6 * reference
    clock.set_progress("generation", 95, 100)  # it kept that pace
    # 4 references in all at its pace, weighed 0.95; the reference, at least the 3.8 taken, 0.05
    assert clock.remaining_s() == pytest.approx(
        0.95 * 4 * reference + 0.05 * 3.8 * reference - 3.8 * reference
    )


def test_co_located_services_share_the_cores_unless_the_user_chose(monkeypatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert thread_env(5, environ={}) == dict.fromkeys(THREAD_VARIABLES, "1")
    assert thread_env(2, environ={}) == dict.fromkeys(THREAD_VARIABLES, "4")
    assert thread_env(5, environ={"OMP_NUM_THREADS": "3"}) == {}
    # a long job beside a part-time one takes every core and sleeps, not spins, at its barriers
    assert thread_env(2, environ={}, yielding=True) == {
        **dict.fromkeys(THREAD_VARIABLES, "8"),
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    assert thread_env(2, environ={"OMP_NUM_THREADS": "3"}, yielding=True) == {}


def test_collecting_finished_descriptions_keeps_the_progress_already_reached() -> None:
    """Most descriptions are done long before the last adapter's: collecting them in order must not restart
    the progress (and the estimate) from zero."""
    from concurrent.futures import Future

    from gravity_stack.demo import collect_descriptions

    clock = StageClock(lambda line: None)
    clock.plan("generation", "generation", units=24)
    clock.begin("generation")
    work: list[Future] = []
    for k in range(24):
        future: Future = Future()
        future.set_result(k)
        work.append(future)
    seen: list[float] = []
    original = clock.set_progress

    def record(name: str, done: float, total: float) -> None:
        seen.append(done / total)
        original(name, done, total)

    clock.set_progress = record  # type: ignore[method-assign]
    assert collect_descriptions(work, clock) == list(range(24))
    assert seen and min(seen) == 1.0


def test_the_printed_estimates_are_checked_against_the_real_end_and_the_inputs_kept(now: list[float]) -> None:
    clock = StageClock(lambda line: None)
    clock.plan("profiling", "profiling", units=1)
    clock.plan("judging", "judging", units=1)
    assert clock.estimate_errors() is None and clock.estimate_summary() == ""
    with clock.step("profiling"):
        now[0] += REFERENCE_S["profiling"]  # the reference's speed: judging is expected to take its reference
    clock.begin("judging")  # prints an estimate: REFERENCE_S["judging"] left
    now[0] += 2 * REFERENCE_S["judging"]  # ... but it takes twice that
    clock.end("judging")
    assert clock.estimates == [
        (pytest.approx(REFERENCE_S["profiling"]), REFERENCE_S["judging"], REFERENCE_S["judging"])
    ]
    assert clock.estimate_errors() == pytest.approx((REFERENCE_S["judging"], REFERENCE_S["judging"]))
    assert "1 time-left estimates printed were off by" in clock.estimate_summary()
    assert [(event, name) for _, event, name, _ in clock.events] == [
        ("begin", "profiling"),
        ("end", "profiling"),
        ("begin", "judging"),
        ("end", "judging"),
    ]


def test_before_the_pace_is_known_the_estimate_is_a_range_and_counts_as_right_when_the_end_falls_in_it(
    now: list[float],
) -> None:
    """The reference is a slow day's run: a fast day's first run was told "about 22 min left" for four minutes
    and took 15. Until a long stage has ended, the estimate reaches down to the fastest pace measured."""
    lines: list[str] = []
    clock = StageClock(lines.append)
    clock.plan("broker", "broker")
    clock.plan("profiling", "profiling", units=8)
    clock.plan("judging", "judging", units=8)
    with clock.step("broker"):
        now[0] += REFERENCE_S["broker"]
    assert not clock.paced()
    clock.begin("profiling")  # prints the range
    most = 8 * (REFERENCE_S["profiling"] + REFERENCE_S["judging"])
    assert clock.estimates[-1][1:] == pytest.approx((FASTEST_PACE * most, most), abs=0.1)
    assert f"to {most / 60:.0f} min left, estimated: narrower once profiling ends)" in lines[-1]
    now[0] += 0.7 * 8 * REFERENCE_S["profiling"]  # a fast day
    clock.end("profiling")
    assert clock.paced()
    clock.begin("judging")  # one number now, at this run's pace
    assert clock.estimates[-1][1] == clock.estimates[-1][2]
    assert clock.estimates[-1][2] == pytest.approx(0.7 * 8 * REFERENCE_S["judging"], rel=0.01)
    assert lines[-1].endswith("left, estimated)")
    now[0] += 0.7 * 8 * REFERENCE_S["judging"]
    clock.end("judging")
    # the end fell in the range, then (within the rounding) on the number
    assert clock.estimate_errors() == pytest.approx((0.0, 0.0), abs=0.5)
    assert "2 time-left estimates" in clock.estimate_summary() and "1 were ranges" in clock.estimate_summary()


def test_a_slot_schedule_shares_the_machine_among_the_parts_running_together() -> None:
    parts = [("x", 10.0), ("y", 5.0), ("z", 5.0)]
    # one slot: the parts add up after the lead-in
    assert slot_schedule(("a", 10.0), parts, 1) == pytest.approx(
        {"a": 1 / 3, "x": 2 / 3, "y": 5 / 6, "z": 1.0}
    )
    # two slots: x and y share the machine, so y ends 10 s in; z then shares it with what is left of x
    assert slot_schedule(("a", 10.0), parts, 2) == pytest.approx({"a": 1 / 3, "y": 2 / 3, "x": 1.0, "z": 1.0})
    # as many slots as parts: all three share it from the start
    assert slot_schedule(("a", 10.0), parts, 3) == pytest.approx(
        {"a": 1 / 3, "y": 5 / 6, "z": 5 / 6, "x": 1.0}
    )


def test_the_models_first_use_conversion_counts_once_and_only_when_it_will_happen(now: list[float]) -> None:
    """The reference's profiling includes converting the bundled model; a run that found it converted was
    scaled by 0.70 instead of ~0.9 and said ~4 minutes too few."""
    readers = 8

    def speed_after_profiling(once_s: float) -> float:
        clock = StageClock(lambda _: None)
        clock.plan("profiling", "profiling", units=readers, once_s=once_s)
        clock.plan("judging", "judging", units=readers)
        assert clock.remaining_s() is None
        with clock.step("profiling"):
            now[0] += readers * REFERENCE_S["profiling"]  # the reference's pace, without a conversion
        left = clock.remaining_s()
        assert left is not None
        return left / (readers * REFERENCE_S["judging"])

    assert speed_after_profiling(0.0) == pytest.approx(1.0)  # converted already: the reference's pace
    # planned with the conversion but done as fast as without it: this machine looks faster than it is
    assert speed_after_profiling(MODEL_CONVERSION_S) == pytest.approx(
        readers * REFERENCE_S["profiling"] / (readers * REFERENCE_S["profiling"] + MODEL_CONVERSION_S)
    )
