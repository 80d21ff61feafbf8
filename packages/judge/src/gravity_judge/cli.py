"""`gravity judge`: evaluate generations.jsonl against profiles.jsonl and write the report."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gravity_core.cli.common import CliContext, pass_cli, progress
from gravity_core.cli.settings_options import settings_options
from gravity_core.errors import GravityError, InvalidInput
from gravity_core.options import split_list
from gravity_judge.settings import JudgeSettings

if TYPE_CHECKING:
    from gravity_core.config import Settings
    from gravity_core.tracking import Trackers


class NoUnits(GravityError):
    """Nothing in the input could be judged (the report still says why)."""


@click.command()
@click.option(
    "--generations",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="generations.jsonl: one gravity.v1.Generation per (user, book, method), including 'original'.",
)
@click.option(
    "--profiles",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="profiles.jsonl: gravity.v1.UserProfile per user (personas, country).",
)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Report directory."
)
@click.option(
    "--methods",
    multiple=True,
    help="Judge only these methods (comma-separated or repeated); the original is always included.",
)
@click.option(
    "--report-to",
    "report_to",
    default=None,
    metavar="TRACKERS",
    help="Log the metrics and report files to tensorboard, mlflow, wandb (comma-separated) or none "
    "(default: [tracking] report_to).",
)
@click.option(
    "--run-name",
    default=None,
    help="The run's name in the tracker (default: [tracking] run_name, else judge-<--out directory name>).",
)
@settings_options(JudgeSettings, "judge", "protocol", "orders", "bootstrap_samples", "seed", "answer_mode")
@pass_cli
def judge(
    cli: CliContext,
    generations: Path,
    profiles: Path,
    out: Path,
    methods: tuple[str, ...],
    report_to: str | None,
    run_name: str | None,
    overrides: dict[str, Any],
) -> None:
    """Judge personalized descriptions (paper §4.1, D.3) under the paper's protocol and a debiased one: top-1
    win rate, preference gain, interestingness and similarity per method, country and genre, ablations,
    position bias; writes report.json, report.md, report.html and judgments.jsonl."""
    from gravity_core.config import parse_report_to
    from gravity_core.tracking import open_tracker
    from gravity_judge import methods as known
    from gravity_judge.pipeline import judge_settings
    from gravity_judge.tracked import run_name_for

    started = time.perf_counter()
    settings = cli.settings
    cfg = judge_settings(settings, **overrides)
    only = split_list(*methods)
    unknown = [m for m in only if known.kind_of(m, cfg.extra_methods) is None]
    if unknown:
        raise InvalidInput("--methods", f"unknown method(s): {', '.join(unknown)}")
    try:
        trackers = None if report_to is None else parse_report_to(report_to)
    except ValueError as exc:
        raise InvalidInput("--report-to", str(exc)) from None
    # opened before judging: a tracker that cannot be used fails before any model loads
    tracker = open_tracker(settings, run_name_for(settings, run_name, out.name), trackers)
    try:
        _judge(settings, cfg, generations, profiles, out, only, tracker, started)
    finally:
        if tracker is not None:
            tracker.close()


def _judge(
    settings: Settings,
    cfg: JudgeSettings,
    generations: Path,
    profiles: Path,
    out: Path,
    only: list[str],
    tracker: Trackers | None,
    started: float,
) -> None:
    from gravity_core.profiles import ProfileStore
    from gravity_core.skips import SkipLog
    from gravity_judge.inputs import assemble, rows_from_file
    from gravity_judge.persona import Persona
    from gravity_judge.pipeline import evaluate, judge_llm
    from gravity_judge.report import write_report

    skips = SkipLog()
    store = ProfileStore.from_jsonl(profiles, skips)

    def persona_for(user_id: str) -> Persona | None:
        return Persona.from_profile(store.get(user_id)) if user_id in store else None

    evalset = assemble(rows_from_file(generations, skips), persona_for, skips, only, cfg.extra_methods)
    click.echo(
        f"{len(evalset.units)} (user, book) units, {len(evalset.methods)} methods + original, "
        f"{evalset.users} users; {skips.total} record(s) skipped",
        err=True,
    )

    def track(items: Iterable[Any], stage: str, total: int) -> Iterable[Any]:
        return progress(items, total=total, desc=stage, unit="unit" if stage != "similarity" else "batch")

    run, report = evaluate(
        evalset,
        lambda: judge_llm(settings),
        settings,
        cfg,
        track,
        sources={"generations": str(generations), "profiles": str(profiles)},
    )
    files = write_report(report, out, cfg.focus_method, run)
    if tracker is not None:
        from gravity_judge.tracked import log_report

        log_report(tracker, report, files)
    _print_summary(report, files, time.perf_counter() - started)
    if tracker is not None:
        click.echo(f"tracked: {tracker.describe()}")
    if not evalset.units:
        raise NoUnits(
            f"no (user, book) unit could be judged ({skips.total} record(s) skipped); see {files['report.md']}"
        )


def _print_summary(report: dict[str, Any], files: dict[str, Path], elapsed: float) -> None:
    from gravity_judge.report.summary import summary_text

    click.echo(summary_text(report))
    unusable = report["unusable"]
    click.echo(
        f"unusable judgments: {unusable['total']}"
        + (
            " (" + ", ".join(f"{k}={v}" for k, v in sorted(unusable["by_reason"].items())) + ")"
            if unusable["total"]
            else ""
        )
    )
    from gravity_core.skips import Skip, SkipLog

    skips = SkipLog()
    skips.counts.update(report["skipped"]["by_reason"])
    skips.examples = [Skip(**e) for e in report["skipped"]["examples"]]
    for line in skips.summary_lines():
        click.echo(line)
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in report["timings_s"].items())
    click.echo(f"timings: {timings}; wall {elapsed:.1f}s")
    click.echo("report: " + ", ".join(str(p) for p in files.values()))
