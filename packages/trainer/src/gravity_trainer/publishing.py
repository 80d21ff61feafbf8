"""Putting a finished adapter into the artifact store and announcing it on gravity.adapters.v1."""

from __future__ import annotations

import shutil
from pathlib import Path

from gravity.v1 import training_pb2
from gravity_core import names
from gravity_core.adapters import ADAPTER_META, read_adapter_ref, write_adapter_ref
from gravity_core.artifacts import ArtifactStore, sha256_dir
from gravity_core.bus import Bus
from gravity_core.errors import InvalidInput
from gravity_core.identifiers import check_segment
from gravity_core.logging import get_logger

ADAPTERS_PREFIX = "adapters"
log = get_logger(__name__)


def store_adapter(store: ArtifactStore, source: Path) -> training_pb2.AdapterRef:
    """Copy the adapter directory to ``adapters/<adapter_id>`` atomically; the stored ref names that location.

    The checksum excludes gravity_adapter.json (it holds the checksum), so it does not change with the URI.
    """
    ref = read_adapter_ref(source)
    if not ref.adapter_id:
        raise InvalidInput("adapter_id", f"{source} has an AdapterRef without adapter_id")
    rel = f"{ADAPTERS_PREFIX}/{check_segment('adapter_id', ref.adapter_id)}"
    with store.staged_dir(rel) as stage:
        shutil.copytree(source, stage, dirs_exist_ok=True)
        stored = training_pb2.AdapterRef()
        stored.CopyFrom(ref)
        stored.uri = store.uri(store.path(rel))
        stored.sha256 = sha256_dir(stage, exclude=(ADAPTER_META,))
        write_adapter_ref(stage, stored)
    return stored


def publish_ref(bus: Bus, ref: training_pb2.AdapterRef) -> None:
    """Key = the method's name: the generator serves the newest adapter per method."""
    bus.publish(bus.topics.adapters, names.method_name(ref), ref)


def list_stored(store: ArtifactStore) -> list[training_pb2.AdapterRef]:
    root = store.path(ADAPTERS_PREFIX)
    if not root.is_dir():
        return []
    refs = []
    for d in sorted(root.iterdir()):
        if (d / ADAPTER_META).is_file():
            try:
                ref = read_adapter_ref(d)
                refs.append((names.method_name(ref), ref))
            except InvalidInput as exc:  # a broken description is not an adapter anyone can use
                log.warning("adapter_unreadable", path=str(d), error=str(exc))
    return [ref for _, ref in sorted(refs, key=lambda r: (r[0], -r[1].created_at_ms))]
