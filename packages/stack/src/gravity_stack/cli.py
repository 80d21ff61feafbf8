"""`gravity demo` and `gravity up`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gravity_core.cli.common import CliContext, pass_cli
from gravity_core.cli.settings_options import settings_options
from gravity_core.options import apply_options, split_list
from gravity_stack.demo_options import DemoOptions


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
@settings_options(
    DemoOptions,
    None,
    "users",
    "books_per_user",
    "train_steps",
    "max_new_tokens",
    "judge_orders",
    "pref_align_books",
    "items_per_trait",
    "min_reviews",
    "recovery_readers",
    "profiler_replicas",
    "judge_processes",
    "train_concurrency",
    "timeout_s",
)
def demo(
    out_dir: Path,
    reviews: Path | None,
    meta: Path | None,
    demographics: Path | None,
    overrides: dict[str, Any],
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
    from gravity_stack.demo import run_demo

    configure_logging("WARNING", "json")
    opts = apply_options(
        DemoOptions(out=out_dir, reviews=reviews, meta=meta, demographics=demographics), **overrides
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
