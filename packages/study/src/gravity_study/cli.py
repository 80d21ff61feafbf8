"""`gravity study`: run the user-study web app (`serve`), try it with simulated participants (`demo`), bring
the database schema up to date (`migrate`)."""

from __future__ import annotations

import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any

import click

from gravity_core.cli.common import CliContext, pass_cli
from gravity_core.cli.settings_options import settings_options
from gravity_core.errors import ConfigError
from gravity_study.settings import StudySettings


@click.group()
def study() -> None:
    """The user study (paper §4.1, D.4, Table 4): participants build and verify their profile and rank
    descriptions; the administrator trains and generates for the cohort and downloads the results."""


def _settings(cli: CliContext, **overrides: object):
    cli.overrides.update({k: v for k, v in overrides.items() if v is not None})
    from gravity_study.settings import study_settings

    settings = cli.settings
    return settings, study_settings(settings)


def _listen(host: str, port: int) -> socket.socket:
    """Listen before printing any URL: a URL on the screen must already accept connections (port 0 = any free).
    The socket is core's ``bind``; listening now (not when uvicorn starts) is what closes the race."""
    from gravity_core.web.server import bind

    sock = bind(host, port)
    sock.listen(128)
    return sock


def _serve(app, sock: socket.socket) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])


@study.command()
@settings_options(StudySettings, "study", "host", "port", "data_dir")
@pass_cli
def serve(cli: CliContext, overrides: dict[str, Any]) -> None:
    """Run the study app until Ctrl-C (administrator password: study.admin_token / GRAVITY_STUDY__ADMIN_TOKEN)."""
    settings, cfg = _settings(cli, **{f"study.{name}": value for name, value in overrides.items()})
    if cfg.admin_token is None or not cfg.admin_token.get_secret_value():
        raise ConfigError(
            "study.admin_token is not set: the administrator pages need a password "
            "(set GRAVITY_STUDY__ADMIN_TOKEN or [study] admin_token)"
        )
    from gravity_study.database import Database
    from gravity_study.jobs import JobRunner
    from gravity_study.web.app import create_app

    db = Database(cfg.resolved_database_url())
    runner = JobRunner(db, settings, cfg)
    sock = _listen(cfg.host, cfg.port)
    cfg = cfg.model_copy(update={"port": sock.getsockname()[1]})
    app = create_app(db, cfg, runner, cfg.admin_token.get_secret_value())
    click.echo(f"study app on {cfg.base_url()} (database at revision {db.revision}; pipeline {cfg.pipeline})")
    click.echo(f"administrator: {cfg.base_url()}/admin")
    _serve(app, sock)


@study.command()
@pass_cli
def migrate(cli: CliContext) -> None:
    """Bring the study database (study.database_url) to the newest schema."""
    _settings(cli)
    from gravity_study.database import Database
    from gravity_study.settings import study_settings

    db = Database(study_settings(cli.settings).resolved_database_url())
    click.echo(f"database at revision {db.revision}")


@study.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default: a new directory under /tmp).",
)
@click.option(
    "--participants", type=click.IntRange(1, 20), default=3, show_default=True, help="Simulated participants."
)
@click.option(
    "--books",
    type=click.IntRange(1, 10),
    default=2,
    show_default=True,
    help="Books (ranking screens) per participant (the paper: 10).",
)
@click.option(
    "--train-steps",
    type=click.IntRange(1),
    default=6,
    show_default=True,
    help="Optimizer steps of the GRAVITY adapter.",
)
@click.option(
    "--max-new-tokens", type=click.IntRange(8), default=64, show_default=True, help="Tokens per description."
)
@click.option("--port", type=click.IntRange(0, 65535), default=8050, show_default=True)
@click.option("--no-serve", is_flag=True, help="Prepare everything, print the results and exit.")
@pass_cli
def demo(
    cli: CliContext,
    out: Path | None,
    participants: int,
    books: int,
    train_steps: int,
    max_new_tokens: int,
    port: int,
    no_serve: bool,
) -> None:
    """Start the study app on the embedded defaults with simulated participants already through the flow."""
    from gravity_study.demo import demo_overrides, run_demo

    data_dir = (out or Path(f"/tmp/gravity-study-demo-{int(time.time())}")).resolve()
    settings, cfg = _settings(
        cli, **demo_overrides(data_dir, books, train_steps, max_new_tokens), **{"study.port": port}
    )
    from gravity_study.database import Database
    from gravity_study.jobs import JobRunner
    from gravity_study.web.app import create_app

    db = Database(cfg.resolved_database_url())
    runner = JobRunner(db, settings, cfg)
    click.echo(f"data directory: {data_dir} (database {cfg.resolved_database_url()})")
    report = run_demo(settings, cfg, db, runner, participants, click.echo)
    _print_results(report.results)
    timings = ", ".join(f"{k} {v:.0f}s" for k, v in report.timings.items())
    click.echo(f"timings: {timings}")
    if no_serve:
        runner.stop()
        return
    token = cfg.admin_token.get_secret_value() if cfg.admin_token else secrets.token_urlsafe(16)
    sock = _listen(cfg.host, cfg.port)
    cfg = cfg.model_copy(update={"port": sock.getsockname()[1]})
    app = create_app(db, cfg, runner, token)
    base = cfg.base_url()
    click.echo("")
    click.echo(f"results:        {base}/admin/studies/{report.slug}/results")
    click.echo(f"administrator:  {base}/admin   (password: {token})")
    click.echo(f"try the flow:   {base}/p/{report.open_link}")
    click.echo("Ctrl-C stops the app; the data directory stays.")
    sys.stdout.flush()
    _serve(app, sock)


def _print_results(results: dict) -> None:
    from gravity_core.cli.common import summary_table

    overall = results["overall"]
    rows = []
    for method in results["methods"]:
        e = overall["table4"][method]
        gain = e["preference_gain"]["value"] if e["preference_gain"] else None
        rows.append(
            (
                e["display"],
                e["top1_win_rate"]["value"],
                "–" if gain is None else gain,
                e["interestingness"]["value"],
            )
        )
    click.echo(
        summary_table(
            f"Table 4 (simulated participants, {overall['screens']} screens)",
            rows,
            headers=("method", "top-1 win %", "pref. gain %", "int. score"),
        )
    )
    a, inf = overall["agreement"], overall["inference"]["accuracy"]
    click.echo(f"inference accuracy (verified): {inf['value']}% of {inf['n']} participant(s)")
    click.echo(
        f"judge vs participants: identical top-1 {a['identical_top1']['value']}% "
        f"(chance {a['chance_identical_top1']}%), Kendall tau {a['kendall_tau']['value']} on {a['screens']} screens"
    )
