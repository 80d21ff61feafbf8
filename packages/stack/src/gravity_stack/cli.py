"""`gravity demo` and `gravity up`."""

from __future__ import annotations

from pathlib import Path

import click

from gravity_core.cli.common import CliContext, pass_cli
from gravity_core.options import split_list


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("gravity-demo"),
    show_default=True,
    help="Where the config, logs, generations and report go.",
)
@click.option(
    "--users",
    type=int,
    default=8,
    show_default=True,
    help="Readers to personalize for, balanced across countries (0 = every qualifying reader).",
)
@click.option(
    "--books-per-user", type=int, default=1, show_default=True, help="Evaluation books per reader (paper: 5)."
)
@click.option(
    "--train-steps",
    type=int,
    default=8,
    show_default=True,
    help="Optimizer steps per adapter (paper: 3 epochs).",
)
@click.option(
    "--max-new-tokens", type=int, default=160, show_default=True, help="Generation length per description."
)
@click.option(
    "--judge-orders",
    type=int,
    default=2,
    show_default=True,
    help="Judge: balanced orders per debiased top-pick ranking (0 = one per description, fully balanced).",
)
@click.option(
    "--pref-align-books",
    type=int,
    default=2,
    show_default=True,
    help="PrefAlign description pairs per reader (paper: >= 100).",
)
@click.option(
    "--items-per-trait",
    type=int,
    default=12,
    show_default=True,
    help="Personality pairs per trait per reader (paper: 60).",
)
@click.option(
    "--reviews",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Amazon-format reviews (default: the bundled sample).",
)
@click.option(
    "--meta",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Item metadata.",
)
@click.option(
    "--demographics",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Demographics CSV.",
)
@click.option(
    "--min-reviews", type=int, default=20, show_default=True, help="Reviews a reader needs (paper: 50)."
)
@click.option(
    "--recovery-readers",
    type=click.IntRange(0, 64),
    default=2,
    show_default=True,
    help="Planted readers for the closing profiler-recovery line (gravity fidelity); 0 skips it.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=3600,
    show_default=True,
    help="Give up on a stage after this long.",
)
def demo(
    out_dir: Path,
    users: int,
    books_per_user: int,
    train_steps: int,
    max_new_tokens: int,
    judge_orders: int,
    pref_align_books: int,
    items_per_trait: int,
    reviews: Path | None,
    meta: Path | None,
    demographics: Path | None,
    min_reviews: int,
    recovery_readers: int,
    timeout_s: float,
) -> None:
    """Run the whole system end to end on the embedded defaults and write the evaluation report.

    Starts an embedded broker and the five services as processes, streams the reviews into the profiler,
    lets profiles, pairs and adapters flow over Kafka, generates descriptions for every method over gRPC,
    judges them, and stops everything it started, printing an estimate of the time left as it goes and a
    per-stage time table at the end. See the root README for the measured time on 2 CPU cores;
    raise --users, --books-per-user, --train-steps, --pref-align-books and --items-per-trait to scale up.
    """
    from gravity_core.logging import configure_logging
    from gravity_judge.report.summary import summary_text
    from gravity_stack.demo import DemoOptions, run_demo

    configure_logging("WARNING", "json")
    opts = DemoOptions(
        out=out_dir,
        reviews=reviews,
        meta=meta,
        demographics=demographics,
        users=users or None,
        min_reviews=min_reviews,
        books_per_user=books_per_user,
        train_steps=train_steps,
        max_new_tokens=max_new_tokens,
        judge_orders=judge_orders,
        pref_align_books=pref_align_books,
        items_per_trait=items_per_trait,
        recovery_readers=recovery_readers,
        timeout_s=timeout_s,
    )
    report = run_demo(opts, click.echo)
    click.echo("")
    click.echo(summary_text(report))
    meta_info = report.get("_demo", {})
    if report.get("_recovery"):
        click.echo(f"\n{report['_recovery']}")
    click.echo(f"\nwhere the time went:\n{meta_info.get('time_table', '')}")
    click.echo(
        f"\n{meta_info.get('readers', '?')} readers in {meta_info.get('seconds', '?')}s; "
        f"report: {out_dir.resolve() / 'report.html'} (also report.md, report.json, judgments.jsonl)"
    )


@click.command()
@click.option(
    "--services",
    default=None,
    help="Comma-separated services to run (default: every installed service).",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("gravity-logs"),
    show_default=True,
)
@pass_cli
def up(cli: CliContext, services: str | None, log_dir: Path) -> None:
    """Run the services against the Kafka, vLLM and OpenAI endpoints of --config until Ctrl-C.

    The local shape of the Kubernetes deployment: each service is its own process with the same config;
    crashed services are restarted with backoff; health changes are printed.
    """
    from gravity_core.errors import ConfigError
    from gravity_core.registry import service_names
    from gravity_stack.up import run_up

    if cli.config_path is None:
        raise ConfigError(
            "gravity up needs --config FILE (or GRAVITY_CONFIG) naming your Kafka, vLLM and OpenAI endpoints"
        )
    names = split_list(services) if services else list(service_names())
    run_up(cli.settings, cli.config_path, names, log_dir, click.echo)
