"""`gravity`: one CLI; each package adds subcommands through entry points.

Entry-point groups:
  gravity.commands  name -> click command or group (``gravity profile``, ``gravity pairs``, ...)
  gravity.services  name -> ``run_service(settings, port)`` hosting it until SIGTERM (``gravity serve NAME``);
                    ``gravity.dev_services`` the same for development tools (see gravity_core.registry)
  gravity.benches   name -> click command (``gravity bench NAME``)

Subcommand modules import heavy libraries (torch, transformers) lazily so ``gravity --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

from gravity_core.cli.common import CliContext, pass_cli
from gravity_core.errors import GravityError
from gravity_core.registry import runners


def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def _broken(name: str, exc: BaseException) -> click.Command:
    @click.command(
        name=name,
        help=f"(unavailable: {type(exc).__name__}: {exc})",
        context_settings={"ignore_unknown_options": True},
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def cmd(args: Any) -> None:
        raise click.ClickException(f"the '{name}' subcommand failed to load: {type(exc).__name__}: {exc}")

    return cmd


class PluginGroup(click.Group):
    """A group whose extra subcommands come from an entry-point group, loaded on demand."""

    def __init__(self, *args: Any, plugin_group: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plugin_group = plugin_group

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_entry_points(self.plugin_group)))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        builtin = super().get_command(ctx, name)
        if builtin is not None:
            return builtin
        ep = _entry_points(self.plugin_group).get(name)
        if ep is None:
            return None
        try:
            obj = ep.load()
        except Exception as exc:
            return _broken(name, exc)
        if not isinstance(obj, click.Command):
            return _broken(name, TypeError(f"{ep.value} is not a click command"))
        return obj


class ServeGroup(click.Group):
    """`gravity serve NAME`: every registered service and development tool becomes a subcommand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(runners())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        ep = runners().get(name)
        if ep is None:
            return None

        @click.command(name=name, help=f"Run the {name} service until SIGTERM.")
        @click.option(
            "--port", type=int, default=None, help="Listen port (default: grpc.ports.<name> in the config)."
        )
        @pass_cli
        def serve_one(cli: CliContext, port: int | None) -> None:
            try:
                run_service = ep.load()
            except Exception as exc:
                raise click.ClickException(
                    f"service {name!r} failed to load: {type(exc).__name__}: {exc}"
                ) from exc
            run_service(cli.settings, port)
            exit_now()

        return serve_one


def exit_now(code: int = 0) -> None:
    """End a service process once it has shut down gracefully, skipping the interpreter's teardown.

    By then the service has stopped serving, closed its Kafka clients and written its files; what is left is
    freeing the model stack's objects one by one, which took a stopped service 4 s (2 s of CPU) on 2 cores —
    five at once at the end of every demo."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


@click.group(
    cls=PluginGroup,
    plugin_group="gravity.commands",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="GRAVITY_CONFIG",
    help="TOML configuration file (or GRAVITY_CONFIG). Environment variables GRAVITY_SECTION__KEY override it.",
)
@click.option("--log-level", default=None, help="Log level (DEBUG, INFO, WARNING, ...).")
@click.version_option(package_name="gravity-core", prog_name="gravity")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str | None) -> None:
    """GRAVITY: personalized text generation from profile-grounded synthetic preferences.

    Profile readers from their reviews, generate preference pairs, DPO-tune one model with LoRA, serve
    personalized book descriptions over gRPC, and evaluate them against the paper's baselines.
    """
    ctx.obj = CliContext(config_path=config_path, log_level=log_level)


@cli.group(cls=ServeGroup)
def serve() -> None:
    """Run a service (gRPC + Kafka) until SIGTERM."""


@cli.group(cls=PluginGroup, plugin_group="gravity.benches")
def bench() -> None:
    """Benchmarks: print figures against a naive baseline measured in the same run."""


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="gravity", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except GravityError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        if os.environ.get("GRAVITY_DEBUG"):
            traceback.print_exc()
        else:
            click.echo(
                f"internal error: {type(exc).__name__}: {exc} (set GRAVITY_DEBUG=1 for the traceback)",
                err=True,
            )
        sys.exit(1)
    # standalone_mode=False returns exit codes from ctx.exit() instead of exiting
    sys.exit(0)


if __name__ == "__main__":
    main()
