"""`gravity demo`: the whole system end to end on the embedded defaults.

Starts the embedded broker and the five services as separate processes (`gravity serve NAME`), streams the
sample into the profiler over gRPC, lets profiles flow to pairgen and shards to the trainer over Kafka,
waits for the gravity, user-sft and pref-align adapters to be live in the generator, asks the Generator
for every method on the evaluation targets, has the Judge evaluate them, writes the report, and stops
every process it started.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gravity.v1 import judge_pb2, profile_pb2
from gravity_core import names
from gravity_core.artifacts import ArtifactStore
from gravity_core.broker import EmbeddedBroker, free_port
from gravity_core.catalog import Catalog
from gravity_core.clients import GeneratorClient, JudgeClient, PairGenClient, ProfilerClient, TrainerClient
from gravity_core.config import check_settings, load_settings
from gravity_core.datasets import DatasetManifest
from gravity_core.errors import GravityError, Unavailable
from gravity_core.llm.models import smollm2_converted
from gravity_core.options import deep_merge, nest_dotted
from gravity_core.proto_io import write_jsonl
from gravity_core.registry import service_names
from gravity_core.skips import SkipLog
from gravity_stack import tomlwrite
from gravity_stack.demo_options import DemoOptions
from gravity_stack.ingest import choose_users, ingest_requests
from gravity_stack.processes import ServiceProcess, Supervisor
from gravity_stack.timing import MODEL_CONVERSION_S, StageClock, slot_schedule

REQUIRED_ADAPTERS = (names.GRAVITY, names.USER_SFT, names.PREF_ALIGN)
# Seconds of each part of pairs+training in the reference run (timing.REFERENCE_S's fresh clone): the cohort's
# pairs, then each adapter in the trainer's queue order, as its share of the machine (a run's wall time
# divided among the runs training beside it, from the trainer's log). Progress is where the parts reached
# end on the trainer's schedule (timing.slot_schedule): with two runs at a time, UserSFT ends about 3/4 of
# the way, not 2/5 as its share alone would say, and the estimate doubled when it did.
TRAINING_PARTS_S = {"pairs": 164.5, names.GRAVITY: 206.5, names.USER_SFT: 200.0, names.PREF_ALIGN: 183.5}
# The demo's schedule: the profiler, pairgen and the judge each compute alone (profiles are published as one
# batch, the trainer waits for the whole cohort, judging waits for every description), so each gets every core:
# the profiler as ``profiler_replicas`` processes with a share each (two processes of one thread were 5-17%
# faster than one of two threads in alternated runs: packages/stack/README.md). The trainer and the generator
# compute at the same time (prompt-only methods while the adapters train), but the generator only for part of
# it: it keeps half the cores, and the trainer takes every core while sleeping at its barriers (thread_env's
# ``yielding``), so it trains on both once the generator has caught up; its runs train ``train_concurrency``
# at a time, so one run's serial stretches (optimizer steps, evaluation, saving) leave no core idle.
CO_LOCATED = {"generator": 2}
YIELDING = frozenset({"trainer"})
# Started once the profiles are published: the generator's first descriptions wait for the cohort's held-out
# books and the judge for every description, and their imports and model loads (about 30 s of one core each)
# would otherwise share the cores with the profiler, the stage everything else waits for.
DEFERRED = ("generator", "judge")
# Requests in one running batch of the generator (and of pairgen's PrefAlign descriptions); the demo sends
# every description it can at once so the prompt-only methods of all readers decode together.
GENERATION_BATCH = 32


def demo_config(opts: DemoOptions, bootstrap: str, ports: dict[str, int], meta: Path) -> dict[str, Any]:
    """The configuration every demo service runs with (embedded models, one broker, demo-sized knobs), built
    from each package's typed settings so a wrong key or value fails here, not in a child process."""
    from gravity_core.config import (
        ArtifactSettings,
        CacheSettings,
        EvaluationSettings,
        GrpcSettings,
        KafkaSettings,
        LLMEndpoint,
        LLMSettings,
        LoggingSettings,
    )
    from gravity_generator.settings import GeneratorSettings
    from gravity_judge.settings import JudgeSettings
    from gravity_pairgen.settings import PairGenSettings
    from gravity_profiler.settings import ProfilerSettings
    from gravity_trainer.settings import TrainerSettings

    out = opts.out.resolve()
    scoring = LLMEndpoint(backend="embedded", model="smollm2-135m", max_batch_size=8, prefix_cache_mb=2048)
    generation = scoring.model_copy(update={"max_batch_size": GENERATION_BATCH})
    train_overrides = {
        "max_steps": opts.train_steps,
        "evaluations": 2,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "max_length": 320,
        "max_eval_rows": 8,
    }
    sections: dict[str, Any] = {
        # The profiler keeps each reader's encoded reviews from scoring to their summary: 8 readers' chunks
        # (about 46 KB per token on SmolLM2-135M) do not fit the default 256 MB.
        "llm": LLMSettings(
            defaults=scoring,
            # Generation (descriptions, TriAgent's edits, PrefAlign's pairs) in running batches of up to 32:
            # a decode step reads every weight whatever the batch, so on 2 cores 32 rows give 1.6x the
            # tokens/s of 8 (measured: 85 -> 138 tok/s). Writer and author alike share one model.
            writer=generation,
            author=generation,
            # The judge computes alone at the end: in one process of two threads it kept the cores ~70% busy;
            # two worker processes of one thread, each judging its own units, finished the demo's 8 units in
            # 223 s against 345 s (packages/stack/README.md). The slot priors are still estimated over all.
            judge=scoring.model_copy(update={"processes": opts.judge_processes}),
        ),
        "kafka": KafkaSettings(
            bootstrap_servers=bootstrap, partitions=1, session_timeout_ms=6000, heartbeat_interval_ms=1000
        ),
        "grpc": GrpcSettings(host="127.0.0.1", ports=ports),
        "artifacts": ArtifactSettings(root=str(out / "artifacts")),
        # A response cache of the run's own: the shared one would answer a repeated demo's profiling, prompt-only
        # descriptions and ratings from earlier runs, and the time it prints would not be a first run's.
        # Re-running into the same --out reuses it.
        "cache": CacheSettings(path=str(out / "llm-cache.sqlite")),
        "logging": LoggingSettings(level="INFO", format="json"),
        # pairgen holds these books out of training and records them; generation uses exactly them
        "evaluation": EvaluationSettings(books_per_user=opts.books_per_user),
        # each replica claims its share of the readers from the shared queue
        "profiler": ProfilerSettings(
            min_reviews=opts.min_reviews,
            summary_max_tokens=96,
            batch_users=math.ceil((opts.readers or 16) / opts.profiler_replicas),
        ),
        "pairgen": PairGenSettings(
            meta=str(meta),
            datasets=list(REQUIRED_ADAPTERS),
            items_per_trait=opts.items_per_trait,
            pref_align_min_books=opts.pref_align_books,
            pref_align_max_books=opts.pref_align_books,
            pref_align_max_tokens=128,
        ),
        "trainer": TrainerSettings(
            recipe_for_dataset={d: names.RECIPE_FOR_DATASET[d] for d in REQUIRED_ADAPTERS},
            overrides={names.RECIPE_FOR_DATASET[d]: dict(train_overrides) for d in REQUIRED_ADAPTERS},
            # the first run is queued about a minute in: its imports are done by then
            warm_on_start=True,
            # the three runs are queued together; one run alone kept ~1.3-1.5 of the 2 cores busy once the
            # generator had caught up (packages/stack/README.md), two side by side fill them
            concurrent_runs=opts.train_concurrency,
        ),
        # http_port 0: any free port (logged as http_started), so parallel stacks never collide on 8000
        "generator": GeneratorSettings(
            meta_path=str(meta),
            max_new_tokens=opts.max_new_tokens,
            max_batch=GENERATION_BATCH,
            http_port=0,
        ),
        "judge": JudgeSettings(orders=opts.judge_orders, follow_profiles=True),
    }
    config = {name: model.model_dump(mode="json", exclude_defaults=True) for name, model in sections.items()}
    return deep_merge(config, nest_dotted(opts.extra))


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
    clock = StageClock(echo)
    services = service_names()
    readers = float(opts.readers or 8)
    clock.plan("broker", "starting the embedded Kafka-compatible broker")
    profilers = f"{opts.profiler_replicas} processes" if opts.profiler_replicas > 1 else "1 process"
    clock.plan("services", f"starting services ({', '.join(services)}); the profiler first, as {profilers}")
    clock.plan("ingest", "streaming the reviews into the profiler (gRPC IngestRecords)")
    clock.plan(
        "profiling",
        "profiling readers (demographics, interests, 150 values, Big Five)",
        readers,
        once_s=0.0 if smollm2_converted() else MODEL_CONVERSION_S,
    )
    clock.plan(
        "pairs+training",
        "pairs -> training -> adapters (Kafka: profiles -> pairgen -> shards -> trainer -> adapters)",
        readers,
    )
    clock.plan(
        "generation",
        "personalizing descriptions (gRPC Generator): prompt-only methods while the adapters train",
        readers * opts.books_per_user * 9,
        after=("profiling",),
        ends_after=("pairs+training",),  # the adapters' descriptions
    )
    if opts.recovery_readers:
        clock.plan(
            "recovery",
            "profiler recovery on planted readers with a known truth (gravity fidelity), beside the last "
            "descriptions",
            float(opts.recovery_readers),
            after=("pairs+training",),
        )
    clock.plan(
        "judging",
        "judging (gRPC Judge, paper and debiased protocols: top-1 win rate, preference gain, "
        "interestingness, similarity)",
        readers * opts.books_per_user,
        after=("generation",),
    )
    with clock.step("broker") as note:
        broker = EmbeddedBroker(log_path=out / "logs" / "broker.log").start()
        note(f"broker at {broker.bootstrap}")
    try:
        with Supervisor() as supervisor:
            report = _run(opts, out, reviews, meta, demographics, broker, supervisor, clock)
    finally:
        broker.stop()
    errors = clock.estimate_errors()
    report["_demo"] = {
        "seconds": round(clock.elapsed, 1),
        "time_table": "\n".join(filter(None, [clock.table(), clock.estimate_summary()])),
        "readers": report.get("_readers", 0),
        "stages": clock.as_dict(),
        "estimate_error_s": None
        if errors is None
        else {"mean": round(errors[0], 1), "worst": round(errors[1], 1)},
        "estimates": clock.estimates,
        "events": clock.events,
        "out": str(out),
    }
    report.pop("_readers", None)
    (out / "timing.json").write_text(json.dumps(report["_demo"], indent=2), encoding="utf-8")
    return report


def _run(
    opts: DemoOptions,
    out: Path,
    reviews: Path,
    meta: Path,
    demographics: Path | None,
    broker: EmbeddedBroker,
    supervisor: Supervisor,
    clock: StageClock,
) -> dict[str, Any]:
    services = service_names()
    ports = {name: free_port() for name in services}
    config_path = out / "config.toml"
    config_path.write_text(
        tomlwrite.dumps(demo_config(opts, broker.bootstrap, ports, meta)), encoding="utf-8"
    )
    settings = load_settings(config_path, env={})
    check_settings(settings)
    grpc_settings = settings.grpc

    def watch() -> None:
        for process in supervisor:
            if not process.alive():
                raise Unavailable(
                    f"{process.name} exited unexpectedly; last log lines:\n{process.log_tail()}"
                )

    replicas = {"profiler": opts.profiler_replicas}

    def start(name: str) -> list[ServiceProcess]:
        started = []
        for replica in range(1, replicas.get(name, 1) + 1):
            process = ServiceProcess.serve(
                name,
                config_path,
                out / "logs",
                grpc_settings,
                co_located=replicas.get(name, CO_LOCATED.get(name, 1)),
                yielding=name in YIELDING,
                replica=replica,
            )
            started.append(supervisor.add(process).start())
        return started

    with clock.step("services") as note:
        started = {name: start(name) for name in services if name not in DEFERRED}
        # Profiling needs only the profiler; the others finish loading while it works (their topics wait).
        # Every replica is up before the readers are queued, so each takes its share of them.
        profilers = started["profiler"]
        for process in profilers:
            process.wait_serving(timeout_s=600, grpc_settings=grpc_settings)
        note(f"profiler SERVING on {', '.join(p.target for p in profilers)}")

    def client(cls: Any, name: str) -> Any:
        return cls(grpc_settings.target(name), grpc_settings, timeout_s=opts.timeout_s)

    with (
        client(ProfilerClient, "profiler") as profiler,
        client(PairGenClient, "pairgen") as pairgen,
        client(TrainerClient, "trainer") as trainer,
        client(GeneratorClient, "generator") as generator,
        client(JudgeClient, "judge") as judge,
    ):
        with clock.step("ingest") as note:
            users = (
                choose_users(reviews, demographics, opts.readers, opts.min_reviews) if demographics else None
            )
            wanted = set(users) if users else None
            result = profiler.ingest(
                ingest_requests(reviews, meta, demographics, wanted, cohort_id=f"demo-{int(time.time())}")
            )
            accepted = list(result.accepted_users)
            note(
                f"cohort {result.cohort_id}: {len(accepted)} readers queued, {result.lines_read} lines read, "
                f"{result.lines_skipped} skipped {dict(result.skipped_by_reason) or ''}".rstrip()
            )
            if not accepted:
                raise GravityError("no reader met the review threshold; nothing to personalize")
        for name, units in (
            ("profiling", len(accepted)),
            ("pairs+training", len(accepted)),
            ("generation", len(accepted) * opts.books_per_user * 9),
            ("judging", len(accepted) * opts.books_per_user),
        ):
            clock.set_units(name, units)

        profiles: dict[str, profile_pb2.UserProfile] = {}
        with clock.step("profiling") as note:
            serving: set[str] = {"profiler"}

            def profiles_ready() -> tuple[bool, str]:
                for user in accepted:
                    if user not in profiles and (found := profiler.get_profile(user)) is not None:
                        profiles[user] = found
                for process in supervisor:
                    if process.name not in serving and process.serving(grpc_settings):
                        serving.add(process.name)
                return len(profiles) == len(accepted), (
                    f"profiles published: {len(profiles)}/{len(accepted)}; "
                    f"services SERVING: {len(serving)}/{len(list(supervisor))}{clock.eta_text()}"
                )

            _wait(profiles_ready, note, opts.timeout_s, "profiles", watch)
            note(
                f"unreadable: {sum(p.evidence.unreadable_stances for p in profiles.values())} stances, "
                f"{sum(p.evidence.unreadable_items for p in profiles.values())} items across {len(profiles)} readers"
            )
        for name in DEFERRED:
            start(name)
        for process in supervisor:
            if process.name not in DEFERRED:
                process.wait_serving(timeout_s=600, grpc_settings=grpc_settings)

        # The recovery check starts once every adapter is live: the generator then finishes the last
        # adapter's descriptions on its share of the cores, and the other share would sit idle.
        background = ThreadPoolExecutor(max_workers=1)
        recovery: list[Future[str]] = []

        def start_recovery() -> None:
            if opts.recovery_readers and not recovery:
                recovery.append(
                    background.submit(_recovery, clock, config_path, out / "fidelity", opts.recovery_readers)
                )

        try:
            generations = _pairs_training_and_generation(
                opts,
                meta,
                result.cohort_id,
                accepted,
                profiles,
                pairgen,
                trainer,
                generator,
                clock,
                watch,
                when_trained=start_recovery,
                generator_serving=_once_true(lambda: supervisor["generator"].serving(grpc_settings)),
            )
        finally:
            background.shutdown(wait=False)
        generations_path = out / "generations.jsonl"
        write_jsonl(generations, generations_path)
        clock.note(f"{len(generations)} rows -> {generations_path}")

        with clock.step("judging") as note:
            supervisor["judge"].wait_serving(timeout_s=600, grpc_settings=grpc_settings)
            final = judge.evaluate(
                generations,
                report_name=f"demo-{result.cohort_id}".replace("/", "-"),
                on_progress=lambda p: note(f"{p.stage}: {p.done}/{p.total}{clock.eta_text()}"),
            )
            report_dir = ArtifactStore(settings.artifacts.path()).resolve(final.report_uri)
            for name in ("report.json", "report.md", "report.html", "judgments.jsonl"):
                shutil.copyfile(
                    report_dir / name if report_dir.is_dir() else report_dir.parent / name, out / name
                )
            note(f"unusable judgments: {final.unusable_judgments}")

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    report["_readers"] = len(accepted)
    if recovery:
        report["_recovery"] = recovery[0].result()
    return report


def _recovery(clock: StageClock, config_path: Path, out: Path, readers: int) -> str:
    """The real profiler library on small planted readers, scored against their truth (not the demo's readers,
    whose true profiles nobody knows). It runs beside the generator's last descriptions, on one thread: a
    second would spin against the generator's and slow both."""
    from gravity_fidelity.report import recovery_line
    from gravity_fidelity.steps import quick_recovery

    settings = load_settings(config_path, env={}, overrides={"llm.defaults.threads": 1})
    with clock.step("recovery") as note:
        line = recovery_line(quick_recovery(settings, out, readers=readers))
        note(line)
    return line


def _once_true(check: Callable[[], bool]) -> Callable[[], bool]:
    """``check``, asked again only until it first passes (a service that is SERVING stays so for the demo)."""
    passed = False

    def checked() -> bool:
        nonlocal passed
        passed = passed or check()
        return passed

    return checked


def _pairs_training_and_generation(
    opts: DemoOptions,
    meta: Path,
    cohort_id: str,
    accepted: list[str],
    profiles: dict[str, profile_pb2.UserProfile],
    pairgen: PairGenClient,
    trainer: TrainerClient,
    generator: GeneratorClient,
    clock: StageClock,
    watch: Callable[[], None],
    when_trained: Callable[[], None] = lambda: None,
    generator_serving: Callable[[], bool] = lambda: True,
) -> list[judge_pb2.Generation]:
    """Pairs, training and generation, overlapped: once the cohort's manifest names every reader's held-out
    books (and the generator, started after profiling, is SERVING), the prompt-only methods are generated while
    the adapters train, and each adapter method as soon as its adapter is live in the generator;
    ``when_trained`` is called once every adapter is live."""
    catalog = Catalog.open(meta, SkipLog())
    clock.begin("pairs+training")
    manifest: DatasetManifest | None = None
    work: list[Future[judge_pb2.Generation]] = []
    submitted: set[str] = set()
    targets: list[tuple[str, Any]] | None = None
    prompt_methods: list[str] = []
    deadline = time.monotonic() + opts.timeout_s
    with ThreadPoolExecutor(max_workers=GENERATION_BATCH) as pool:
        while True:
            watch()
            manifest = pairgen.get_manifest(cohort_id) or manifest
            methods = generator.list_methods() if generator_serving() else []
            live = {names.method_name(m) for m in methods if m.available and m.requires_adapter}
            if (
                targets is None
                and methods
                and manifest is not None
                and all(manifest.complete(d) for d in REQUIRED_ADAPTERS)
            ):
                targets = _targets(catalog, profiles, manifest.held_out, opts.books_per_user, clock.note)
                prompt_methods = [names.method_name(m) for m in methods if not m.requires_adapter]
                clock.set_units("generation", len(targets) * (len(prompt_methods) + len(REQUIRED_ADAPTERS)))
                clock.begin("generation")
            if targets is not None:
                # method-major: requests in flight together share an adapter (or none)
                for method in [*prompt_methods, *REQUIRED_ADAPTERS]:
                    if method not in submitted and (method in prompt_methods or method in live):
                        submitted.add(method)
                        work += [
                            pool.submit(_describe, generator, user, book, method) for user, book in targets
                        ]
            all_live = all(a in live for a in REQUIRED_ADAPTERS)
            if all_live and not clock.finished("pairs+training"):
                clock.end("pairs+training")
                when_trained()
            done = sum(f.done() for f in work)
            trained = _training_progress(manifest, live, len(accepted), opts.train_concurrency)
            clock.set_progress("pairs+training", trained, 1.0)
            if targets is not None:
                clock.set_progress("generation", done, clock.units("generation"))
            clock.note(_status(manifest, trainer, live, len(accepted), done, len(work)) + clock.eta_text())
            if (
                all_live
                and targets is not None
                and len(submitted) == len(prompt_methods) + len(REQUIRED_ADAPTERS)
            ):
                break
            if time.monotonic() > deadline:
                raise Unavailable(f"timed out after {opts.timeout_s:.0f}s waiting for the adapters")
            time.sleep(2.0)
        rows = collect_descriptions(work, clock, reported=done)
    clock.end("generation")
    return rows


def collect_descriptions(
    work: list[Future[judge_pb2.Generation]], clock: StageClock, reported: int = 0
) -> list[judge_pb2.Generation]:
    """The descriptions in submission order, reporting progress as requests finish. Progress counts every
    finished request, not those collected so far: most are done long before the last adapter's, and counting
    from zero again made the estimate jump to an hour."""
    rows = []
    for future in work:
        rows.append(future.result())
        done = sum(f.done() for f in work)
        clock.set_progress("generation", done, len(work))
        if done - reported >= 8 or (done == len(work) and reported < done):
            reported = done
            clock.note(f"descriptions {done}/{len(work)}{clock.eta_text()}")
    return rows


def _training_progress(
    manifest: DatasetManifest | None, live: set[str], readers: int, concurrency: int
) -> float:
    """How far pairs+training is: the latest point on the trainer's schedule (training_fraction) of the
    parts done. The pairs count once every reader has them: the pair generator prepares the profiles of one
    poll together, so the first reader's pairs come alone and the rest at once, and extrapolating from that
    first reader predicted hours."""
    done = {a for a in REQUIRED_ADAPTERS if a in live}
    if _readers_with_pairs(manifest) >= readers:
        done.add("pairs")
    return training_fraction(done, concurrency)


def training_fraction(done: set[str], concurrency: int) -> float:
    """How far pairs+training is once the parts ``done`` have ended, with adapters trained ``concurrency`` at
    a time in the trainer's queue order."""
    ends = slot_schedule(
        ("pairs", TRAINING_PARTS_S["pairs"]),
        [(a, TRAINING_PARTS_S[a]) for a in REQUIRED_ADAPTERS],
        concurrency,
    )
    return max((ends[part] for part in done), default=0.0)


def _readers_with_pairs(manifest: DatasetManifest | None) -> int:
    return 0 if manifest is None else max((len(d.shards) for d in manifest.datasets.values()), default=0)


def _status(
    manifest: DatasetManifest | None,
    trainer: TrainerClient,
    live: set[str],
    readers: int,
    described: int,
    queued: int,
) -> str:
    if manifest is None:
        parts = ["pairs: waiting"]
    else:
        rows = {name: d.rows for name, d in manifest.datasets.items()}
        parts = [f"pairs for {_readers_with_pairs(manifest)}/{readers} readers {rows}"]
    trained = sorted(names.method_name(a) for a in trainer.list_adapters())
    parts.append(f"adapters trained: {trained or 'none yet'}")
    parts.append(f"live in generator: {sorted(live) or 'none yet'}")
    if queued:
        parts.append(f"descriptions {described}/{queued}")
    return "; ".join(parts)


def _targets(
    catalog: Catalog,
    profiles: dict[str, profile_pb2.UserProfile],
    held_out: dict[str, list[str]],
    books_per_user: int,
    note: Callable[[str], None],
) -> list[tuple[str, Any]]:
    """Each reader's evaluation books: the ones the cohort's manifest holds out of training."""
    books = catalog.get_many(a for user in profiles for a in held_out.get(user, [])[:books_per_user])
    targets = [
        (user, books[asin])
        for user in sorted(profiles)
        for asin in held_out.get(user, [])[:books_per_user]
        if asin in books
    ]
    without = sorted(set(profiles) - {user for user, _ in targets})
    if without:
        note(f"{len(without)} reader(s) have no evaluation book in the manifest: {', '.join(without)}")
    return targets


def _describe(generator: GeneratorClient, user: str, book: Any, method: str) -> judge_pb2.Generation:
    resp = generator.personalize(user_id=user, parent_asin=book.parent_asin, method=method, timeout_s=1800)
    return judge_pb2.Generation(
        user_id=user,
        parent_asin=book.parent_asin,
        **names.method_fields(method),
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
