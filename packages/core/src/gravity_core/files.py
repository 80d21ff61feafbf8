"""Atomic, durable file and directory writes: the one way every GRAVITY writer puts bytes on disk.

A file is written to a temporary sibling (same directory, so the rename cannot cross filesystems), flushed
and fsynced, renamed over the target, and the directory is fsynced so the rename itself survives a power
loss. Readers therefore see the old file or the new one, never half of either. ``durable=False`` skips
the fsyncs for bulk output whose directory only appears once complete (a batch build staged as a whole).

Directories are staged next to their target and swapped in with two renames (target -> ``.old``, stage ->
target). A crash between them leaves the target missing; :func:`repair` run at start-up finishes such a
swap (or rolls it back) and removes temporary files a crash left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# Every temporary name carries one of these, so repair() can tell leftovers from real files.
TMP = ".gravity-tmp"
STAGE = ".gravity-stage"
OLD = ".gravity-old"


def _sibling(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}{kind}")


def fsync_dir(directory: str | Path) -> None:
    """Persist a directory's entries (a rename or a new file in it)."""
    with contextlib.suppress(OSError):  # some filesystems cannot open or sync a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", durable: bool = True, **kwargs: Any) -> Iterator[IO[Any]]:
    """Write through the yielded handle; on success the file replaces ``path`` atomically, on error the
    previous file stays and the temporary one is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(target, TMP)
    try:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(target.parent)


def write_bytes(path: str | Path, data: bytes, durable: bool = True) -> None:
    with atomic_open(path, "wb", durable) as handle:
        handle.write(data)


def write_text(path: str | Path, text: str, durable: bool = True) -> None:
    write_bytes(path, text.encode("utf-8"), durable)


def write_json(path: str | Path, obj: Any, durable: bool = True) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", durable)


@contextlib.contextmanager
def staged_dir(target: str | Path, durable: bool = True) -> Iterator[Path]:
    """Yield an empty directory next to ``target``; on success it replaces ``target`` (see :func:`swap_in`)."""
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = _sibling(final, STAGE)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if durable:
        for file in stage.rglob("*"):
            if file.is_file():
                with open(file, "rb") as handle:
                    os.fsync(handle.fileno())
        fsync_dir(stage)
    swap_in(stage, final, durable)


def swap_in(stage: Path, target: Path, durable: bool = True) -> None:
    """Replace directory ``target`` by ``stage``. The previous version is renamed aside first and removed
    after; :func:`repair` completes a swap a crash interrupted."""
    old = None
    if target.exists():
        old = _sibling(target, OLD)
        os.replace(target, old)
    os.replace(stage, target)
    if durable:
        fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def repair(root: str | Path, grace_s: float = 60.0) -> list[str]:
    """Finish what a crash interrupted under ``root``; returns what was done, one line per action.

    For a directory whose swap stopped between its two renames (target missing, ``.old`` present), the
    staged new version is moved in when there is one, otherwise the old one is put back. Leftover
    temporary files, stages and old versions are removed. Only entries older than ``grace_s`` are
    touched, so a writer still at work in another process is left alone.
    """
    base = Path(root)
    if not base.is_dir():
        return []
    now = time.time()
    actions: list[str] = []
    leftovers = [
        Path(directory) / name
        # os.walk passes over a directory another process removes mid-walk (a queue a live replica empties)
        for directory, subdirectories, filenames in os.walk(base)
        for name in (*subdirectories, *filenames)
        if name.startswith(".") and name.endswith((TMP, STAGE, OLD))
    ]
    stale = [p for p in leftovers if now - _mtime(p) >= grace_s]
    by_target: dict[Path, list[Path]] = {}
    for p in stale:
        name = p.name[1:].rsplit(".", 2)[0]  # ".<name>.<hex><kind>" -> "<name>"
        by_target.setdefault(p.with_name(name), []).append(p)
    for target, parts in sorted(by_target.items()):
        if not target.exists():
            olds = [p for p in parts if p.name.endswith(OLD)]
            stages = sorted((p for p in parts if p.name.endswith(STAGE)), key=_mtime)
            if olds and stages:
                os.replace(stages[-1], target)
                actions.append(f"completed the interrupted swap of {target}")
            elif olds:
                os.replace(olds[0], target)
                actions.append(f"restored {target} from its previous version")
        for p in parts:
            if p.exists():
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                actions.append(f"removed leftover {p}")
    return actions


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
