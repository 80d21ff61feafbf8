"""Where the study's descriptions come from, behind one small interface (paper §4.1: "We then train a
customized model for these users and generate personalized book descriptions for each participant").

* :class:`ServicesPipeline` (production): the cohort's profiles are published to ``gravity.profiles.v1`` like
  any other profile; pairgen builds the cohort's pairs and the trainer trains its adapter, which arrives on
  ``gravity.adapters.v1``; once the generator service serves that adapter, descriptions are asked over gRPC
  (``GeneratorClient``) with the adapter pinned by name.
* :class:`EmbeddedPipeline` (one machine, the demo): the same library code in this process — pairgen's batch
  build, the trainer's ``train`` with few steps, the generator's batch generation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gravity.v1 import profile_pb2, training_pb2
from gravity_core import names
from gravity_core.amazon import BookRecord
from gravity_core.bus import Bus, ConsumerLoop
from gravity_core.config import Settings
from gravity_core.errors import GravityError, Unavailable
from gravity_core.logging import get_logger
from gravity_study.settings import StudySettings

log = get_logger(__name__)
GRAVITY = names.GRAVITY
Say = Callable[[str], None]


@dataclass
class Cohort:
    cohort_id: str
    profiles: list[profile_pb2.UserProfile]
    work_dir: Path


@dataclass
class Request:
    profile: profile_pb2.UserProfile
    book: BookRecord
    method: str


@dataclass
class Generated:
    request: Request
    text: str = ""
    model: str = ""
    adapter: str = ""
    error: str = ""


@dataclass
class Readiness:
    ready: bool
    message: str
    adapter: dict[str, Any] = field(default_factory=dict)


class DescriptionPipeline(Protocol):
    kind: str

    def train(self, cohort: Cohort, say: Say) -> dict[str, Any]:
        """Start (services) or run (embedded) pairs + training for the cohort; returns the adapter when known."""
        ...

    def readiness(self, cohort_id: str, adapter: dict[str, Any]) -> Readiness:
        """Whether the cohort's adapter can serve descriptions now."""
        ...

    def generate(self, requests: Sequence[Request], adapter: dict[str, Any], say: Say) -> list[Generated]: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------- embedded
class EmbeddedPipeline:
    kind = "embedded"

    def __init__(self, settings: Settings, cfg: StudySettings) -> None:
        self.settings = settings
        self.cfg = cfg
        self._app: Any = None
        self._lock = threading.Lock()

    def train(self, cohort: Cohort, say: Say) -> dict[str, Any]:
        from gravity_core.proto_io import write_jsonl
        from gravity_pairgen.batch import build_dataset
        from gravity_pairgen.settings import PairGenSettings
        from gravity_trainer.progress import Reporter
        from gravity_trainer.run import TrainRequest, train

        work = cohort.work_dir
        work.mkdir(parents=True, exist_ok=True)
        profiles_path = work / "profiles.jsonl"
        write_jsonl(cohort.profiles, profiles_path)
        base = self.settings.section("pairgen", PairGenSettings)
        pair_cfg = PairGenSettings.model_validate(
            {
                **base.model_dump(),
                "meta": str(self.cfg.resolved_meta_path()),
                "datasets": [GRAVITY],
                "ablations": [],
                "items_per_trait": self.cfg.embedded.items_per_trait,
            }
        )
        say(f"building preference pairs for {len(cohort.profiles)} participants (pairgen)")
        report = build_dataset(
            self.settings, pair_cfg, profiles_path, work / "pairs", cohort_id=cohort.cohort_id
        )
        rows = report.rows(GRAVITY)
        skipped = report.skips.total
        if not rows:
            raise GravityError(
                f"pairgen built no GRAVITY pairs for cohort {cohort.cohort_id} ({skipped} profile(s) skipped: "
                + "; ".join(report.skips.summary_lines(limit=3))
                + ")"
            )
        say(
            f"{rows} GRAVITY pairs ({skipped} skipped); training {names.GRAVITY_DPO_RECIPE} for {self.cfg.embedded.max_steps} steps"
        )
        e = self.cfg.embedded
        outcome = train(
            TrainRequest(
                pairs=work / "pairs",
                recipe=names.GRAVITY_DPO_RECIPE,
                out=work / "adapters" / GRAVITY,
                base_model=self.settings.llm.role("writer").model,
                settings_overrides={
                    "max_steps": e.max_steps,
                    "per_device_train_batch_size": e.batch_size,
                    "gradient_accumulation_steps": 1,
                    "max_length": e.max_length,
                    "max_eval_rows": 8,
                    "evaluations": 1,
                    "save_total_limit": 1,
                    "lora": {"r": e.lora_r, "alpha": 2 * e.lora_r},
                },
                adapter_id=f"{cohort.cohort_id}-gravity",
            ),
            Reporter([lambda event: say(f"training: {event.line()}")]),
        )
        ref = outcome.ref
        say(f"adapter {ref.adapter_id}: {ref.steps} steps on {ref.train_rows} pairs")
        return _adapter_dict(ref, str(outcome.out))

    def readiness(self, cohort_id: str, adapter: dict[str, Any]) -> Readiness:
        path = adapter.get("path", "")
        if adapter.get("dataset_id", "").startswith(f"{cohort_id}/") and path and Path(path).is_dir():
            return Readiness(
                True, f"adapter {adapter['adapter_id']} trained ({adapter.get('steps', 0)} steps)", adapter
            )
        return Readiness(False, "the cohort's adapter is not trained yet")

    def _generator(self) -> Any:
        from gravity_generator.app import GeneratorApp
        from gravity_generator.settings import GeneratorSettings

        with self._lock:
            if self._app is None:
                base = self.settings.section("generator", GeneratorSettings)
                cfg = GeneratorSettings.model_validate(
                    {
                        **base.model_dump(),
                        "meta_path": str(self.cfg.resolved_meta_path()),
                        "max_new_tokens": self.cfg.max_new_tokens,
                        "follow_topics": False,
                        "profiles_path": "",
                        "adapters_dir": "",
                    }
                )
                app = GeneratorApp(self.settings, cfg, micro_batch=False)
                app.load()
                self._app = app
            return self._app

    def generate(self, requests: Sequence[Request], adapter: dict[str, Any], say: Say) -> list[Generated]:
        from gravity_core.adapters import read_adapter_ref
        from gravity_core.llm import GenerationParams
        from gravity_generator.engine import Job
        from gravity_generator.methods import BookInput

        app = self._generator()
        if any(r.method == GRAVITY for r in requests):
            path = Path(adapter["path"])
            ref = read_adapter_ref(path)
            current = app.registry.current().get(GRAVITY)
            if current is None or current.ref.sha256 != ref.sha256:  # a new round's adapter replaces the old
                app.registry.install(ref, path)
                current = app.registry.current()[GRAVITY]
            say(f"generator serving adapter {current.name}")
        params = GenerationParams(max_tokens=self.cfg.max_new_tokens, temperature=0.0)
        out: list[Generated] = []
        # Method-major chunks: one adapter (or none) per batched call.
        by_method: dict[str, list[Request]] = {}
        for r in requests:
            by_method.setdefault(r.method, []).append(r)
        done = 0
        for method, group in by_method.items():
            for start in range(0, len(group), 8):
                chunk = group[start : start + 8]
                jobs = [
                    Job(
                        r.profile,
                        BookInput(
                            r.book.parent_asin,
                            r.book.title or r.book.parent_asin,
                            r.book.description,
                            r.book.genre,
                            r.book.genre_group,
                        ),
                        method,
                        params,
                    )
                    for r in chunk
                ]
                for r, result in zip(chunk, app.require_engine().run(jobs), strict=True):
                    if isinstance(result, Exception):
                        out.append(Generated(r, error=f"{type(result).__name__}: {result}"))
                    else:
                        out.append(Generated(r, result.text, result.model, result.adapter))
                done += len(chunk)
                say(f"descriptions {done}/{len(requests)}")
        return out

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


# ---------------------------------------------------------------------------------------------- services
class ServicesPipeline:
    kind = "services"

    def __init__(self, settings: Settings, cfg: StudySettings) -> None:
        self.settings = settings
        self.cfg = cfg
        self.bus = Bus(settings.kafka, "study")
        self._adapters: dict[str, training_pb2.AdapterRef] = {}
        self._lock = threading.Lock()
        self._follower: ConsumerLoop[training_pb2.AdapterRef] | None = None

    # The trainer publishes each adapter on gravity.adapters.v1; the app replays the whole topic in no
    # consumer group on every start (as each generator replica does), so an adapter published while the app
    # was down is still seen and no group per boot piles up on the broker.
    def _on_adapter(self, ref: training_pb2.AdapterRef, _record: Any) -> None:
        if names.method_name(ref, required=False) != GRAVITY or "/" not in ref.dataset_id:
            return
        cohort = ref.dataset_id.rsplit("/", 1)[0]
        with self._lock:
            known = self._adapters.get(cohort)
            if known is None or ref.created_at_ms >= known.created_at_ms:
                self._adapters[cohort] = ref

    def start(self) -> ServicesPipeline:
        if self._follower is None:
            self._follower = ConsumerLoop(
                self.bus,
                self.bus.topics.adapters,
                None,
                training_pb2.AdapterRef,
                self._on_adapter,
                name="study-adapters",
            ).start()
        return self

    def train(self, cohort: Cohort, say: Say) -> dict[str, Any]:
        self.start()
        if not self.bus.ping():
            raise Unavailable(f"Kafka at {self.settings.kafka.bootstrap_servers} does not answer")
        self.bus.ensure_topics()
        topic = self.bus.topics.profiles
        for profile in cohort.profiles:
            self.bus.publish(topic, profile.user_id, profile)
        say(
            f"published {len(cohort.profiles)} profile(s) of cohort {cohort.cohort_id} to {topic}; "
            "pairgen and the trainer take it from there"
        )
        return {}

    def readiness(self, cohort_id: str, adapter: dict[str, Any]) -> Readiness:
        from gravity_core.clients import GeneratorCallError, GeneratorClient

        self.start()
        with self._lock:
            ref = self._adapters.get(cohort_id)
        if ref is None:
            return Readiness(
                False,
                f"waiting for the trainer's adapter for {cohort_id}/{GRAVITY} on {self.bus.topics.adapters}",
            )
        target = self.settings.grpc.target("generator")
        try:
            with GeneratorClient(target, self.settings.grpc, timeout_s=10, wait_for_ready=False) as client:
                methods = {names.method_name(m): m for m in client.list_methods(timeout_s=10)}
        except GeneratorCallError as exc:
            return Readiness(
                False,
                f"adapter {ref.adapter_id} trained; the generator at {target} is not answering "
                f"({exc.details})",
            )
        served = methods.get(GRAVITY)
        if served is None or not served.available or not served.adapter.startswith(ref.adapter_id):
            now = served.adapter if served is not None and served.adapter else "none"
            return Readiness(False, f"adapter {ref.adapter_id} trained; the generator serves {now} so far")
        info = _adapter_dict(ref, ref.uri)
        info["name"] = served.adapter
        return Readiness(True, f"the generator serves {served.adapter}", info)

    def generate(self, requests: Sequence[Request], adapter: dict[str, Any], say: Say) -> list[Generated]:
        from gravity_core.clients import GeneratorCallError, GeneratorClient, Sampling

        target = self.settings.grpc.target("generator")
        sampling = Sampling(max_new_tokens=self.cfg.max_new_tokens)
        done = 0
        lock = threading.Lock()

        with GeneratorClient(target, self.settings.grpc, timeout_s=1800) as client:

            def one(r: Request) -> Generated:
                nonlocal done
                try:
                    reply = client.personalize(
                        method=r.method,
                        profile=r.profile,
                        title=r.book.title or r.book.parent_asin,
                        description=r.book.description,
                        genre=r.book.genre,
                        sampling=sampling,
                        adapter=adapter.get("name", "") if r.method == GRAVITY else "",
                    )
                    out = Generated(r, reply.text, reply.model, reply.adapter)
                except GeneratorCallError as exc:
                    out = Generated(r, error=str(exc))
                with lock:
                    done += 1
                    if done % 5 == 0 or done == len(requests):
                        say(f"descriptions {done}/{len(requests)}")
                return out

            with ThreadPoolExecutor(max_workers=8) as pool:
                return list(pool.map(one, requests))

    def close(self) -> None:
        if self._follower is not None:
            self._follower.stop(5)
        self.bus.close()


def _adapter_dict(ref: training_pb2.AdapterRef, path: str) -> dict[str, Any]:
    return {
        "adapter_id": ref.adapter_id,
        "name": ref.adapter_id,
        "dataset_id": ref.dataset_id,
        "path": path,
        "steps": int(ref.steps),
        "train_rows": int(ref.train_rows),
        "base_model": ref.base_model,
        "at_ms": int(ref.created_at_ms or time.time() * 1000),
    }


def make_pipeline(settings: Settings, cfg: StudySettings) -> DescriptionPipeline:
    if cfg.pipeline == "services":
        return ServicesPipeline(settings, cfg)
    return EmbeddedPipeline(settings, cfg)
