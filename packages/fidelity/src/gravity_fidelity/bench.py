"""`gravity bench fidelity`: plant, profile, train and judge on a small default, in one run.

Writes fidelity.json and fidelity.md and prints one table: stance macro-F1 against both baselines, trait
accuracy, genre recall, held-out preference accuracy (base / GRAVITY / control) per facet and the
persona-swap rate. The defaults (8 readers, 40 training steps per adapter, 48 scored pairs per facet) keep
it to a few tens of minutes on 2 CPU cores; the flags scale it up.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from gravity_core.cli.common import CliContext, pass_cli
from gravity_core.files import write_json
from gravity_fidelity.cli import learning_options, swap_options
from gravity_fidelity.methods import DEFAULT_SWAP_METHOD, SWAP_METHODS


@click.command()
@click.option("--readers", type=int, default=8, show_default=True, help="Planted readers.")
@click.option("--seed", type=int, default=13, show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("gravity-fidelity"),
    show_default=True,
    help="Planted readers, profiles, adapters and fidelity.json/.md.",
)
@learning_options
@click.option(
    "--judge-method",
    type=click.Choice(SWAP_METHODS),
    default=DEFAULT_SWAP_METHOD,
    show_default=True,
    help="How the persona-swap descriptions are written.",
)
@swap_options
@click.option("--author-llm", is_flag=True, help="Let the author LLM write the planted reviews' book talk.")
@pass_cli
def run(
    cli: CliContext,
    readers: int,
    seed: int,
    out_dir: Path,
    steps: int,
    batch_size: int,
    learning_rate: float,
    eval_pairs: int,
    judge_method: str,
    max_new_tokens: int,
    books_per_reader: int,
    author_llm: bool,
) -> None:
    """Fidelity on planted readers: recovery, learning and judge validity against baselines from the same run."""
    from gravity_fidelity.cli import _bar, print_table
    from gravity_fidelity.learning import LearningOptions
    from gravity_fidelity.plant import PlantOptions
    from gravity_fidelity.report import write_report
    from gravity_fidelity.steps import (
        gravity_adapter_dir,
        learning_step,
        plant_step,
        recovery_step,
        swap_step,
    )

    settings = cli.settings
    out = out_dir.expanduser().resolve()
    truth = out / "planted"
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def stage(name: str) -> None:
        click.echo(f"== {name} ({time.perf_counter() - started:.0f}s elapsed)")

    stage(f"planting {readers} readers")
    t0 = time.perf_counter()
    plant_step(settings, PlantOptions(readers=readers, seed=seed), truth, None, author_llm, click.echo)
    timings["plant"] = round(time.perf_counter() - t0, 1)
    # A rerun replaces the planted readers, so sections from an earlier run must not survive into this report.
    for name in ("recovery.json", "learning.json", "swap.json", "timings.json"):
        (out / name).unlink(missing_ok=True)

    stage("recovery: the profiler on the planted reviews")
    t0 = time.perf_counter()
    recovery_step(settings, truth, out, click.echo, _bar)
    timings["profile"] = round(time.perf_counter() - t0, 1)

    stage("learning: GRAVITY and a profile-blind control adapter")
    t0 = time.perf_counter()
    learning_step(
        settings,
        truth,
        out,
        LearningOptions(
            steps=steps, batch_size=batch_size, learning_rate=learning_rate, eval_pairs=eval_pairs, seed=seed
        ),
        click.echo,
        _bar,
    )
    timings["train"] = round(time.perf_counter() - t0, 1)

    stage("judge validity: persona swaps")
    t0 = time.perf_counter()
    swap_step(
        settings,
        truth,
        out,
        judge_method,
        max_new_tokens,
        gravity_adapter_dir(out),
        click.echo,
        _bar,
        books_per_reader,
    )
    timings["judge"] = round(time.perf_counter() - t0, 1)
    timings["total"] = round(time.perf_counter() - started, 1)
    write_json(out / "timings.json", timings, durable=False)
    report = write_report(out, truth)
    click.echo("")
    print_table(report, "gravity bench fidelity")
    click.echo(
        f"\n{readers} planted readers in {timings['total']:.0f}s "
        f"(plant {timings['plant']:.0f}, profile {timings['profile']:.0f}, train {timings['train']:.0f}, "
        f"judge {timings['judge']:.0f}); report: {out / 'fidelity.md'} and {out / 'fidelity.json'}"
    )
