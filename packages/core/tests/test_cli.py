import subprocess
import sys

from click.testing import CliRunner

from gravity_core.cli.main import cli


def test_help_lists_every_subcommand() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gravity_core.cli.main", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in (
        "profile",
        "pairs",
        "train",
        "generate",
        "judge",
        "serve",
        "bench",
        "demo",
        "sample",
        "personalize",
    ):
        assert f"  {name} " in out, name
    serve = subprocess.run(
        [sys.executable, "-m", "gravity_core.cli.main", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in ("profiler", "pairgen", "trainer", "generator", "judge"):
        assert f"  {name} " in serve


def test_config_errors_are_one_line_not_a_traceback(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[kafka\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gravity_core.cli.main",
            "--config",
            str(bad),
            "sample",
            "export",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
    )
    # sample export does not need settings, so it still works; a command that needs them fails cleanly
    assert proc.returncode == 0
    proc = subprocess.run(
        [sys.executable, "-m", "gravity_core.cli.main", "--config", str(bad), "bench", "llm"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_subcommand() -> None:
    result = CliRunner().invoke(cli, ["nope"])
    assert result.exit_code != 0 and "No such command" in result.output
