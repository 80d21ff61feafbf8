"""Which adapter serves which method, and hot-swapping them safely.

An AdapterRef (from gravity.adapters.v1 or an adapter directory) is checked before anything changes: the
directory exists, holds the PEFT files, matches its SHA-256 and, on the embedded backend, fits the base
model's layer shapes. It is then loaded into the writer under its own name, and only then does its method
point at it: the switch is one assignment under a lock, so a request sees either the old adapter or the
new one, never a half-loaded state. Requests hold a lease on the adapter they use; a replaced adapter is
unloaded (embedded) once its last lease is returned. A bad ref raises :class:`AdapterRejected` (the
consumer dead-letters it) and the current adapter stays.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gravity.v1 import training_pb2
from gravity_core import names
from gravity_core.adapters import ADAPTER_META
from gravity_core.artifacts import ArtifactStore, sha256_dir
from gravity_core.errors import GravityError, InvalidInput, NotFound, Unavailable
from gravity_core.llm import LLMClient
from gravity_core.logging import get_logger
from gravity_core.metrics import ADAPTERS_LOADED
from gravity_core.skips import RecordError
from gravity_generator.methods import ADAPTER_METHODS, PROMPT_METHODS

log = get_logger(__name__)

WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
# A ref stamped further ahead than this (clock skew between trainer and generator hosts) is refused: the
# newest ref serves its method, so a far-future stamp would pin the method against every later adapter.
MAX_CLOCK_SKEW_MS = 10 * 60 * 1000


class AdapterRejected(RecordError):
    """An AdapterRef that cannot be served (reason: missing_files, checksum_mismatch, incompatible, ...)."""


class MethodUnavailable(GravityError):
    """The method needs an adapter that is not loaded yet (answered as FAILED_PRECONDITION)."""


@dataclass
class ServedAdapter:
    name: str  # the name the writer knows it by (vLLM: the model name)
    method: str
    ref: training_pb2.AdapterRef
    path: str
    # Served by the endpoint from its own configuration (vLLM --lora-modules): never loaded or unloaded here.
    external: bool = False
    leases: int = 0
    retired: bool = False


class Lease:
    """The adapter one request uses, held until the request is done (``with`` or :meth:`release`)."""

    def __init__(self, registry: AdapterRegistry | None, adapter: ServedAdapter | None) -> None:
        self._registry = registry
        self.adapter = adapter
        self._released = False

    @property
    def name(self) -> str | None:
        return self.adapter.name if self.adapter is not None else None

    def release(self) -> None:
        if not self._released and self._registry is not None and self.adapter is not None:
            self._released = True
            self._registry._release(self.adapter)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_: Any) -> None:
        self.release()


NO_ADAPTER = Lease(None, None)


# Every registry of this process, for gravity_adapters_loaded: computed at scrape time from all of them, so two
# registries in one process (a test session, an app beside a service) never overwrite each other's count.
_OPEN_REGISTRIES: weakref.WeakSet[AdapterRegistry] = weakref.WeakSet()


def adapters_loaded() -> int:
    """Adapters loaded by every open registry of this process (what gravity_adapters_loaded reports)."""
    return sum(registry.loaded_count() for registry in list(_OPEN_REGISTRIES))


ADAPTERS_LOADED.labels("generator").set_function(adapters_loaded)


class AdapterRegistry:
    def __init__(self, llm: LLMClient, store: ArtifactStore) -> None:
        self.llm = llm
        self.store = store
        self._lock = threading.Lock()
        self._install_lock = threading.Lock()  # one load at a time: loads are heavy and must not interleave
        self._current: dict[str, ServedAdapter] = {}
        self._by_name: dict[str, ServedAdapter] = {}
        _OPEN_REGISTRIES.add(self)

    @property
    def embedded(self) -> bool:
        return self.llm.info.backend == "embedded"

    # ------------------------------------------------------------------ queries
    def loaded_count(self) -> int:
        with self._lock:
            return len(self._by_name)

    def current(self) -> dict[str, ServedAdapter]:
        with self._lock:
            return dict(self._current)

    def methods(self) -> list[str]:
        """Adapter methods: the paper's three, then any other loaded method (ablations), sorted."""
        with self._lock:
            extra = sorted(m for m in self._current if m not in ADAPTER_METHODS)
        return [*ADAPTER_METHODS, *extra]

    def acquire(self, method: str, override: str = "") -> Lease:
        """A lease on the adapter serving ``method`` (or on the adapter named ``override``)."""
        with self._lock:
            if override:
                adapter = self._by_name.get(override)
                if adapter is None:
                    raise NotFound(
                        "adapter",
                        f"no adapter named {override!r} is loaded (loaded: {', '.join(sorted(self._by_name)) or 'none'})",
                    )
            else:
                adapter = self._current.get(method)
                if adapter is None:
                    raise MethodUnavailable(
                        f"method {method!r} needs its trained adapter, which is not loaded yet; it is loaded when "
                        f"an AdapterRef for {method!r} arrives on the adapters topic (or sits in generator.adapters_dir)"
                    )
            adapter.leases += 1
            return Lease(self, adapter)

    def _release(self, adapter: ServedAdapter) -> None:
        with self._lock:
            adapter.leases -= 1
            unload = adapter.retired and adapter.leases == 0
            if unload:
                self._by_name.pop(adapter.name, None)
        if unload:
            self._unload(adapter)

    # ------------------------------------------------------------------ changes
    def register_external(self, method: str, model_name: str) -> ServedAdapter:
        """A method served by an adapter the endpoint already has (openai backend, vLLM --lora-modules)."""
        ref = training_pb2.AdapterRef(adapter_id=model_name, **names.method_fields(method))
        adapter = ServedAdapter(model_name, method, ref, "", external=True)
        self._switch(adapter)
        return adapter

    def install(self, ref: training_pb2.AdapterRef, path: str | Path | None = None) -> ServedAdapter | None:
        """Check, load and switch ``ref``'s method to it. None when a newer adapter already serves the method.

        Raises AdapterRejected for a ref that can never be served, Unavailable when the endpoint is down.
        """
        try:
            method = names.method_name(ref, required=False)
        except InvalidInput as exc:
            raise AdapterRejected("bad_method", f"AdapterRef {ref.adapter_id!r}: {exc}") from None
        if not method:
            raise AdapterRejected("missing_field", "AdapterRef has no method")
        if method in PROMPT_METHODS:
            raise AdapterRejected("bad_method", f"method {method!r} is a prompt method and takes no adapter")
        if not ref.sha256:
            raise AdapterRejected(
                "missing_checksum",
                f"AdapterRef {ref.adapter_id!r} has no sha256; unverified adapters are not loaded",
            )
        ahead_ms = ref.created_at_ms - int(time.time() * 1000)
        if ahead_ms > MAX_CLOCK_SKEW_MS:
            raise AdapterRejected(
                "future_timestamp",
                f"AdapterRef {ref.adapter_id!r} is dated {ahead_ms / 3_600_000:.1f} h in the future; "
                "it would pin its method",
            )
        with self._install_lock:
            current = self.current().get(method)
            if current is not None and current.ref.created_at_ms > ref.created_at_ms:
                log.info("adapter_ignored_older", method=method, adapter=ref.adapter_id)
                return None
            if current is not None and current.ref.sha256 == ref.sha256:
                return current  # a replay of what is already served
            directory = self._locate(ref, path)
            self._check(ref, directory)
            name = self._name_for(ref)
            try:
                self.llm.load_adapter(name, str(directory))
            except (Unavailable, RecordError):
                raise
            except InvalidInput as exc:
                raise AdapterRejected(
                    "load_failed", f"the writer refused adapter {name!r}: {exc.message}"
                ) from exc
            except Exception as exc:
                raise AdapterRejected(
                    "load_failed", f"loading {directory} failed: {type(exc).__name__}: {exc}"
                ) from exc
            adapter = ServedAdapter(name, method, ref, str(directory))
            self._switch(adapter)
            log.info("adapter_serving", method=method, adapter=name, sha256=ref.sha256[:12])
            return adapter

    def reload(self, name: str) -> bool:
        """Load ``name`` into the endpoint again (a vLLM that restarted forgot its runtime adapters)."""
        with self._lock:
            adapter = self._by_name.get(name)
        if adapter is None or adapter.external or not adapter.path:
            return False
        with self._install_lock:
            self.llm.load_adapter(name, adapter.path)
        log.info("adapter_reloaded", adapter=name)
        return True

    def close(self) -> None:
        """Unload what this registry loaded into an in-process model (an endpoint keeps its adapters)."""
        with self._lock:
            adapters = list(self._by_name.values())
            self._by_name.clear()
            self._current.clear()
        for adapter in adapters:
            self._unload(adapter)

    def _switch(self, adapter: ServedAdapter) -> None:
        with self._lock:
            old = self._current.get(adapter.method)
            self._current[adapter.method] = adapter
            self._by_name[adapter.name] = adapter
            unload = old is not None and old is not adapter and old.name != adapter.name
            if unload and old is not None:
                old.retired = True
                unload = old.leases == 0
                if unload:
                    self._by_name.pop(old.name, None)
        if unload and old is not None:
            self._unload(old)

    def _unload(self, adapter: ServedAdapter) -> None:
        # vLLM keeps adapters in its own LRU (other replicas may still use the name); only an in-process
        # model is given its memory back.
        if adapter.external or not self.embedded:
            return
        try:
            self.llm.unload_adapter(adapter.name)
            log.info("adapter_unloaded", adapter=adapter.name, method=adapter.method)
        except GravityError as exc:
            log.warning("adapter_unload_failed", adapter=adapter.name, error=str(exc))

    # ------------------------------------------------------------------ checks
    def _locate(self, ref: training_pb2.AdapterRef, path: str | Path | None) -> Path:
        if path is not None:
            return Path(path)
        if not ref.uri:
            raise AdapterRejected("missing_field", f"AdapterRef {ref.adapter_id!r} has no uri")
        try:
            return self.store.resolve(ref.uri)
        except InvalidInput as exc:
            raise AdapterRejected("bad_uri", f"{ref.uri}: {exc.message}") from exc

    def _check(self, ref: training_pb2.AdapterRef, directory: Path) -> None:
        if not directory.is_dir():
            raise AdapterRejected("missing_files", f"adapter directory {directory} does not exist")
        if not (directory / "adapter_config.json").is_file():
            raise AdapterRejected("missing_files", f"{directory} has no adapter_config.json")
        if not any((directory / w).is_file() for w in WEIGHT_FILES):
            raise AdapterRejected("missing_files", f"{directory} has no {' or '.join(WEIGHT_FILES)}")
        if not _checksum_matches(directory, ref.sha256):
            raise AdapterRejected(
                "checksum_mismatch",
                f"{directory} does not match the AdapterRef's sha256 {ref.sha256[:16]}...",
            )
        if self.embedded:
            check_shapes(directory, self.llm)

    def _name_for(self, ref: training_pb2.AdapterRef) -> str:
        base = ref.adapter_id.strip() or f"{names.method_name(ref)}-{ref.sha256[:12] or 'local'}"
        with self._lock:
            taken = base in self._by_name
        # A retrained adapter re-published under the same id must not replace the one in use in place.
        return f"{base}-{ref.sha256[:8] or ref.created_at_ms}" if taken else base


def _checksum_matches(directory: Path, expected: str) -> bool:
    """The checksum with or without gravity_adapter.json: the file holding the checksum can't be part of it,
    so writers hash the directory before adding it, or exclude it."""
    return expected == sha256_dir(directory, exclude=(ADAPTER_META,)) or expected == sha256_dir(directory)


def check_shapes(directory: Path, llm: LLMClient) -> None:
    """Reject an adapter trained for another base model before peft half-injects it into ours."""
    inner = getattr(llm, "inner", llm)
    model = getattr(inner, "base_model", None)
    weights = directory / "adapter_model.safetensors"
    if model is None or not weights.is_file():
        return
    from safetensors import safe_open

    try:
        config = json.loads((directory / "adapter_config.json").read_text(encoding="utf-8"))
        with safe_open(str(weights), framework="pt") as f:
            shapes = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}  # noqa: SIM118
    except (OSError, ValueError) as exc:
        raise AdapterRejected("unreadable_adapter", f"{directory}: {exc}") from exc
    if config.get("peft_type", "LORA") != "LORA":
        raise AdapterRejected("incompatible", f"{directory}: only LoRA adapters are served")
    for key, shape in shapes.items():
        for part, dim in ((".lora_A.", 1), (".lora_B.", 0)):
            if part not in key:
                continue
            module_name = key.split(part)[0].removeprefix("base_model.model.")
            try:
                module = model.get_submodule(module_name)
            except AttributeError:
                raise AdapterRejected(
                    "incompatible", f"{directory}: the base model has no layer {module_name!r}"
                ) from None
            expected = getattr(module, "in_features" if dim == 1 else "out_features", None)
            if expected is not None and shape[dim] != expected:
                raise AdapterRejected(
                    "incompatible",
                    f"{directory}: {module_name} expects {expected} features, the adapter has {shape[dim]}",
                )
