"""What one generator process holds: profiles, the catalog, the LLM clients, the adapters, the personalizer.

The service and the batch command build the same :class:`GeneratorApp`; they differ only in how model
calls are made (a micro-batcher shared by concurrent requests, or direct batched calls) and in whether
Kafka topics are followed.
"""

from __future__ import annotations

import threading
from pathlib import Path

from gravity_core.adapters import find_adapters
from gravity_core.artifacts import ArtifactStore
from gravity_core.catalog import Catalog
from gravity_core.config import Settings
from gravity_core.embeddings import Embedder
from gravity_core.errors import ConfigError, Unavailable
from gravity_core.llm import LLMClient, llm_for_role
from gravity_core.logging import get_logger
from gravity_core.metrics import watch_queue
from gravity_core.profiles import ProfileStore
from gravity_core.skips import SkipLog
from gravity_generator.batching import MicroBatcher
from gravity_generator.completion import Completer, DirectCompleter
from gravity_generator.engine import Personalizer
from gravity_generator.lamp import LampRetriever
from gravity_generator.registry import AdapterRegistry, AdapterRejected
from gravity_generator.settings import GeneratorSettings

log = get_logger(__name__)


def load_config(settings: Settings) -> GeneratorSettings:
    return settings.section("generator", GeneratorSettings)


def check_paths(cfg: GeneratorSettings) -> None:
    """Fail before anything starts when a configured input does not exist."""
    if not cfg.resolved_meta_path().is_file():
        raise ConfigError(f"generator.meta_path: {cfg.resolved_meta_path()} does not exist")
    if cfg.profiles_path and not Path(cfg.profiles_path).expanduser().is_file():
        raise ConfigError(f"generator.profiles_path: {cfg.profiles_path} does not exist")
    if cfg.adapters_dir and not Path(cfg.adapters_dir).expanduser().is_dir():
        raise ConfigError(f"generator.adapters_dir: {cfg.adapters_dir} is not a directory")


class GeneratorApp:
    def __init__(
        self,
        settings: Settings,
        cfg: GeneratorSettings | None = None,
        *,
        micro_batch: bool,
        skips: SkipLog | None = None,
        profiles: ProfileStore | None = None,
    ) -> None:
        self.settings = settings
        self.cfg = cfg or load_config(settings)
        self.micro_batch = micro_batch
        self.skips = skips if skips is not None else SkipLog()
        self.profiles = profiles if profiles is not None else ProfileStore()
        self.catalog: Catalog | None = None
        self.engine: Personalizer | None = None
        self.registry: AdapterRegistry | None = None
        self._completers: list[Completer] = []
        self._llms: list[LLMClient] = []
        self.loaded = threading.Event()

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        """Open the catalog, read profiles, load the models and the adapters in ``adapters_dir``."""
        cfg = self.cfg
        check_paths(cfg)
        catalog_skips = SkipLog()
        self.catalog = Catalog.open(cfg.resolved_meta_path(), catalog_skips)
        if self.skips.on_skip is None:
            self.skips.extend(catalog_skips.to_dict())
        elif catalog_skips.total:
            # The catalog index remembers its bad lines; re-sending them to the DLQ on every start is noise.
            log.warning("catalog_lines_skipped", summary=catalog_skips.summary_lines(limit=5))
        if cfg.profiles_path:
            loaded = ProfileStore.from_jsonl(cfg.profiles_path, self.skips)
            for profile in loaded:
                self.profiles.put(profile)
        writer_llm = llm_for_role(self.settings, "writer")
        author_llm = llm_for_role(self.settings, "author")
        self._llms = [writer_llm, author_llm]
        writer = self._completer(writer_llm, "writer")
        # Roles configured alike share one in-process model: one batcher then lets TriAgent's edit calls
        # join the writer's batches instead of queueing for the same model separately.
        shared = getattr(author_llm, "inner", author_llm) is getattr(writer_llm, "inner", writer_llm)
        author = writer if shared else self._completer(author_llm, "author")
        self.registry = AdapterRegistry(writer_llm, ArtifactStore.from_settings(self.settings))
        for method, model_name in cfg.served_adapters.items():
            if writer_llm.info.backend != "openai":
                raise ConfigError(
                    "generator.served_adapters: only the openai writer backend serves named adapters"
                )
            self.registry.register_external(method, model_name)
        lamp = LampRetriever(
            self.catalog,
            lambda: Embedder(self.settings.embedding),
            k=cfg.lamp_k,
            cache_users=cfg.lamp_cache_users,
            review_chars=cfg.lamp_review_chars,
        )
        self.engine = Personalizer(writer, author, self.registry, lamp, cfg.context_window)
        if cfg.adapters_dir:
            self.install_dir(cfg.adapters_dir)
        self.loaded.set()
        log.info(
            "generator_loaded",
            profiles=len(self.profiles),
            books=len(self.catalog),
            writer=writer_llm.info.name,
            backend=writer_llm.info.backend,
            adapters=sorted(self.registry.current()),
        )

    def _completer(self, llm: LLMClient, role: str) -> Completer:
        endpoint = self.settings.llm.role(role)
        completer: Completer
        if endpoint.backend == "embedded" and self.micro_batch:
            completer = MicroBatcher(llm, self.cfg.batch_window_ms / 1000.0, self.cfg.max_batch, role)
            watch_queue("generator", f"batcher-{role}", completer.depth)
        else:
            concurrency = endpoint.concurrency if endpoint.backend == "openai" else 1
            completer = DirectCompleter(llm, concurrency)
        self._completers.append(completer)
        return completer

    def install_dir(self, directory: str | Path) -> list[str]:
        """Serve the newest adapter per method found under ``directory``; bad ones are recorded as skips."""
        assert self.registry is not None
        installed = []
        for method, (path, ref) in sorted(
            find_adapters(Path(directory).expanduser(), skips=self.skips).items()
        ):
            try:
                adapter = self.registry.install(ref, path)
            except AdapterRejected as exc:
                self.skips.add(exc.reason, exc.detail, str(path), record_id=ref.adapter_id or method)
                continue
            if adapter is not None:
                installed.append(adapter.name)
        return installed

    def require_engine(self) -> Personalizer:
        if self.engine is None or not self.loaded.is_set():
            raise Unavailable("the generator is starting: the model and adapters are still loading")
        return self.engine

    def close(self) -> None:
        for completer in self._completers:
            completer.close()
        if self.registry is not None:
            self.registry.close()
        for llm in self._llms:
            llm.close()
