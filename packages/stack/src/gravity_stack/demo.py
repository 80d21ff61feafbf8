"""`gravity demo`: the whole system end to end on the embedded defaults.

Starts the embedded broker and the five services as separate processes (`gravity serve NAME`), streams the
sample into the profiler over gRPC, lets profiles flow to pairgen and shards to the trainer over Kafka,
waits for the gravity, user-sft and pref-align adapters to be live in the generator, asks the Generator
for every method on the evaluation targets, has the Judge evaluate them, writes the report, and stops
every process it started.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from gravity.v1 import (
    generation_pb2,
    generation_pb2_grpc,
    judge_pb2,
    judge_pb2_grpc,
    pairs_pb2,
    pairs_pb2_grpc,
    profile_pb2,
    profile_pb2_grpc,
    training_pb2,
    training_pb2_grpc,
)
from gravity_core.artifacts import ArtifactStore
from gravity_core.broker import EmbeddedBroker, free_port
from gravity_core.catalog import Catalog
from gravity_core.config import load_settings
from gravity_core.errors import GravityError, Unavailable
from gravity_core.grpc.client import call_with_retry, make_channel
from gravity_core.options import deep_merge, nest_dotted
from gravity_core.proto_io import write_jsonl
from gravity_core.registry import service_names
from gravity_core.sample import sample_dir
from gravity_core.skips import SkipLog
from gravity_stack import tomlwrite
from gravity_stack.ingest import choose_users, ingest, ingest_requests
from gravity_stack.processes import ServiceProcess, Supervisor

REQUIRED_ADAPTERS = ("gravity", "user-sft", "pref-align")


@dataclass
class DemoOptions:
    out: Path
    reviews: Path | None = None
    meta: Path | None = None
    demographics: Path | None = None
    users: int | None = 8
    min_reviews: int = 20
    books_per_user: int = 1
    train_steps: int = 8
    max_new_tokens: int = 160
    judge_orders: int = 2
    pref_align_books: int = 2
    items_per_trait: int = 12
    timeout_s: float = 3600.0
    extra: dict[str, Any] = field(default_factory=dict)

    def files(self) -> tuple[Path, Path, Path | None]:
        src = sample_dir()
        reviews = self.reviews or src / "Books.jsonl"
        meta = self.meta or src / "meta_Books.jsonl"
        demo = (
            self.demographics
            if self.demographics is not None
            else (src / "demographics.csv" if self.reviews is None else None)
        )
        return reviews, meta, demo


def demo_config(opts: DemoOptions, bootstrap: str, ports: dict[str, int], meta: Path) -> dict[str, Any]:
    """The configuration every demo service runs with: embedded models, one broker, demo-sized knobs."""
    out = opts.out.resolve()
    train_overrides = {
        "max_steps": opts.train_steps,
        "evaluations": 2,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "max_length": 320,
        "max_eval_rows": 8,
    }
    config: dict[str, Any] = {
        "llm": {"defaults": {"backend": "embedded", "model": "smollm2-135m", "max_batch_size": 8}},
        "kafka": {
            "bootstrap_servers": bootstrap,
            "partitions": 1,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000,
        },
        "grpc": {"host": "127.0.0.1", "ports": ports},
        "artifacts": {"root": str(out / "artifacts")},
        "logging": {"level": "INFO", "format": "json"},
        # pairgen holds these books out of training and records them; generation uses exactly them
        "evaluation": {"books_per_user": opts.books_per_user},
        "profiler": {"min_reviews": opts.min_reviews, "summary_max_tokens": 96, "batch_users": 8},
        "pairgen": {
            "meta": str(meta),
            "datasets": list(REQUIRED_ADAPTERS),
            "items_per_trait": opts.items_per_trait,
            "pref_align_min_books": opts.pref_align_books,
            "pref_align_max_books": opts.pref_align_books,
            "pref_align_max_tokens": 128,
        },
        "trainer": {
            "recipe_for_dataset": {
                "gravity": "gravity-dpo",
                "user-sft": "user-sft",
                "pref-align": "pref-align",
            },
            "overrides": {r: dict(train_overrides) for r in ("gravity-dpo", "user-sft", "pref-align")},
        },
        "generator": {
            "meta_path": str(meta),
            "max_new_tokens": opts.max_new_tokens,
            "max_batch": 8,
            "batch_window_ms": 25.0,
        },
        "judge": {"orders": opts.judge_orders, "follow_profiles": True},
    }
    return deep_merge(config, nest_dotted(opts.extra))


class Progress:
    """Stage lines on stdout: '[3/7] profiling 8 readers ... 5/8'."""

    def __init__(self, echo: Callable[[str], None], total: int) -> None:
        self.echo = echo
        self.total = total
        self.stage = 0
        self.started = time.monotonic()
        self._last = ""

    @contextmanager
    def step(self, title: str) -> Iterator[Callable[[str], None]]:
        self.stage += 1
        t0 = time.monotonic()
        self.echo(f"[{self.stage}/{self.total}] {title}")

        def note(message: str) -> None:
            if message != self._last:
                self.echo(f"      {message}")
                self._last = message

        yield note
        self.echo(
            f"      done in {time.monotonic() - t0:.0f}s (total {time.monotonic() - self.started:.0f}s)"
        )


def _wait(
    check: Callable[[], tuple[bool, str]],
    note: Callable[[str], None],
    timeout_s: float,
    what: str,
    watch: Callable[[], None],
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        watch()
        done, message = check()
        note(message)
        if done:
            return
        time.sleep(2.0)
    raise Unavailable(f"timed out after {timeout_s:.0f}s waiting for {what}")


def run_demo(opts: DemoOptions, echo: Callable[[str], None]) -> dict[str, Any]:
    out = opts.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    reviews, meta, demographics = opts.files()
    progress = Progress(echo, 7)
    started = time.monotonic()
    with progress.step("starting the embedded Kafka-compatible broker") as note:
        broker = EmbeddedBroker(log_path=out / "logs" / "broker.log").start()
        note(f"broker at {broker.bootstrap}")
    try:
        with Supervisor() as supervisor:
            return _run(opts, out, reviews, meta, demographics, broker, supervisor, progress, echo, started)
    finally:
        broker.stop()


def _run(
    opts: DemoOptions,
    out: Path,
    reviews: Path,
    meta: Path,
    demographics: Path | None,
    broker: EmbeddedBroker,
    supervisor: Supervisor,
    progress: Progress,
    echo: Callable[[str], None],
    started: float,
) -> dict[str, Any]:
    ports = {name: free_port() for name in service_names()}
    config_path = out / "config.toml"
    config_path.write_text(
        tomlwrite.dumps(demo_config(opts, broker.bootstrap, ports, meta)), encoding="utf-8"
    )
    settings = load_settings(config_path, env={})
    channels = {name: make_channel(settings.grpc.target(name), settings.grpc) for name in service_names()}

    def watch() -> None:
        for process in supervisor:
            if not process.alive():
                raise Unavailable(
                    f"{process.name} exited unexpectedly; last log lines:\n{process.log_tail()}"
                )

    with progress.step(f"starting services ({', '.join(service_names())})") as note:
        for name in service_names():
            supervisor.add(ServiceProcess.serve(name, config_path, out / "logs", settings.grpc)).start()
        for process in supervisor:
            process.wait_serving(timeout_s=600, grpc_settings=settings.grpc)
            note(f"{process.name} SERVING on {process.target}")

    with progress.step("streaming the reviews into the profiler (gRPC IngestRecords)") as note:
        users = choose_users(reviews, demographics, opts.users, opts.min_reviews) if demographics else None
        wanted = set(users) if users else None
        result = ingest(
            channels["profiler"],
            ingest_requests(reviews, meta, demographics, wanted, cohort_id=f"demo-{int(time.time())}"),
        )
        accepted = list(result.accepted_users)
        note(
            f"cohort {result.cohort_id}: {len(accepted)} readers queued, {result.lines_read} lines read, "
            f"{result.lines_skipped} skipped {dict(result.skipped_by_reason) or ''}".rstrip()
        )
        if not accepted:
            raise GravityError("no reader met the review threshold; nothing to personalize")

    profiler = profile_pb2_grpc.ProfilerServiceStub(channels["profiler"])
    profiles: dict[str, profile_pb2.UserProfile] = {}
    with progress.step(
        f"profiling {len(accepted)} readers (demographics, interests, 150 values, Big Five)"
    ) as note:

        def profiles_ready() -> tuple[bool, str]:
            for user in accepted:
                if user in profiles:
                    continue
                try:
                    profiles[user] = profiler.GetProfile(
                        profile_pb2.GetProfileRequest(user_id=user), timeout=10
                    ).profile
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.NOT_FOUND:
                        raise
            return len(profiles) == len(accepted), f"profiles published: {len(profiles)}/{len(accepted)}"

        _wait(profiles_ready, note, opts.timeout_s, "profiles", watch)
        note(
            f"unreadable: {sum(p.evidence.unreadable_stances for p in profiles.values())} stances, "
            f"{sum(p.evidence.unreadable_items for p in profiles.values())} items across {len(profiles)} readers"
        )

    with progress.step(
        "pairs -> training -> adapters (Kafka: profiles -> pairgen -> shards -> trainer -> adapters)"
    ) as note:
        pairgen = pairs_pb2_grpc.PairGenServiceStub(channels["pairgen"])
        held_out: dict[str, list[str]] = {}
        trainer = training_pb2_grpc.TrainerServiceStub(channels["trainer"])
        generator = generation_pb2_grpc.GeneratorServiceStub(channels["generator"])

        def adapters_live() -> tuple[bool, str]:
            parts = []
            try:
                manifest = json.loads(
                    pairgen.GetManifest(
                        pairs_pb2.GetManifestRequest(dataset_id=result.cohort_id), timeout=10
                    ).manifest_json
                )
                held_out.update(manifest.get("held_out", {}))
                rows = {
                    name: sum(s["rows"] for s in d["shards"])
                    for name, d in manifest.get("datasets", {}).items()
                }
                users_done = max((len(d["shards"]) for d in manifest.get("datasets", {}).values()), default=0)
                parts.append(f"pairs for {users_done}/{len(accepted)} readers {rows}")
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                parts.append("pairs: waiting")
            trained = trainer.ListAdapters(training_pb2.ListAdaptersRequest(), timeout=10).adapters
            parts.append(f"adapters trained: {sorted(a.method for a in trained) or 'none yet'}")
            methods = generator.ListMethods(generation_pb2.ListMethodsRequest(), timeout=10).methods
            live = {m.name for m in methods if m.available and m.requires_adapter}
            parts.append(f"live in generator: {sorted(live) or 'none yet'}")
            return all(a in live for a in REQUIRED_ADAPTERS), "; ".join(parts)

        _wait(adapters_live, note, opts.timeout_s, f"the {', '.join(REQUIRED_ADAPTERS)} adapters", watch)

    generations_path = out / "generations.jsonl"
    with progress.step("personalizing descriptions for every method (gRPC Generator)") as note:
        generations = _generate(generator, profiles, held_out, meta, opts, note)
        write_jsonl(generations, generations_path)
        note(f"{len(generations)} rows -> {generations_path}")

    with progress.step(
        "judging (gRPC Judge: top-1 win rate, preference gain, interestingness, similarity)"
    ) as note:
        judge = judge_pb2_grpc.JudgeServiceStub(channels["judge"])
        report_name = f"demo-{result.cohort_id}".replace("/", "-")
        final = None
        for event in judge.Evaluate(
            judge_pb2.EvaluateRequest(generations=generations, report_name=report_name),
            timeout=opts.timeout_s,
        ):
            if event.HasField("progress"):
                p = event.progress
                note(f"{p.stage}: {p.done}/{p.total}")
            else:
                final = event.result
        if final is None:
            raise Unavailable("the judge ended the evaluation without a result")
        report_dir = ArtifactStore(settings.artifacts.path()).resolve(final.report_uri)
        for name in ("report.json", "report.md", "report.html", "judgments.jsonl"):
            shutil.copyfile(
                report_dir / name if report_dir.is_dir() else report_dir.parent / name, out / name
            )
        note(f"unusable judgments: {final.unusable_judgments}")

    for channel in channels.values():
        channel.close()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    report["_demo"] = {
        "seconds": round(time.monotonic() - started, 1),
        "readers": len(accepted),
        "out": str(out),
    }
    return report


def _generate(
    generator: Any,
    profiles: dict[str, profile_pb2.UserProfile],
    held_out: dict[str, list[str]],
    meta: Path,
    opts: DemoOptions,
    note: Callable[[str], None],
) -> list[Any]:
    """Every method on each reader's evaluation books: the ones the cohort's manifest holds out of training."""
    from gravity.v1 import judge_pb2 as jpb

    catalog = Catalog.open(meta, SkipLog())
    methods = [
        m.name
        for m in generator.ListMethods(generation_pb2.ListMethodsRequest(), timeout=10).methods
        if m.available
    ]
    books = catalog.get_many(a for user in profiles for a in held_out.get(user, [])[: opts.books_per_user])
    targets = [
        (user, books[asin])
        for user in sorted(profiles)
        for asin in held_out.get(user, [])[: opts.books_per_user]
        if asin in books
    ]
    without = sorted(set(profiles) - {user for user, _ in targets})
    if without:
        note(f"{len(without)} reader(s) have no evaluation book in the manifest: {', '.join(without)}")
    # Method-major order: requests in flight together share a method, so the generator's micro-batches
    # run one adapter (or none) at a time instead of a slower mixed-adapter batch.
    jobs = [(user, book, method) for method in methods for user, book in targets]
    rows: list[Any] = []
    done = 0

    def call(job: tuple[str, Any, str]) -> Any:
        user, book, method = job
        request = generation_pb2.PersonalizeRequest(user_id=user, parent_asin=book.parent_asin, method=method)
        resp = call_with_retry(
            lambda remaining: generator.Personalize(request, timeout=remaining, wait_for_ready=True), 1800
        )
        return jpb.Generation(
            user_id=user,
            parent_asin=book.parent_asin,
            method=method,
            text=resp.text,
            book_title=book.title,
            genre=book.genre,
            genre_group=book.genre_group,
            model=resp.model,
            adapter=resp.adapter,
            prompt_tokens=resp.prompt_tokens,
            completion_tokens=resp.completion_tokens,
            latency_ms=resp.latency_ms,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        for row in pool.map(call, jobs):
            rows.append(row)
            done += 1
            if done % 5 == 0 or done == len(jobs):
                note(f"descriptions {done}/{len(jobs)} ({len(methods)} methods)")
    return rows
