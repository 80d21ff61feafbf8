"""Flags generated from a settings model (issue 16 item 4: every CLI builds its options from the settings model)."""

from __future__ import annotations

from typing import Any, Literal

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, Field

from gravity_core.cli.settings_options import settings_options
from gravity_core.errors import InvalidInput
from gravity_core.options import apply_options


class _Section(BaseModel):
    min_reviews: int = Field(default=20, ge=1, description="Reviews a reader needs")
    protocol: Literal["paper", "debiased"] = Field("paper", description="Judge protocol")
    datasets: list[str] = Field(default_factory=lambda: ["a", "b"], description="Datasets to build")
    fast: bool = Field(False, description="Go fast")
    seed: int | None = Field(None, description="Sampling seed")
    undocumented: int = 0


def _command(configured: _Section, seen: list[_Section]) -> click.Command:
    @click.command()
    @click.option("--out", default="x")
    @settings_options(_Section, "section", "min_reviews", "protocol", "datasets", "fast", "seed")
    def run(out: str, overrides: dict[str, Any]) -> None:
        seen.append(apply_options(configured, **overrides))

    return run


def test_flags_take_their_names_types_and_help_from_the_fields() -> None:
    configured = _Section(min_reviews=30, datasets=["c"])
    seen: list[_Section] = []
    runner = CliRunner()
    result = runner.invoke(
        _command(configured, seen),
        ["--min-reviews", "5", "--protocol", "debiased", "--datasets", "x,y", "--datasets", "z", "--fast"],
    )
    assert result.exit_code == 0, result.output
    assert (seen[0].min_reviews, seen[0].protocol, seen[0].datasets, seen[0].fast) == (
        5,
        "debiased",
        ["x", "y", "z"],
        True,
    )

    result = runner.invoke(_command(configured, seen), ["--out", "y"])
    assert result.exit_code == 0, result.output
    assert seen[1] == configured  # flags left out keep the configured values

    result = runner.invoke(_command(configured, seen), ["--protocol", "other"])
    assert result.exit_code == 2 and "'other' is not one of 'paper', 'debiased'" in result.output

    help_text = " ".join(runner.invoke(_command(configured, seen), ["--help"]).output.split())
    assert (
        "--min-reviews INTEGER Reviews a reader needs (default: [section] min_reviews, built in: 20)."
        in help_text
    )
    assert "--datasets TEXT Datasets to build, comma-separated or repeated" in help_text
    assert "--fast / --no-fast Go fast" in help_text
    assert help_text.index("--min-reviews") < help_text.index("--protocol") < help_text.index("--seed")


def test_a_value_the_model_rejects_is_an_error_naming_the_flag() -> None:
    runner = CliRunner()
    result = runner.invoke(_command(_Section(), []), ["--min-reviews", "0"])
    assert isinstance(result.exception, InvalidInput)
    assert result.exception.field == "--min-reviews"


def test_a_field_without_a_description_or_a_missing_field_cannot_become_a_flag() -> None:
    with pytest.raises(TypeError, match="needs a description"):
        settings_options(_Section, "section", "undocumented")
    with pytest.raises(TypeError, match="no field 'typo'"):
        settings_options(_Section, "section", "typo")
