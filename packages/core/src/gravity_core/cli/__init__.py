"""The `gravity` command. Packages contribute subcommands through entry points (see main.py)."""

from gravity_core.cli.common import CliContext, pass_cli, progress, summary_table

__all__ = ["CliContext", "pass_cli", "progress", "summary_table"]
