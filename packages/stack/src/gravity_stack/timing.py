"""Where the demo's time goes: stage intervals, an estimate of the time left, and the table printed at the end.

Stages may overlap (prompt-only methods are generated while the adapters train), so each stage records its own
start and end on the run's clock; the table shows both, and the total is the wall time, not the sum.

The estimate scales a reference run (``REFERENCE_S``: the root README's measured first `gravity demo` on the
bundled sample, 8 readers, quiet 2-core machine, empty response cache, overlapped schedule) by how fast this
run has been so far: after the stages done in ``d`` seconds against ``r`` in the reference (once ``r`` is
long enough to tell), the stages not begun are expected to take ``d / r`` times their reference; running
stages that report progress are extrapolated from their own pace, measured when the progress last moved and
counted down since, and weighed by the fraction done against the scaled reference for the rest (the
trainer's parts report progress as the points where they end on its schedule: ``slot_schedule``). The
estimates printed and their inputs are kept (``estimates``, ``events``), so a run says how far off its
estimates were and another estimator can be replayed on it. Units of work scale it too (more readers, more descriptions). Stages are placed on the
demo's own schedule — each begins once the stages it waits for ended (``after``) and may have to outlast
others (``ends_after``: the adapters' descriptions need the adapters) — so overlapping stages are not added
up. It is an estimate and printed as one; before any long stage has ended, as a range (``FASTEST_PACE``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

# Seconds per stage in the reference run, per unit of that stage's work (see UNITS).
REFERENCE_S: dict[str, float] = {
    # a first run on a fresh clone at 05c52ad (empty response cache and GRAVITY_HOME, README; two adapters
    # trained at a time; a slow evening, speed probe 3.06-3.26 s): 1,381 s in all
    "broker": 0.3,
    "services": 3.0,
    "ingest": 0.3,
    "profiling": 33.5,  # per reader (312 s for 8, less the model's conversion)
    "pairs+training": 94.5,  # per reader (756 s for 8; three adapters trained on the cohort)
    "generation": 8.86,  # per description (638 s for 72, overlapping training)
    "judging": 32.3,  # per (reader, book) (258 s for 8)
    "recovery": 31.5,  # per planted reader (63 s for 2, beside judging)
}


# The bundled model's first-use conversion (GGUF to safetensors), inside that run's profiling (the profiler
# log's converting_gguf to converted_gguf): a run that finds it made has 44 s less to do. Counted as 33.5 s per
# reader instead, it scaled the estimate of a run with the conversion cached by 0.70, not ~0.9.
MODEL_CONVERSION_S = 44.3

# Reference seconds the stages done must add up to before their pace scales the estimate.
MIN_PACE_S = 30.0

# Until then (the first ~4-5 minutes, profiling) the estimate is the reference's, a slow day's, so it is printed
# as a range down to what the fastest first run measured here would take: 0.62 of the reference (834 s with
# the model converted already, against 1,381 - 44 s). A fresh clone on a fast day took 911 s (0.66) and had
# been told "about 22 min left" for its first four minutes.
FASTEST_PACE = 0.6


@dataclass
class Stage:
    name: str
    title: str
    units: float = 1.0
    started: float | None = None
    ended: float | None = None
    # Fraction of this stage's work done, when the stage can tell (descriptions written, adapters trained),
    # and the stage's own seconds when that fraction was reached.
    progress: float | None = None
    progress_s: float = 0.0
    # the stages it begins after (None: every stage planned before it) and those it cannot end before
    after: tuple[str, ...] | None = None
    ends_after: tuple[str, ...] = ()
    # reference seconds it takes once, whatever its units (the model's conversion on a first run)
    once_s: float = 0.0

    @property
    def reference_s(self) -> float:
        return REFERENCE_S[self.name] * self.units + self.once_s

    @property
    def seconds(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else time.monotonic()) - self.started


@dataclass
class StageClock:
    """Stages in the order they start; ``units`` says how much work each holds (readers, descriptions, ...)."""

    echo: Callable[[str], None]
    stages: list[Stage] = field(default_factory=list)
    started: float = field(default_factory=lambda: time.monotonic())
    # What the estimate was fed and what it said, on the run's clock: (seconds, event, stage, value) and
    # (seconds, fewest and most seconds left as printed: the same number once the pace is known). At the end,
    # the printed estimates are checked against the real end, and the events let another estimator be tried
    # on the same run.
    events: list[tuple[float, str, str, float]] = field(default_factory=list)
    estimates: list[tuple[float, float, float]] = field(default_factory=list)
    _last_note: str = ""

    def plan(
        self,
        name: str,
        title: str,
        units: float = 1.0,
        after: tuple[str, ...] | None = None,
        ends_after: tuple[str, ...] = (),
        once_s: float = 0.0,
    ) -> None:
        """A stage of the run, in the order stages begin; ``after`` and ``ends_after`` name earlier ones."""
        self.stages.append(Stage(name, title, units, after=after, ends_after=ends_after, once_s=once_s))

    def set_units(self, name: str, units: float) -> None:
        self._stage(name).units = units
        self._record("units", name, units)

    def units(self, name: str) -> float:
        return self._stage(name).units

    def set_progress(self, name: str, done: float, total: float) -> None:
        """How far a running stage is: its time left is then extrapolated from its own pace."""
        if total <= 0:
            return
        stage = self._stage(name)
        fraction = min(1.0, max(0.0, done / total))
        if fraction != stage.progress:
            stage.progress, stage.progress_s = fraction, stage.seconds
            self._record("progress", name, fraction)

    def finished(self, name: str) -> bool:
        return self._stage(name).ended is not None

    def _stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    @contextmanager
    def step(self, name: str) -> Iterator[Callable[[str], None]]:
        self.begin(name)
        yield self.note
        self.end(name)

    def begin(self, name: str) -> None:
        stage = self._stage(name)
        stage.started = time.monotonic()
        self._record("begin", name)
        number = self.stages.index(stage) + 1
        self.echo(f"[{number}/{len(self.stages)}] {stage.title}{self.eta_text()}")

    def end(self, name: str) -> None:
        stage = self._stage(name)
        stage.ended = time.monotonic()
        self._record("end", name)
        self.echo(f"      done in {stage.seconds:.0f}s (total {self.elapsed:.0f}s)")

    def note(self, message: str) -> None:
        if message != self._last_note:
            self.echo(f"      {message}")
            self._last_note = message

    def _record(self, event: str, name: str, value: float = 0.0) -> None:
        self.events.append((round(self.elapsed, 2), event, name, value))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining_s(self) -> float | None:
        """Expected seconds left, or None before any stage finished (nothing to scale by yet).

        Each stage's end is placed on the schedule: a stage not begun starts when the stages it waits for
        are expected to end and takes its scaled reference time; a running stage that reports its progress
        is extrapolated from its pace when the progress last moved, and counted down since (progress comes
        in steps minutes apart, such as an adapter trained: measured at every poll, the pace fell as the
        next step ran, and the estimate rose to 15 minutes while the first adapter trained, with 7 left);
        one that does not is expected to take its scaled reference time. Either, once past its expected
        end, is expected to end any moment: the estimate then understates. The time left is the latest of
        those ends."""
        done = [s for s in self.stages if s.ended is not None]
        reference_done = sum(s.reference_s for s in done)
        if not done or reference_done <= 0:
            return None
        # Seconds-long stages (the broker, the services) say little about the model's pace: scaled by them,
        # the demo began by saying 9 minutes with 14 to go. Until a longer stage has ended, the reference.
        speed = sum(s.seconds for s in done) / reference_done if self.paced() else 1.0
        ends: dict[str, float] = {}  # seconds from now
        for i, s in enumerate(self.stages):
            if s.ended is not None:
                ends[s.name] = 0.0
                continue
            expected = s.reference_s * speed
            if s.started is None:
                waits = s.after if s.after is not None else [p.name for p in self.stages[:i]]
                end = max((ends[w] for w in waits), default=0.0) + expected
            elif s.progress:
                # The pace says little while a stage is young (its first descriptions share the cores with
                # training: 9 of 48 once put 21 minutes left with 13 to go), so it weighs in by the fraction
                # done, and the scaled reference (at least the time already taken) by the rest.
                by_pace = s.progress_s / s.progress
                by_reference = max(expected, s.seconds)
                end = max(0.0, s.progress * by_pace + (1 - s.progress) * by_reference - s.seconds)
            else:
                end = max(0.0, expected - s.seconds)
            ends[s.name] = max([end, *(ends[o] for o in s.ends_after)])
        return max(ends.values(), default=0.0)

    def paced(self) -> bool:
        """Whether the stages done tell this run's pace (else the estimate is the reference's)."""
        return sum(s.reference_s for s in self.stages if s.ended is not None) >= MIN_PACE_S

    def eta_text(self) -> str:
        left = self.remaining_s()
        if left is None:
            return ""
        fewest = left if self.paced() else left * FASTEST_PACE
        self.estimates.append((round(self.elapsed, 2), round(fewest, 1), round(left, 1)))
        if fewest == left:
            return f"  (about {_minutes(left)} left, estimated)"
        return (
            f"  (about {_minutes(fewest)} to {_minutes(left)} left, estimated: narrower once profiling ends)"
        )

    def table(self) -> str:
        rows = [("stage", "from", "to", "seconds", "share")]
        total = self.elapsed
        for s in self.stages:
            if s.started is None:
                continue
            start = s.started - self.started
            end = (s.ended if s.ended is not None else time.monotonic()) - self.started
            rows.append(
                (
                    s.name,
                    f"{start:.0f}s",
                    f"{end:.0f}s",
                    f"{s.seconds:.0f}",
                    f"{100 * s.seconds / total:.0f}%",
                )
            )
        rows.append(("total (wall)", "", "", f"{total:.0f}", "100%"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        overlap = sum(s.seconds for s in self.stages) - total
        if overlap > 1:
            lines.append(f"(stages overlapped for {overlap:.0f}s: the shares add up to more than 100%)")
        return "\n".join(lines)

    def estimate_errors(self) -> tuple[float, float] | None:
        """Mean and worst error, in seconds, of the time-left estimates printed so far, against the run ending
        now (for a range, how far outside it the end fell); None if none was printed."""
        if not self.estimates:
            return None
        errors = [_outside(self.elapsed - t, fewest, most) for t, fewest, most in self.estimates]
        return sum(errors) / len(errors), max(errors)

    def estimate_summary(self) -> str:
        errors = self.estimate_errors()
        if errors is None:
            return ""
        ranges = sum(1 for _, fewest, most in self.estimates if fewest != most)
        return (
            f"(the {len(self.estimates)} time-left estimates printed were off by {errors[0]:.0f}s on average "
            f"and {errors[1]:.0f}s at worst"
            + (f"; {ranges} were ranges, off only when the end fell outside" if ranges else "")
            + ")"
        )

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {
            s.name: {
                "start_s": round(s.started - self.started, 1),
                "seconds": round(s.seconds, 1),
                "units": s.units,
            }
            for s in self.stages
            if s.started is not None
        }


def _outside(actual: float, fewest: float, most: float) -> float:
    return max(0.0, fewest - actual, actual - most)


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f} min"


def slot_schedule(
    lead_in: tuple[str, float], parts: Sequence[tuple[str, float]], slots: int
) -> dict[str, float]:
    """When each part ends, as a fraction of the whole, if the lead-in comes first, alone, and then
    the parts run in their order, ``slots`` at a time, sharing the machine equally (a part's seconds are its
    share of the machine's time: alone, it ends after that many; beside another, after twice as many). The
    trainer's queue with ``concurrent_runs`` slots: with one slot the parts simply add up."""
    now, ends = lead_in[1], {lead_in[0]: lead_in[1]}
    queued, running = list(parts), dict[str, float]()
    while queued or running:
        while queued and len(running) < slots:
            name, seconds = queued.pop(0)
            running[name] = seconds
        share = len(running)
        ending = min(running, key=running.__getitem__)
        step = running[ending]
        now += step * share
        running = {name: left - step for name, left in running.items()}
        del running[ending]
        ends[ending] = now
    return {name: end / now for name, end in ends.items()} if now > 0 else {}
