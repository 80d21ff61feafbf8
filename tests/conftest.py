"""Fixtures for the cross-package tests (the harness itself is in harness.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib leaves the test dir off sys.path

from harness import Stack


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """``make_stack(bootstrap, **{"pairgen.datasets": [...]})`` -> a Stack under tmp_path, stopped at teardown."""
    stacks: list[Stack] = []

    def make(bootstrap: str, **overrides: Any) -> Stack:
        stack = Stack(tmp_path / f"stack{len(stacks)}", bootstrap, overrides)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()
