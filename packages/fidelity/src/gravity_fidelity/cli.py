"""`gravity fidelity plant|profile|train|judge`: planted readers with a known truth, and the three checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gravity_core.cli.common import CliContext, pass_cli, progress, summary_table
from gravity_fidelity.methods import DEFAULT_SWAP_METHOD, SWAP_METHODS


def _bar(items: Any, total: int | None, desc: str) -> Any:
    return progress(items, total=total, desc=desc, unit="user" if desc == "profiling" else "it")


def _truth_option(f: Any) -> Any:
    return click.option(
        "--truth",
        "truth_dir",
        required=True,
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        help="A planted directory (gravity fidelity plant --out DIR).",
    )(f)


def _out_option(f: Any) -> Any:
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where results and fidelity.json/.md go (default: the planted directory).",
    )(f)


def learning_options(f: Any) -> Any:
    """The training and scoring sizes ``gravity fidelity train`` and ``gravity bench fidelity`` share
    (defaults: :class:`gravity_fidelity.learning.LearningOptions`)."""
    for option in reversed(
        (
            click.option(
                "--steps", type=int, default=40, show_default=True, help="Optimizer steps per adapter."
            ),
            click.option("--batch-size", type=int, default=4, show_default=True, help="Pairs per step."),
            click.option(
                "--learning-rate", type=float, default=2e-4, show_default=True, help="LoRA learning rate."
            ),
            click.option(
                "--eval-pairs",
                type=int,
                default=48,
                show_default=True,
                help="Held-out pairs scored per group (interests, values, values the profile names, personality).",
            ),
        )
    ):
        f = option(f)
    return f


def swap_options(f: Any) -> Any:
    """The persona-swap sizes ``gravity fidelity judge`` and ``gravity bench fidelity`` share."""
    f = click.option(
        "--books-per-reader",
        type=int,
        default=2,
        show_default=True,
        help="Evaluation books per reader described for the reader and for another reader.",
    )(f)
    return click.option(
        "--max-new-tokens", type=int, default=128, show_default=True, help="Tokens per description."
    )(f)


def print_table(report: dict[str, Any], title: str = "fidelity") -> None:
    from gravity_fidelity.report import table_rows

    click.echo(summary_table(title, table_rows(report), headers=("measure", "result", "compared with")))


@click.group()
def fidelity() -> None:
    """Planted readers with a known truth: does the profiler recover them (profile), does training make the
    model follow them (train), does the judge see them (judge)?"""


@fidelity.command("plant")
@click.option("--readers", type=int, default=8, show_default=True, help="Readers to plant.")
@click.option("--seed", type=int, default=13, show_default=True, help="Everything planted follows from it.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write (replaced).",
)
@click.option(
    "--meta",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Catalog (default: the bundled sample).",
)
@click.option(
    "--statements-per-reader",
    type=int,
    default=12,
    show_default=True,
    help="Statements each reader's reviews express.",
)
@click.option(
    "--neutral-share",
    type=float,
    default=0.2,
    show_default=True,
    help="Share of expressed statements that are neutral.",
)
@click.option(
    "--items-per-trait",
    type=int,
    default=2,
    show_default=True,
    help="Mini-IPIP items per trait with marker sentences (1-4).",
)
@click.option(
    "--summary-statements",
    type=int,
    default=6,
    show_default=True,
    help="Statements the value summary names (0-6).",
)
@click.option(
    "--books-per-genre", type=int, default=5, show_default=True, help="Reviews in each favourite genre."
)
@click.option(
    "--other-reviews",
    type=int,
    default=2,
    show_default=True,
    help="Reviews outside the favourite genres (one per genre).",
)
@click.option(
    "--withhold",
    type=int,
    default=1,
    show_default=True,
    help="Demographic fields per reader left out of demographics.csv (0-3).",
)
@click.option(
    "--author-llm",
    is_flag=True,
    help="Let the author LLM write each review's book talk (the carried sentences stay verbatim).",
)
@pass_cli
def plant_cmd(
    cli: CliContext,
    readers: int,
    seed: int,
    out_dir: Path,
    meta: Path | None,
    statements_per_reader: int,
    neutral_share: float,
    items_per_trait: int,
    summary_statements: int,
    books_per_genre: int,
    other_reviews: int,
    withhold: int,
    author_llm: bool,
) -> None:
    """Write N planted readers (Books.jsonl, meta_Books.jsonl, demographics.csv) and truth.jsonl."""
    from gravity_fidelity.plant import PlantOptions
    from gravity_fidelity.steps import plant_step

    options = PlantOptions(
        readers=readers,
        seed=seed,
        statements_per_reader=statements_per_reader,
        neutral_share=neutral_share,
        items_per_trait=items_per_trait,
        summary_statements=summary_statements,
        books_per_genre=books_per_genre,
        other_reviews=other_reviews,
        withhold=withhold,
    )
    result = plant_step(cli.settings, options, out_dir, meta, author_llm, click.echo)
    expressed = sum(len(t.expressed.statements) for t in result.truths)
    rows = [
        ("readers", len(result.truths)),
        ("reviews", result.reviews),
        ("statements expressed", f"{expressed} (of {150 * len(result.truths)} stances)"),
        ("trait items expressed", sum(len(v) for t in result.truths for v in t.expressed.traits.values())),
        ("demographic fields withheld", sum(len(t.withheld) for t in result.truths)),
        (
            "book talk rewritten / refused",
            f"{result.manifest.rewritten} / {result.manifest.rewrites_refused}",
        ),
        ("directory", result.out),
    ]
    click.echo(summary_table("gravity fidelity plant", rows))


@fidelity.command("profile")
@_truth_option
@_out_option
@click.option(
    "--summary-tokens",
    type=int,
    default=32,
    show_default=True,
    help="Generation budget of the profile's summaries, which recovery does not score (0 = the configured profiler.summary_max_tokens).",
)
@pass_cli
def profile_cmd(cli: CliContext, truth_dir: Path, out_dir: Path | None, summary_tokens: int) -> None:
    """Profile the planted readers with the real profiler and score the profiles against the truth."""
    from gravity_fidelity.report import collect
    from gravity_fidelity.steps import recovery_step

    out = out_dir or truth_dir
    recovery_step(cli.settings, truth_dir, out, click.echo, _bar, summary_tokens or None)
    print_table({"recovery": collect(out, truth_dir).get("recovery", [])}, "recovery")


@fidelity.command("train")
@_truth_option
@_out_option
@learning_options
@click.option("--max-length", type=int, default=384, show_default=True, help="Tokens of prompt + answer.")
@click.option("--lora-r", type=int, default=8, show_default=True)
@click.option(
    "--hold-out",
    type=float,
    default=0.25,
    show_default=True,
    help="Share of statements, books, genres and items held out.",
)
@click.option(
    "--items-per-trait",
    type=int,
    default=60,
    show_default=True,
    help="Personality pairs per trait and reader.",
)
@click.option("--seed", type=int, default=13, show_default=True)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any gravity-dpo recipe key, e.g. --set lora.alpha=32.",
)
@pass_cli
def train_cmd(
    cli: CliContext,
    truth_dir: Path,
    out_dir: Path | None,
    steps: int,
    batch_size: int,
    learning_rate: float,
    max_length: int,
    lora_r: int,
    hold_out: float,
    eval_pairs: int,
    items_per_trait: int,
    seed: int,
    sets: tuple[str, ...],
) -> None:
    """Train GRAVITY and a profile-blind control on pairs from the true profiles; score held-out pairs."""
    from gravity_fidelity.learning import LearningOptions
    from gravity_fidelity.steps import learning_step
    from gravity_trainer.recipes import parse_overrides

    options = LearningOptions(
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_length=max_length,
        lora_r=lora_r,
        hold_out=hold_out,
        eval_pairs=eval_pairs,
        items_per_trait=items_per_trait,
        seed=seed,
        overrides=parse_overrides(sets),
    )
    data = learning_step(cli.settings, truth_dir, out_dir or truth_dir, options, click.echo, _bar)
    print_table({"learning": data}, "learning")


@fidelity.command("judge")
@_truth_option
@_out_option
@click.option(
    "--method",
    type=click.Choice(SWAP_METHODS),
    default=DEFAULT_SWAP_METHOD,
    show_default=True,
    help="How both descriptions are written (gravity: the adapter from gravity fidelity train).",
)
@click.option(
    "--adapter",
    "adapter_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="GRAVITY adapter directory for --method gravity (default: <out>/learning/adapters/gravity).",
)
@swap_options
@pass_cli
def judge_cmd(
    cli: CliContext,
    truth_dir: Path,
    out_dir: Path | None,
    method: str,
    adapter_dir: Path | None,
    max_new_tokens: int,
    books_per_reader: int,
) -> None:
    """Persona swaps: the judge, playing the reader, compares their description with another reader's."""
    from gravity_fidelity.steps import gravity_adapter_dir, swap_step

    out = out_dir or truth_dir
    adapter = adapter_dir or gravity_adapter_dir(out)
    sections = swap_step(
        cli.settings, truth_dir, out, method, max_new_tokens, adapter, click.echo, _bar, books_per_reader
    )
    print_table({"swap": sections}, "persona swaps")
