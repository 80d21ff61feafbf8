"""`gravity bench generator`: the embedded model over gRPC, micro-batched versus one request at a time.

Three measurements in one run, on the bundled sample (profiles built without a model, see
quick_profiles):

* throughput with N concurrent clients against a micro-batching generator, and against the same generator
  with batching off (max_batch = 1, the naive baseline): requests/s, completion tokens/s, the ratio;
* latency p50/p95 of each;
* gRPC overhead: the same requests one at a time over gRPC versus a direct library call in-process
  (interleaved, medians compared).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gravity_core import names
from gravity_core.cli.common import CliContext, pass_cli, summary_table

if TYPE_CHECKING:
    from gravity_core.clients import GeneratorClient
    from gravity_core.service import RunningService


@dataclass
class LoadResult:
    label: str
    requests: int
    seconds: float
    completion_tokens: int
    latencies_ms: list[float]
    mean_batch: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def _load(
    client_factory: Callable[[], GeneratorClient], requests: Sequence[dict[str, Any]], clients: int
) -> tuple[float, int, list[float]]:
    queue = list(enumerate(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    tokens = [0]
    errors: list[BaseException] = []

    def worker() -> None:
        with client_factory() as client:
            while True:
                with lock:
                    if not queue or errors:
                        return
                    _, request = queue.pop(0)
                started = time.perf_counter()
                try:
                    reply = client.personalize(**request)
                except BaseException as exc:
                    with lock:
                        errors.append(exc)
                    return
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000.0)
                    tokens[0] += reply.completion_tokens

    threads = [threading.Thread(target=worker, name=f"bench-client-{i}") for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started, tokens[0], latencies


@click.command(name="run")
@click.option(
    "--requests",
    "n_requests",
    type=click.IntRange(min=2),
    default=16,
    show_default=True,
    help="Requests per mode.",
)
@click.option(
    "--clients", type=click.IntRange(min=1), default=8, show_default=True, help="Concurrent gRPC clients."
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=1),
    default=96,
    show_default=True,
    help="Tokens per description; very short outputs measure mostly the prompt pass, which batching helps less.",
)
@click.option(
    "--method", default=names.DEMO_BASED, show_default=True, help="A prompt method (no adapter needed)."
)
@click.option(
    "--overhead-pairs",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="gRPC/direct request pairs.",
)
@pass_cli
def run(
    cli: CliContext, n_requests: int, clients: int, max_new_tokens: int, method: str, overhead_pairs: int
) -> None:
    """Throughput, latency and gRPC overhead of the generator on the embedded model."""
    from gravity_core.catalog import Catalog
    from gravity_core.clients import GeneratorClient, Sampling
    from gravity_core.config import load_settings
    from gravity_core.grpc import make_channel, wait_for_serving
    from gravity_core.logging import configure_from_settings
    from gravity_core.proto_io import write_jsonl
    from gravity_core.sample import export_sample
    from gravity_core.targets import select_targets
    from gravity_generator.app import load_config
    from gravity_generator.quick_profiles import quick_profiles
    from gravity_generator.service import start_generator

    tmp = Path(tempfile.mkdtemp(prefix="gravity-bench-generator-"))
    files = export_sample(tmp / "sample")
    catalog = Catalog.open(files["meta_Books.jsonl"])
    profiles = quick_profiles(files["Books.jsonl"], catalog, files["demographics.csv"])
    write_jsonl(profiles, tmp / "profiles.jsonl")
    settings = load_settings(
        cli.config_path,
        overrides={
            "cache.enabled": False,
            "artifacts.root": str(tmp / "artifacts"),
            "logging.level": "WARNING",
            "generator.follow_topics": False,
            "generator.meta_path": str(files["meta_Books.jsonl"]),
            "generator.profiles_path": str(tmp / "profiles.jsonl"),
            "generator.adapters_dir": "",
        },
    )
    configure_from_settings(settings)
    if settings.llm.role("writer").backend != "embedded":
        raise click.ClickException(
            "this benchmark measures the embedded backend (llm.writer.backend = embedded)"
        )
    sampling = Sampling(max_new_tokens=max_new_tokens)
    pairs = [(p.user_id, b.parent_asin) for p in profiles for b in select_targets(p, catalog, 2)]
    requests = [
        {"user_id": u, "parent_asin": a, "method": method, "sampling": sampling}
        for u, a in (pairs * (n_requests // max(1, len(pairs)) + 1))[:n_requests]
    ]
    base = load_config(settings)
    results: list[LoadResult] = []
    overhead: tuple[float, float] | None = None
    for label, max_batch in (("micro-batched", clients), ("one at a time", 1)):
        cfg = base.model_copy(update={"max_batch": max_batch})
        running = start_generator(settings, cfg=cfg)
        try:
            wait_for_serving(make_channel(running.target), timeout_s=600)
            with GeneratorClient(running.target) as warm:
                warm.personalize(**requests[0])
            batcher = running.service.app.engine.writer  # type: ignore[attr-defined]
            before_batches, before_calls = batcher.stats.batches, batcher.stats.calls
            seconds, tokens, latencies = _load(partial(GeneratorClient, running.target), requests, clients)
            batches = batcher.stats.batches - before_batches
            mean_batch = (batcher.stats.calls - before_calls) / batches if batches else 0.0
            results.append(LoadResult(label, len(requests), seconds, tokens, latencies, mean_batch))
            if max_batch == 1:
                overhead = _grpc_overhead(running, requests, overhead_pairs)
        finally:
            running.stop()

    rows = [
        (
            r.label,
            r.requests,
            round(r.seconds, 1),
            r.rps,
            round(r.tokens_per_s, 1),
            round(r.percentile(0.5)),
            round(r.percentile(0.95)),
            round(r.mean_batch, 2),
        )
        for r in results
    ]
    click.echo(
        summary_table(
            f"generator on the embedded model over gRPC: {clients} clients, method {method}, {max_new_tokens} new tokens",
            rows,
            ["mode", "requests", "seconds", "req/s", "tok/s", "p50 ms", "p95 ms", "mean batch"],
        )
    )
    batched, single = results
    speedup = batched.rps / single.rps if single.rps else float("nan")
    token_speedup = batched.tokens_per_s / single.tokens_per_s if single.tokens_per_s else float("nan")
    click.echo(
        f"micro-batching speed-up: {speedup:.2f}x requests/s, {token_speedup:.2f}x tokens/s (goal >= 3x)"
    )
    if overhead is not None:
        grpc_ms, direct_ms = overhead
        pct = (grpc_ms - direct_ms) / direct_ms * 100.0 if direct_ms else float("nan")
        click.echo(
            f"gRPC overhead: median {grpc_ms:.0f} ms over gRPC vs {direct_ms:.0f} ms direct call "
            f"= {pct:+.1f}% (goal < 5%; {overhead_pairs} interleaved pairs)"
        )


def _grpc_overhead(
    running: RunningService, requests: Sequence[dict[str, Any]], pairs: int
) -> tuple[float, float]:
    """Median latency of the same request over gRPC and as a direct library call, interleaved."""
    from gravity_core.clients import GeneratorClient, build_request
    from gravity_generator.requests import job_from_request

    app = running.service.app  # type: ignore[attr-defined]
    grpc_ms, direct_ms = [], []
    with GeneratorClient(running.target) as client:
        for i in range(pairs):
            request = requests[i % len(requests)]
            started = time.perf_counter()
            client.personalize(**request)
            grpc_ms.append((time.perf_counter() - started) * 1000.0)
            started = time.perf_counter()
            app.require_engine().run_one(job_from_request(build_request(**request), app))
            direct_ms.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(grpc_ms), statistics.median(direct_ms)
