"""One process trains into an output directory at a time (a second `gravity train`, an orphaned child)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from gravity_core.errors import InvalidInput


@contextlib.contextmanager
def exclusive(work: Path, out: Path, main_process: bool = True) -> Iterator[None]:
    """Hold the work directory's lock for the block; INVALID_ARGUMENT when another process holds it.

    Only the main process of a distributed run locks: the other ranks train into the same directory with it.
    """
    if not main_process:
        yield
        return
    from filelock import FileLock, Timeout

    work.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(work / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise InvalidInput("out", f"another process is training into {out}") from None
    try:
        yield
    finally:
        lock.release()
