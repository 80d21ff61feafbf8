from pathlib import Path

import pytest

from gravity_core.artifacts import ArtifactStore, sha256_dir
from gravity_core.errors import InvalidInput


def test_atomic_dir_publish_and_verify(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("one")
    ref = store.publish_dir("adapters/x", src)
    assert store.verify(ref.uri, ref.sha256)
    (src / "a.txt").write_text("two")
    ref2 = store.publish_dir("adapters/x", src)
    assert ref2.sha256 != ref.sha256 and store.verify(ref2.uri, ref2.sha256)
    assert not store.verify(ref2.uri, ref.sha256)
    assert [p.name for p in (tmp_path / "store" / "adapters").iterdir()] == ["x"]  # no staging leftovers


def test_failed_stage_leaves_previous_version(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with store.staged_dir("d") as stage:
        (stage / "f").write_text("v1")
    before = sha256_dir(store.path("d"))
    with pytest.raises(RuntimeError), store.staged_dir("d") as stage:
        (stage / "f").write_text("partial")
        raise RuntimeError("crash mid-write")
    assert sha256_dir(store.path("d")) == before


def test_paths_cannot_escape(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "s")
    with pytest.raises(InvalidInput):
        store.path("../../etc/passwd")
    ref = store.write_json("m/manifest.json", {"a": 1})
    assert store.read_json(ref.uri) == {"a": 1}


def test_sha256_dir_can_leave_out_a_metadata_file(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"w")
    before = sha256_dir(tmp_path)
    (tmp_path / "meta.json").write_text('{"sha256": "..."}')
    assert sha256_dir(tmp_path, exclude=("meta.json",)) == before
    assert sha256_dir(tmp_path) != before


def test_find_adapters_records_unreadable_refs_and_goes_on(tmp_path: Path) -> None:
    from gravity.v1 import training_pb2
    from gravity_core.adapters import ADAPTER_META, find_adapters, write_adapter_ref
    from gravity_core.names import method_fields
    from gravity_core.skips import SkipLog

    for name, method in (("good", "gravity"), ("bad", "user-sft")):
        d = tmp_path / name
        d.mkdir()
        (d / "adapter_config.json").write_text("{}")
        write_adapter_ref(d, training_pb2.AdapterRef(adapter_id=name, **method_fields(method)))
    (tmp_path / "bad" / ADAPTER_META).write_text('{"no_such_field": 1}')
    with pytest.raises(InvalidInput):
        find_adapters(tmp_path)
    skips = SkipLog()
    found = find_adapters(tmp_path, skips=skips)
    assert list(found) == ["gravity"] and skips.counts["bad_adapter_meta"] == 1


def test_uris_resolve_only_inside_the_store(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    inside = store.path("datasets/c/manifest.json")
    assert store.resolve(inside.as_uri()) == inside
    assert store.resolve(str(inside)) == inside
    assert store.resolve("datasets/c/manifest.json") == inside
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "store" / "link").symlink_to(tmp_path / "elsewhere")
    for uri in (
        (tmp_path / "elsewhere").as_uri(),
        str(tmp_path / "elsewhere"),
        "../elsewhere",
        "datasets/../../elsewhere",
        "link/x",  # a symlink inside the store that points out of it
        "file://attacker.example/etc/passwd",
        "s3://bucket/key",
        "",
    ):
        with pytest.raises(InvalidInput) as err:
            store.resolve(uri, field="manifest_uri")
        assert err.value.field == "manifest_uri"


def test_the_store_itself_is_never_replaced(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    store.write_json("keep.json", {"a": 1})
    for rel in ("", ".", "adapters/.."):
        with pytest.raises(InvalidInput), store.staged_dir(rel):
            pass
    assert store.read_json("keep.json") == {"a": 1}


def test_find_adapters_passes_over_directories_removed_while_it_looks(tmp_path: Path) -> None:
    """The generator scans an adapter directory the trainer writes into, and a swap removes directories."""
    from gravity_testing import another_process_churning, first_failure

    from gravity.v1 import training_pb2
    from gravity_core.adapters import find_adapters, write_adapter_ref
    from gravity_core.names import method_fields

    adapter = tmp_path / "runs" / "gravity"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    write_adapter_ref(adapter, training_pb2.AdapterRef(adapter_id="a1", **method_fields("gravity")))
    with another_process_churning(tmp_path) as other:
        failure = first_failure(lambda: find_adapters(tmp_path), seconds=3)
    assert failure is None, f"scan {failure[0]} failed: {failure[1]!r}"
    assert other.exitcode == 0
    assert list(find_adapters(tmp_path)) == ["gravity"] and find_adapters(tmp_path, max_depth=1) == {}
