"""Atomic durable writes and the start-up repair of what a crash interrupted."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from gravity_testing import another_process_churning, first_failure

from gravity_core import files


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "d" / "record.json"
    files.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), files.atomic_open(target, "w", encoding="utf-8") as handle:
        handle.write('{"v": 2, "half": ')
        raise RuntimeError("crash mid-write")
    assert target.read_text(encoding="utf-8") == '{\n  "v": 1\n}\n'
    assert [p.name for p in target.parent.iterdir()] == ["record.json"]


def test_a_swap_interrupted_between_its_renames_is_completed_at_start(tmp_path: Path) -> None:
    target = tmp_path / "adapters" / "gravity"
    with files.staged_dir(target) as stage:
        (stage / "w").write_text("v1")
    # the crash: the old version was renamed aside, the staged new one not yet moved in
    stage = target.with_name(f".gravity.abc123{files.STAGE}")
    stage.mkdir()
    (stage / "w").write_text("v2")
    os.replace(target, target.with_name(f".gravity.def456{files.OLD}"))
    assert not target.exists()
    for p in target.parent.iterdir():
        _age(p, 120)
    actions = files.repair(tmp_path)
    assert (target / "w").read_text() == "v2" and any("completed" in a for a in actions)
    assert [p.name for p in target.parent.iterdir()] == ["gravity"]


def test_a_swap_without_its_stage_is_rolled_back_and_fresh_work_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "adapters" / "pref-align"
    with files.staged_dir(target) as stage:
        (stage / "w").write_text("v1")
    os.replace(target, target.with_name(f".pref-align.0a1b2c{files.OLD}"))
    _age(target.with_name(f".pref-align.0a1b2c{files.OLD}"), 120)
    busy = tmp_path / f".manifest.json.99ff00{files.TMP}"  # another process is writing this right now
    busy.write_text("partial")
    stale = tmp_path / f".profile.json.77ee11{files.TMP}"
    stale.write_text("left by a crash")
    _age(stale, 3600)
    actions = files.repair(tmp_path, grace_s=60)
    assert (target / "w").read_text() == "v1" and any("restored" in a for a in actions)
    assert busy.exists() and not stale.exists()


def test_the_repair_at_start_passes_over_directories_another_process_removes(tmp_path: Path) -> None:
    """Every service repairs the shared artifact store as it starts, while other services (a second profiler
    replica claiming queued work) make and remove directories in it: that must not fail the start."""
    leftover = tmp_path / "adapters" / ".gravity.0a1b2c.gravity-tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("half", encoding="utf-8")
    _age(leftover, 3600)
    with another_process_churning(tmp_path / "profiler" / "pending") as other:
        failure = first_failure(lambda: files.repair(tmp_path), seconds=3)  # unfixed: within ~10 repairs
    assert failure is None, f"repair {failure[0]} failed: {failure[1]!r}"
    assert other.exitcode == 0
    assert not leftover.exists()  # and it still does its job
