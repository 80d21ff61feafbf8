"""Command-line options reach the settings models through one validated path (issue 16 item 4)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from gravity_core.errors import InvalidInput
from gravity_core.options import apply_options, split_list


class _Inner(BaseModel):
    depth: int = Field(default=1, ge=1)


class _Section(BaseModel):
    min_reviews: int = Field(default=20, ge=1)
    name: str = "x"
    inner: _Inner = Field(default_factory=_Inner)


def test_unset_options_keep_the_configured_values_and_dotted_names_reach_nested_tables() -> None:
    configured = _Section(min_reviews=30, name="configured")
    applied = apply_options(configured, min_reviews=None, name="flag", **{"inner.depth": 4})
    assert (applied.min_reviews, applied.name, applied.inner.depth) == (30, "flag", 4)
    assert configured.name == "configured"  # a copy, not a mutation


def test_a_value_the_model_rejects_names_the_flag() -> None:
    with pytest.raises(InvalidInput) as err:
        apply_options(_Section(), min_reviews=0)
    assert err.value.field == "--min-reviews" and "greater than or equal to 1" in err.value.message
    with pytest.raises(InvalidInput) as nested:
        apply_options(_Section(), **{"inner.depth": "deep"})
    assert nested.value.field == "--inner.depth"


def test_lists_split_on_commas_wherever_they_come_from() -> None:
    assert split_list("a, b", ["c", "d,e"], None) == ["a", "b", "c", "d", "e"]
