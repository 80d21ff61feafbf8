"""Adapter bookkeeping: checks before loading, atomic switches, leases, retirement, newest wins."""

import time
from pathlib import Path

import pytest

from gravity.v1 import training_pb2
from gravity_core.adapters import write_adapter_ref
from gravity_core.artifacts import ArtifactStore, sha256_dir
from gravity_core.errors import NotFound
from gravity_core.names import method_fields
from gravity_generator.registry import AdapterRegistry, AdapterRejected, MethodUnavailable


def fake_adapter_dir(root: Path, name: str, payload: bytes = b"weights") -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (d / "adapter_model.safetensors").write_bytes(payload)
    return d


def ref_for(
    d: Path, method: str, adapter_id: str, created: int, sha: str | None = None
) -> training_pb2.AdapterRef:
    ref = training_pb2.AdapterRef(
        adapter_id=adapter_id,
        **method_fields(method),
        uri=d.as_uri(),
        sha256=sha if sha is not None else sha256_dir(d),
        created_at_ms=created,
    )
    write_adapter_ref(d, ref)
    return ref


@pytest.fixture
def registry(fake_llm, tmp_path: Path) -> AdapterRegistry:
    # the adapters the tests write under tmp_path are inside this store
    return AdapterRegistry(fake_llm(), ArtifactStore(tmp_path))


def test_install_switch_and_retire_after_the_last_lease(registry: AdapterRegistry, tmp_path: Path) -> None:
    v1 = registry.install(ref_for(fake_adapter_dir(tmp_path, "v1", b"one"), "gravity", "g-v1", 100))
    assert v1 is not None and registry.current()["gravity"].name == "g-v1"
    lease = registry.acquire("gravity")
    assert lease.name == "g-v1"
    registry.install(ref_for(fake_adapter_dir(tmp_path, "v2", b"two"), "gravity", "g-v2", 200))
    assert registry.acquire("gravity").name == "g-v2"  # new requests get the new adapter at once
    assert "g-v1" in registry.llm.loaded  # ...while the old one still serves the request holding it
    lease.release()
    assert "g-v1" not in registry.llm.loaded and registry.llm.unloaded == ["g-v1"]
    with pytest.raises(NotFound) as err:
        registry.acquire("gravity", override="g-v1")
    assert err.value.field == "adapter"


def test_older_refs_and_replays_change_nothing(registry: AdapterRegistry, tmp_path: Path) -> None:
    new = ref_for(fake_adapter_dir(tmp_path, "new", b"new"), "gravity", "g-new", 500)
    registry.install(new)
    assert (
        registry.install(ref_for(fake_adapter_dir(tmp_path, "old", b"old"), "gravity", "g-old", 100)) is None
    )
    assert registry.install(new).name == "g-new"  # a replay of the same checksum
    assert list(registry.llm.loaded) == ["g-new"]


def test_bad_refs_are_rejected_and_the_current_adapter_stays(
    registry: AdapterRegistry, tmp_path: Path
) -> None:
    good = fake_adapter_dir(tmp_path, "good", b"good")
    registry.install(ref_for(good, "gravity", "g-good", 100))
    cases = {
        "checksum_mismatch": ref_for(
            fake_adapter_dir(tmp_path, "tampered"), "gravity", "g-bad1", 200, sha="0" * 64
        ),
        "missing_files": training_pb2.AdapterRef(
            adapter_id="g-bad2",
            **method_fields("gravity"),
            uri=(tmp_path / "nowhere").as_uri(),
            sha256="0" * 64,
            created_at_ms=300,
        ),
        "missing_field": training_pb2.AdapterRef(adapter_id="g-bad3", uri=good.as_uri(), created_at_ms=400),
        "bad_method": training_pb2.AdapterRef(
            adapter_id="g-bad4", **method_fields("lamp"), uri=good.as_uri(), created_at_ms=500
        ),
    }
    no_weights = fake_adapter_dir(tmp_path, "noweights")
    (no_weights / "adapter_model.safetensors").unlink()
    for reason, ref in cases.items():
        with pytest.raises(AdapterRejected) as err:
            registry.install(ref)
        assert err.value.reason == reason
    with pytest.raises(AdapterRejected) as err:
        registry.install(ref_for(no_weights, "gravity", "g-bad5", 600))
    assert err.value.reason == "missing_files"
    registry.llm.fail_loads.add("g-bad6")
    with pytest.raises(AdapterRejected) as err:
        registry.install(ref_for(fake_adapter_dir(tmp_path, "broken", b"x"), "gravity", "g-bad6", 700))
    assert err.value.reason == "load_failed"
    assert registry.current()["gravity"].name == "g-good" and list(registry.llm.loaded) == ["g-good"]


def test_refs_outside_the_store_unverified_or_from_the_future_are_rejected(
    registry: AdapterRegistry, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    good = ref_for(fake_adapter_dir(tmp_path, "good", b"good"), "gravity", "g-good", 100)
    registry.install(good)
    elsewhere = fake_adapter_dir(tmp_path_factory.mktemp("elsewhere"), "outside", b"evil")
    now_ms = int(time.time() * 1000)
    cases = {
        # a real adapter, correctly checksummed, but outside the artifact store
        "bad_uri": ref_for(elsewhere, "gravity", "g-out", 200),
        "bad_uri ": training_pb2.AdapterRef(
            adapter_id="g-dots",
            **method_fields("gravity"),
            uri=f"{tmp_path}/../../etc",
            sha256="0" * 64,
            created_at_ms=300,
        ),
        "missing_checksum": ref_for(
            fake_adapter_dir(tmp_path, "nosha", b"x"), "gravity", "g-nosha", 400, sha=""
        ),
        # a stamp far ahead of the clock would make this ref the newest forever
        "future_timestamp": ref_for(
            fake_adapter_dir(tmp_path, "future", b"y"), "gravity", "g-future", now_ms + 10**11
        ),
    }
    for reason, ref in cases.items():
        with pytest.raises(AdapterRejected) as err:
            registry.install(ref)
        assert err.value.reason == reason.strip()
    later = ref_for(fake_adapter_dir(tmp_path, "later", b"z"), "gravity", "g-later", now_ms)
    assert registry.install(later) is not None and registry.current()["gravity"].name == "g-later"
    assert set(registry.llm.loaded) <= {"g-good", "g-later"}


def test_checksum_with_the_metadata_file_included_is_accepted(
    registry: AdapterRegistry, tmp_path: Path
) -> None:
    d = fake_adapter_dir(tmp_path, "incl", b"w")
    ref = training_pb2.AdapterRef(adapter_id="g", **method_fields("gravity"), uri=d.as_uri(), created_at_ms=1)
    write_adapter_ref(d, ref)
    ref.sha256 = sha256_dir(d)  # a writer that hashed the directory after adding gravity_adapter.json
    assert registry.install(ref) is not None


def test_methods_unavailable_until_loaded_and_ablations_listed(
    registry: AdapterRegistry, tmp_path: Path
) -> None:
    with pytest.raises(MethodUnavailable):
        registry.acquire("pref-align")
    registry.install(ref_for(fake_adapter_dir(tmp_path, "abl"), "gravity-no-values", "abl-1", 1))
    assert registry.methods() == ["user-sft", "pref-align", "gravity", "gravity-no-values"]
    # a retrained adapter re-published under the same id gets a distinct name, so the switch stays atomic
    again = registry.install(
        ref_for(fake_adapter_dir(tmp_path, "abl2", b"retrained"), "gravity-no-values", "abl-1", 2)
    )
    assert again is not None and again.name.startswith("abl-1-") and registry.llm.unloaded == ["abl-1"]


def test_openai_endpoint_adapters_are_never_unloaded_by_the_registry(fake_llm, tmp_path: Path) -> None:
    registry = AdapterRegistry(fake_llm(backend="openai"), ArtifactStore(tmp_path))
    registry.register_external("pref-align", "pref-align-served")  # vLLM --lora-modules: used as is
    assert registry.acquire("pref-align").name == "pref-align-served" and registry.llm.loaded == {}
    registry.install(ref_for(fake_adapter_dir(tmp_path, "a"), "gravity", "g-a", 1))
    registry.install(ref_for(fake_adapter_dir(tmp_path, "b", b"b"), "gravity", "g-b", 2))
    # other replicas may still use g-a on the shared server: it stays loaded there
    assert set(registry.llm.loaded) == {"g-a", "g-b"} and registry.llm.unloaded == []
    registry.llm.loaded.clear()  # the server restarted and forgot its runtime adapters
    assert registry.reload("g-b") and "g-b" in registry.llm.loaded
    assert not registry.reload("pref-align-served")  # not ours to load


def _scraped_adapters_loaded() -> float:
    from prometheus_client.parser import text_string_to_metric_families

    from gravity_core.metrics import exposition

    for family in text_string_to_metric_families(exposition().decode()):
        for sample in family.samples:
            if sample.name == "gravity_adapters_loaded" and sample.labels == {"service": "generator"}:
                return sample.value
    raise AssertionError("gravity_adapters_loaded{service=generator} is not exposed")


def test_the_loaded_gauge_counts_every_registry_of_the_process(fake_llm, tmp_path: Path) -> None:
    """Two registries in one process (a test session, an app beside a service) must not overwrite each
    other's count: the gauge is the sum, read at scrape time, and a closed registry counts nothing."""
    import gc

    gc.collect()  # registries of earlier tests that are garbage must not leave the count mid-test
    before = _scraped_adapters_loaded()
    first = AdapterRegistry(fake_llm(), ArtifactStore(tmp_path / "a"))
    second = AdapterRegistry(fake_llm(), ArtifactStore(tmp_path / "b"))
    first.install(ref_for(fake_adapter_dir(tmp_path / "a", "x", b"x"), "gravity", "a-g", 100))
    first.install(ref_for(fake_adapter_dir(tmp_path / "a", "y", b"y"), "pref-align", "a-p", 100))
    second.install(ref_for(fake_adapter_dir(tmp_path / "b", "z", b"z"), "gravity", "b-g", 100))
    assert _scraped_adapters_loaded() == before + 3
    second.close()  # the registry that changed last must not set the gauge to its own count
    assert _scraped_adapters_loaded() == before + 2
    first.close()
    assert _scraped_adapters_loaded() == before
