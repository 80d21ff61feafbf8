"""What one trainer process holds and does (paper §3.3): datasets resolved, training runs queued and watched.

:class:`TrainerApp` owns the run store and the artifact store. A complete dataset on gravity.shards.v1 that
maps to a recipe has its manifest checksum verified and a run queued (:meth:`TrainerApp.on_shard`); gRPC Submit
queues one after validating dataset, recipe, overrides and base model. Replays find the same run (its id hashes
manifest checksum, recipe and overrides) and do nothing. The runs themselves are :mod:`gravity_trainer.worker`'s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gravity.v1 import pairs_pb2, training_pb2
from gravity_core.artifacts import ArtifactStore
from gravity_core.config import Settings
from gravity_core.datasets import MANIFEST
from gravity_core.errors import InvalidInput, NotFound, Unavailable
from gravity_core.grpc import require
from gravity_core.identifiers import check_segment, is_segment
from gravity_core.logging import get_logger
from gravity_core.proto_io import from_dict
from gravity_core.skips import RecordError
from gravity_trainer.publishing import list_stored
from gravity_trainer.recipes import RECIPES, parse_value
from gravity_trainer.runs import FAILED, STATE_PROTO, RunRecord, RunStore, run_id_for
from gravity_trainer.settings import TrainerSettings

log = get_logger(__name__)


class TrainerApp:
    """The service's state and operations, independent of gRPC and Kafka plumbing."""

    def __init__(self, settings: Settings, section: TrainerSettings | None = None) -> None:
        self.settings = settings
        self.section = section or settings.section("trainer", TrainerSettings)
        self.store = ArtifactStore.from_settings(settings)
        self.work_root = self.section.work_path(self.store.root)
        self.runs = RunStore(self.work_root)
        self.base_model = self.section.base_model or settings.llm.role("writer").model
        self._datasets_lock = threading.Lock()

    # ------------------------------------------------------------- datasets
    def resolve_dataset(self, dataset: str) -> tuple[Path, str]:
        """A pairs directory (URI/path, absolute or relative to the store), a dataset directory inside one, or a
        dataset id ``<cohort>/<name>`` under the store (where pairgen writes ``<prefix>/<cohort>/manifest.json``)."""
        text = dataset.strip()
        require(bool(text), "dataset", "is required")
        path = self.store.resolve(text, field="dataset")  # INVALID_ARGUMENT outside the store
        if (path / MANIFEST).is_file():
            return path, ""
        if path != self.store.root and (path.parent / MANIFEST).is_file():
            return path.parent, check_segment("dataset", path.name)
        cohort, _, name = text.rpartition("/")
        if is_segment(cohort) and is_segment(name):
            found = sorted(self.store.root.glob(f"{cohort}/{MANIFEST}")) + sorted(
                self.store.root.glob(f"*/{cohort}/{MANIFEST}")
            )
            if found:
                return found[0].parent, name
        raise NotFound(
            "dataset", f"{dataset!r} is no pairs directory, dataset directory or dataset id in the store"
        )

    # ----------------------------------------------------------------- runs
    def submit(
        self,
        pairs_dir: Path,
        dataset: str,
        recipe: str,
        overrides: dict[str, Any],
        adapter_id: str = "",
        source: str = "grpc",
        trigger: str = "",
        expected_manifest_sha256: str = "",
    ) -> tuple[RunRecord, bool]:
        """Validate and queue a run; (record, created). An existing run of the same identity is returned as is
        unless it failed, in which case it is queued again."""
        # request.py, not run.py: queueing a run must not import torch and transformers (11 s idle, ~26 s
        # beside a decoding generator), which delayed every first run of a service by that much.
        from gravity_trainer.request import TrainRequest, prepare, settings_fields

        if recipe not in RECIPES:
            raise InvalidInput("recipe", f"unknown recipe {recipe!r} (known: {', '.join(sorted(RECIPES))})")
        effective = {**self.section.overrides.get(recipe, {}), **overrides}
        request = TrainRequest(
            pairs=pairs_dir,
            recipe=recipe,
            out=pairs_dir,  # not checked here: the run's own directory is decided below
            base_model=self.base_model,
            dataset=dataset,
            config_file=self.section.recipe_config,
            overrides=effective,
            allow_base_mismatch=self.section.allow_base_mismatch,
            expected_manifest_sha256=expected_manifest_sha256,
            adapter_id=adapter_id,
            **settings_fields(self.settings, self.section),
        )
        prepared = prepare(request, check_out=False)
        run_id = run_id_for(prepared.manifest_sha, recipe, prepared.dataset, effective, adapter_id)
        with self._datasets_lock:
            existing = self.runs.get(run_id)
            if existing is not None and existing.state != FAILED:
                return existing, False
            record = RunRecord(
                run_id=run_id,
                pairs_dir=str(pairs_dir),
                dataset=prepared.dataset,
                recipe=recipe,
                manifest_sha256=prepared.manifest_sha,
                overrides=effective,
                adapter_id=adapter_id,
                source=source,
                trigger=trigger,
                attempts=existing.attempts if existing else 0,
                message="queued",
            )
            self.runs.put(record)
        log.info("run_queued", run=run_id, recipe=recipe, dataset=prepared.dataset, source=source)
        return record, True

    def on_shard(self, ref: pairs_pb2.ShardRef, record: Any = None) -> None:
        """A ShardRef from gravity.shards.v1: queue a run when it completes a dataset that has a recipe."""
        if not ref.dataset_complete:
            return
        name = ref.dataset_id.rsplit("/", 1)[-1]
        recipe = self.section.recipe_for(name)
        if recipe is None:
            log.info("dataset_without_recipe", dataset=ref.dataset_id)
            return
        if not ref.manifest_uri:
            raise RecordError("missing_manifest_uri", f"ShardRef {ref.shard_id} has no manifest_uri")
        try:
            manifest_path = self.store.resolve(ref.manifest_uri, field="manifest_uri")
        except InvalidInput as exc:
            raise RecordError("bad_uri", f"ShardRef {ref.shard_id}: {exc}") from None
        if not manifest_path.is_file():
            # on a shared volume the ShardRef can arrive before the manifest is visible here: retry later
            raise Unavailable(f"manifest {ref.manifest_uri} is not visible (yet) in the artifact store")
        try:
            self.submit(
                manifest_path.parent,
                name,
                recipe,
                {},
                source="kafka",
                trigger=ref.shard_id,
                expected_manifest_sha256=ref.manifest_sha256,
            )
        except InvalidInput as exc:
            reason = "manifest_checksum_mismatch" if exc.field == "manifest_sha256" else "invalid_dataset"
            detail = exc.message
            if reason == "manifest_checksum_mismatch":
                detail += "; a ShardRef written after the change triggers training with the current manifest"
            raise RecordError(reason, detail) from None
        except NotFound as exc:
            raise RecordError("dataset_not_found", exc.message) from None

    # ------------------------------------------------------------- requests
    def submit_request(self, request: training_pb2.SubmitRequest) -> training_pb2.SubmitResponse:
        """gRPC Submit: the dataset resolved, the recipe defaulted from the dataset's name, the run queued."""
        pairs_dir, name = self.resolve_dataset(request.dataset)
        recipe = request.recipe.strip()
        if not recipe:
            from gravity_trainer.recipes import recipe_class

            default = self.section.recipe_for(name) if name else None
            require(default is not None, "recipe", "is required (no default recipe for this dataset)")
            recipe = recipe_class(str(default)).name
        overrides = {k: parse_value(v) for k, v in request.overrides.items()}
        adapter_id = request.adapter_id.strip()
        if adapter_id:
            check_segment("adapter_id", adapter_id)
        record, _ = self.submit(pairs_dir, name, recipe, overrides, adapter_id, "grpc", request.dataset)
        return training_pb2.SubmitResponse(run_id=record.run_id, state=STATE_PROTO[record.state])

    def status(
        self, run_id_text: str, is_active: Callable[[], bool], stopping: threading.Event
    ) -> Iterator[training_pb2.StatusResponse]:
        """A run's status, then each change, until it ends, the caller leaves or the service stops."""
        run_id = check_segment("run_id", run_id_text.strip())
        record = self.runs.get(run_id)
        if record is None:
            raise NotFound("run_id", f"no run {run_id!r}")
        last: tuple[Any, ...] | None = None
        while True:
            record = self.runs.get(run_id)
            assert record is not None
            key = (record.state, record.step, record.message, record.updated_at_ms)
            if key != last:
                last = key
                yield status_of(record)
            if record.terminal or not is_active() or stopping.is_set():
                return
            with self.runs.changed:
                self.runs.changed.wait(self.section.status_poll_s)

    def list_adapters(self) -> training_pb2.ListAdaptersResponse:
        return training_pb2.ListAdaptersResponse(adapters=list_stored(self.store))


def status_of(record: RunRecord) -> training_pb2.StatusResponse:
    response = training_pb2.StatusResponse(
        run_id=record.run_id,
        state=STATE_PROTO[record.state],
        step=record.step,
        total_steps=record.total_steps,
        epoch=record.epoch,
        metrics=record.metrics,
        message=record.message,
    )
    if record.adapter:
        response.adapter.CopyFrom(from_dict(record.adapter, training_pb2.AdapterRef))
    return response
