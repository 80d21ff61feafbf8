"""`gravity bench generator`: the generator's serving speed, against its own baseline and against a peer server.

On the bundled sample (profiles built without a model, see quick_profiles), N concurrent gRPC clients send
the same Personalize requests (greedy, ``--max-new-tokens``). Every figure is measured in the same run.

Without ``--peer``: the embedded generator with continuous batching versus the same generator one request at
a time (``max_batch = 1``), requests/s, tokens/s, p50/p95 latency and the mean running batch; then the gRPC
overhead (one request over gRPC versus the same call in-process, interleaved, medians).

With ``--peer URL`` (any OpenAI-compatible server: vLLM, `gravity serve llm`):

* **embedded vs peer**: the embedded generator over gRPC versus the peer called directly with the identical
  prompts (the exact writer prompts the generator builds, from :meth:`Personalizer.writer_call`) by the same
  number of clients: completion tokens/s and the ratio — for a prompt method on the base model and for the
  ``gravity`` method with a LoRA adapter (on the peer, the same adapter under its own model name);
* **generator over the peer**: the generator with its writer on the peer, over gRPC, versus the peer called
  directly with the same prompts: what the generator's own path costs on top of the endpoint.

Each comparison runs ``--rounds`` times, alternating which side goes first (ours-peer, peer-ours, ...), so
that drift in the machine's load falls on both sides; the ratio is of the pooled tokens/s (all tokens over
all seconds of each side), printed with every round's own ratio so the spread is visible. When the peer
exports vLLM's Prometheus metrics, the bench also reads the server's own time per request around every run
against it: client-observed latency minus that is what the path in front of the server costs, a figure the
server's run-to-run drift (±10% here) does not blur.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from gravity_core import names
from gravity_core.cli.common import CliContext, pass_cli, summary_table

if TYPE_CHECKING:
    from gravity.v1 import profile_pb2
    from gravity_core.catalog import Catalog
    from gravity_core.config import Settings
    from gravity_core.llm import LLMClient
    from gravity_core.service import RunningService
    from gravity_generator.completion import Call

T = TypeVar("T")
BENCH_ADAPTER = "gravity-bench"


@dataclass
class LoadResult:
    label: str
    requests: int
    seconds: float
    completion_tokens: int
    latencies_ms: list[float]
    mean_batch: float | None = None
    server_ms: float | None = None  # the peer's own mean time per request, when it exports it

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0

    def row(self) -> tuple[Any, ...]:
        return (
            self.label,
            self.requests,
            round(self.seconds, 1),
            self.rps,
            round(self.tokens_per_s, 1),
            round(self.percentile(0.5)),
            round(self.percentile(0.95)),
            "-" if self.mean_batch is None else round(self.mean_batch, 2),
        )


HEADERS = ["mode", "requests", "seconds", "req/s", "tok/s", "p50 ms", "p95 ms", "mean batch"]


@dataclass
class Paired:
    """One workload run ``rounds`` times on our side and on the peer's, alternating which goes first."""

    what: str
    ours: list[LoadResult] = field(default_factory=list)
    theirs: list[LoadResult] = field(default_factory=list)

    @staticmethod
    def pooled(results: Sequence[LoadResult]) -> float:
        seconds = sum(r.seconds for r in results)
        return sum(r.completion_tokens for r in results) / seconds if seconds else 0.0

    @property
    def ratio(self) -> float:
        theirs = self.pooled(self.theirs)
        return self.pooled(self.ours) / theirs if theirs else float("nan")

    def round_ratios(self) -> list[float]:
        return [a.tokens_per_s / b.tokens_per_s if b.tokens_per_s else float("nan") for a, b in self.paired()]

    def paired(self) -> list[tuple[LoadResult, LoadResult]]:
        return list(zip(self.ours, self.theirs, strict=True))

    def row(self) -> tuple[Any, ...]:
        spread = " / ".join(f"{r:.2f}" for r in self.round_ratios())
        return (
            self.what,
            round(self.pooled(self.ours), 1),
            round(self.pooled(self.theirs), 1),
            f"{self.ratio:.2f}x",
            spread,
        )


SERVER_LATENCY = "vllm:e2e_request_latency_seconds"


def server_latency(base_url: str) -> tuple[float, float] | None:
    """(seconds, requests) the peer has spent on finished requests so far, from vLLM's ``/metrics``; None
    where the server exports no such figure."""
    import httpx

    root = base_url.removesuffix("/v1")
    try:
        reply = httpx.get(f"{root}/metrics", timeout=10.0)
    except httpx.HTTPError:
        return None
    return parse_server_latency(reply.text) if reply.status_code == 200 else None


def parse_server_latency(exposition: str) -> tuple[float, float] | None:
    """Sum and count of :data:`SERVER_LATENCY` over all its label sets in a Prometheus text exposition."""
    totals = {"sum": 0.0, "count": 0.0}
    found = False
    for line in exposition.splitlines():
        # `name{labels} value [timestamp]`; label values may hold spaces, so split after the labels
        name, brace, rest = line.partition("{")
        fields = (rest.partition("}")[2] if brace else name).split()
        name = name if brace else (fields.pop(0) if fields else "")
        for part in totals:
            if name == f"{SERVER_LATENCY}_{part}" and fields:
                totals[part] += float(fields[0])
                found = True
    return (totals["sum"], totals["count"]) if found else None


def alternate(
    what: str, rounds: int, ours: Callable[[str], LoadResult], theirs: Callable[[str], LoadResult]
) -> Paired:
    """Run both sides ``rounds`` times, ours first in even rounds and the peer first in odd ones."""
    paired = Paired(what)
    for i in range(rounds):
        tag = f" #{i + 1}" if rounds > 1 else ""
        if i % 2 == 0:
            paired.ours.append(ours(tag))
            paired.theirs.append(theirs(tag))
        else:
            paired.theirs.append(theirs(tag))
            paired.ours.append(ours(tag))
    return paired


def drive(
    label: str,
    items: Sequence[T],
    clients: int,
    sender: Callable[[], AbstractContextManager[Callable[[T], int]]],
    server: str | None = None,
) -> LoadResult:
    """Send ``items`` from ``clients`` threads (each with its own ``sender``, which returns completion
    tokens), as fast as answers come back; the first error stops the run and is raised. With ``server`` (a
    peer's base URL), the peer's own mean time per request during the run is read from its metrics."""
    queue = list(items)
    lock = threading.Lock()
    latencies: list[float] = []
    tokens = [0]
    errors: list[BaseException] = []

    def worker() -> None:
        with sender() as send:
            while True:
                with lock:
                    if not queue or errors:
                        return
                    item = queue.pop(0)
                started = time.perf_counter()
                try:
                    n = send(item)
                except BaseException as exc:
                    with lock:
                        errors.append(exc)
                    return
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000.0)
                    tokens[0] += n

    threads = [threading.Thread(target=worker, name=f"bench-client-{i}") for i in range(clients)]
    click.echo(f"  {label}: {len(items)} requests from {clients} clients ...", err=True)
    before = server_latency(server) if server else None
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    result = LoadResult(label, len(items), time.perf_counter() - started, tokens[0], latencies)
    after = server_latency(server) if server else None
    if before is not None and after is not None and after[1] > before[1]:
        result.server_ms = (after[0] - before[0]) / (after[1] - before[1]) * 1000.0
    click.echo(
        f"  {label}: {result.seconds:.1f}s, {result.completion_tokens} tokens, {result.tokens_per_s:.1f} tok/s",
        err=True,
    )
    return result


def grpc_sender(target: str) -> Callable[[], AbstractContextManager[Callable[[dict[str, Any]], int]]]:
    from gravity_core.clients import GeneratorClient

    @contextmanager
    def open_client() -> Iterator[Callable[[dict[str, Any]], int]]:
        with GeneratorClient(target) as client:
            yield lambda request: int(client.personalize(**request).completion_tokens)

    return open_client


def direct_sender(llm: LLMClient) -> Callable[[], AbstractContextManager[Callable[[Call], int]]]:
    @contextmanager
    def open_client() -> Iterator[Callable[[Call], int]]:
        yield lambda call: llm.chat(list(call.messages), call.params, call.adapter).completion_tokens

    return open_client


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
    "--clients", type=click.IntRange(min=1), default=8, show_default=True, help="Concurrent clients."
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=1),
    default=96,
    show_default=True,
    help="Tokens per description; very short outputs measure mostly the prompt pass, which batching helps less.",
)
@click.option(
    "--method", default=names.DEMO_BASED, show_default=True, help="The prompt method of the base-model rows."
)
@click.option(
    "--overhead-pairs",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="gRPC/direct request pairs (without --peer).",
)
@click.option(
    "--peer",
    default=None,
    metavar="URL",
    help="An OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) to run the identical workload against.",
)
@click.option(
    "--peer-model", default=None, help="The peer's base model name (default: the first of its /v1/models)."
)
@click.option(
    "--adapter",
    "adapter_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="LoRA adapter (PEFT directory) for the adapter rows (default: a random rank-16 LoRA on every "
    "projection, the shape `gravity train` produces).",
)
@click.option(
    "--peer-adapter",
    default=None,
    help="The model name the peer already serves the adapter under (vLLM --lora-modules NAME=DIR); default: "
    f"load it at run time as {BENCH_ADAPTER!r} through /v1/load_lora_adapter.",
)
@click.option("--no-adapter", is_flag=True, help="Skip the adapter rows.")
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="With --peer: runs of each workload per side, alternating which side goes first.",
)
@pass_cli
def run(
    cli: CliContext,
    n_requests: int,
    clients: int,
    max_new_tokens: int,
    method: str,
    overhead_pairs: int,
    peer: str | None,
    peer_model: str | None,
    adapter_dir: str | None,
    peer_adapter: str | None,
    no_adapter: bool,
    rounds: int,
) -> None:
    """Throughput and latency of the generator: continuous batching vs one at a time, or vs a peer server."""
    from gravity_core.catalog import Catalog
    from gravity_core.clients import Sampling
    from gravity_core.config import load_settings
    from gravity_core.logging import configure_from_settings
    from gravity_core.proto_io import write_jsonl
    from gravity_core.sample import export_sample
    from gravity_generator.quick_profiles import quick_profiles

    if method == names.TRI_AGENT or method == names.ORIGINAL:
        raise click.BadParameter("pick a single-stage method that calls the writer", param_hint="--method")
    tmp = Path(tempfile.mkdtemp(prefix="gravity-bench-generator-"))
    files = export_sample(tmp / "sample")
    catalog = Catalog.open(files["meta_Books.jsonl"])
    profiles = quick_profiles(files["Books.jsonl"], catalog, files["demographics.csv"])
    write_jsonl(profiles, tmp / "profiles.jsonl")
    adapters_root = tmp / "adapters"
    with_adapter = peer is not None and not no_adapter
    if with_adapter:
        _install_adapter(adapter_dir, adapters_root / names.GRAVITY)
    settings = load_settings(
        cli.config_path,
        overrides={
            "cache.enabled": False,
            "artifacts.root": str(tmp / "artifacts"),
            "logging.level": "WARNING",
            "generator.follow_topics": False,
            "generator.http_enabled": False,  # only gRPC is measured
            "generator.meta_path": str(files["meta_Books.jsonl"]),
            "generator.profiles_path": str(tmp / "profiles.jsonl"),
            "generator.adapters_dir": str(adapters_root) if with_adapter else "",
        },
    )
    configure_from_settings(settings)
    writer = settings.llm.role("writer")
    if writer.backend != "embedded":
        raise click.ClickException(
            "this benchmark measures the embedded backend (llm.writer.backend = embedded); the peer is --peer"
        )
    # one in-process model for both roles (the author is unused by single-stage methods)
    settings = _with_writer(settings, writer.model_copy(update={"max_batch_size": clients}), author=True)
    sampling = Sampling(max_new_tokens=max_new_tokens)
    requests = _requests(profiles, catalog, method, sampling, n_requests)
    title = f"{clients} clients, {n_requests} requests, {max_new_tokens} new tokens, greedy"
    if peer is None:
        _against_one_at_a_time(settings, requests, clients, overhead_pairs, title, method)
        return
    adapter_requests = (
        _requests(profiles, catalog, names.GRAVITY, sampling, n_requests) if with_adapter else []
    )
    _against_peer(
        settings,
        requests,
        adapter_requests,
        clients,
        peer,
        peer_model,
        peer_adapter,
        adapters_root / names.GRAVITY,
        title,
        method,
        rounds,
    )


def _requests(
    profiles: Sequence[profile_pb2.UserProfile],
    catalog: Catalog,
    method: str,
    sampling: Any,
    n: int,
) -> list[dict[str, Any]]:
    from gravity_core.targets import select_targets

    pairs = [(p.user_id, b.parent_asin) for p in profiles for b in select_targets(p, catalog, 2)]
    return [
        {"user_id": u, "parent_asin": a, "method": method, "sampling": sampling}
        for u, a in (pairs * (n // max(1, len(pairs)) + 1))[:n]
    ]


def _with_writer(settings: Settings, endpoint: Any, author: bool = False) -> Settings:
    roles = {"writer": endpoint, "author": endpoint} if author else {"writer": endpoint}
    return settings.model_copy(update={"llm": settings.llm.model_copy(update=roles)})


@contextmanager
def _generator(settings: Settings, max_batch: int) -> Iterator[RunningService]:
    from gravity_core.clients import GeneratorClient
    from gravity_core.grpc import make_channel, wait_for_serving
    from gravity_generator.app import load_config
    from gravity_generator.service import start_generator

    cfg = load_config(settings).model_copy(update={"max_batch": max_batch})
    running = start_generator(settings, cfg=cfg)
    try:
        wait_for_serving(make_channel(running.target), timeout_s=600)
        with GeneratorClient(running.target) as client:
            client.list_methods()
        yield running
    finally:
        running.stop()


def _engine_stats(running: RunningService) -> Any:
    return getattr(running.service.app.engine.writer, "engine", None)  # type: ignore[attr-defined]


def _grpc_run(
    label: str,
    running: RunningService,
    requests: Sequence[dict[str, Any]],
    clients: int,
    server: str | None = None,
) -> LoadResult:
    send = grpc_sender(running.target)
    with send() as warm:  # first call pays one-time costs (threads, kernels)
        warm(requests[0])
    engine = _engine_stats(running)
    steps, rows = (engine.stats.decode_steps, engine.stats.decode_rows) if engine is not None else (0, 0)
    result = drive(label, requests, clients, send, server)
    if engine is not None and engine.stats.decode_steps > steps:
        result.mean_batch = (engine.stats.decode_rows - rows) / (engine.stats.decode_steps - steps)
    return result


def _writer_calls(
    running: RunningService, requests: Sequence[dict[str, Any]], adapter: str | None
) -> list[Call]:
    """The exact writer calls the generator makes for ``requests``, with the peer's adapter name."""
    from dataclasses import replace

    from gravity_core.clients import build_request
    from gravity_generator.requests import job_from_request

    app = running.service.app  # type: ignore[attr-defined]
    engine = app.require_engine()
    return [
        replace(engine.writer_call(job_from_request(build_request(**r), app)), adapter=adapter)
        for r in requests
    ]


def _against_one_at_a_time(
    settings: Settings,
    requests: Sequence[dict[str, Any]],
    clients: int,
    overhead_pairs: int,
    title: str,
    method: str,
) -> None:
    results: list[LoadResult] = []
    overhead: tuple[float, float] | None = None
    for label, max_batch in (("continuous batching", clients), ("one at a time", 1)):
        with _generator(settings, max_batch) as running:
            results.append(_grpc_run(label, running, requests, clients))
            if max_batch == 1:
                overhead = _grpc_overhead(running, requests, overhead_pairs)
    click.echo(
        summary_table(
            f"generator on the embedded model over gRPC: {title}, method {method}",
            [r.row() for r in results],
            HEADERS,
        )
    )
    batched, single = results
    speedup = batched.rps / single.rps if single.rps else float("nan")
    token_speedup = batched.tokens_per_s / single.tokens_per_s if single.tokens_per_s else float("nan")
    click.echo(f"continuous batching speed-up: {speedup:.2f}x requests/s, {token_speedup:.2f}x tokens/s")
    if overhead is not None:
        grpc_ms, direct_ms = overhead
        pct = (grpc_ms - direct_ms) / direct_ms * 100.0 if direct_ms else float("nan")
        click.echo(
            f"gRPC overhead: median {grpc_ms:.0f} ms over gRPC vs {direct_ms:.0f} ms direct call "
            f"= {pct:+.1f}% (goal < 5%; {overhead_pairs} interleaved pairs)"
        )


def _against_peer(
    settings: Settings,
    requests: Sequence[dict[str, Any]],
    adapter_requests: Sequence[dict[str, Any]],
    clients: int,
    peer: str,
    peer_model: str | None,
    peer_adapter: str | None,
    adapter_dir: Path,
    title: str,
    method: str,
    rounds: int,
) -> None:
    from gravity_core.config import LLMEndpoint
    from gravity_core.llm import make_llm

    base_url = peer.rstrip("/")
    if not base_url.endswith("/v1"):
        base_url += "/v1"
    model = peer_model or _first_model(base_url)
    peer_endpoint = LLMEndpoint(
        backend="openai", base_url=base_url, model=model, concurrency=clients, timeout_s=600.0, max_retries=0
    )
    peer_llm = make_llm(peer_endpoint, cache=None)
    peer_sender = direct_sender(peer_llm)
    workloads: list[Paired] = []
    with _generator(settings, clients) as running:
        base_calls = _writer_calls(running, requests, None)
        peer_llm.chat(list(base_calls[0].messages), base_calls[0].params)  # warm-up
        workloads.append(
            alternate(
                f"base model ({method})",
                rounds,
                lambda tag: _grpc_run(f"embedded, {method}{tag}", running, requests, clients),
                lambda tag: drive(f"peer, {method}{tag}", base_calls, clients, peer_sender),
            )
        )
        if adapter_requests:
            name = peer_adapter or _load_peer_adapter(peer_llm, adapter_dir)
            adapter_calls = _writer_calls(running, adapter_requests, name)
            peer_llm.chat(list(adapter_calls[0].messages), adapter_calls[0].params, name)  # warm-up
            workloads.append(
                alternate(
                    "LoRA adapter (gravity)",
                    rounds,
                    lambda tag: _grpc_run(
                        f"embedded, gravity + LoRA{tag}", running, adapter_requests, clients
                    ),
                    lambda tag: drive(f"peer, gravity + LoRA{tag}", adapter_calls, clients, peer_sender),
                )
            )
    with _generator(_with_writer(settings, peer_endpoint), clients) as running:
        over_peer = alternate(
            "generator over the peer (gRPC)",
            rounds,
            lambda tag: _grpc_run(f"generator -> peer, {method}{tag}", running, requests, clients, base_url),
            lambda tag: drive(f"peer, {method}{tag}", base_calls, clients, peer_sender, base_url),
        )
        workloads.append(over_peer)
    rows = [r.row() for w in workloads for pair in w.paired() for r in pair]
    click.echo(summary_table(f"generator vs peer {base_url} ({model}): {title}", rows, HEADERS))
    click.echo("")
    click.echo(
        summary_table(
            "tokens/s ratios, pooled over the rounds (goals: embedded >= 0.8x the peer; generator over the "
            "peer >= 0.95x the peer)",
            [w.row() for w in workloads],
            ["workload", "ours tok/s", "peer tok/s", "ratio", "per round"],
        )
    )
    click.echo(path_cost(over_peer))


def path_cost(paired: Paired) -> str:
    """What the path in front of the peer adds per request, beyond the peer's own time for it."""

    def beyond(results: Sequence[LoadResult]) -> tuple[float, float] | None:
        if any(r.server_ms is None for r in results):
            return None
        client = statistics.fmean(r.mean_ms for r in results)
        server = statistics.fmean(r.server_ms or 0.0 for r in results)
        return client - server, server

    via, direct = beyond(paired.ours), beyond(paired.theirs)
    if via is None or direct is None:
        return (
            f"time per request beyond the peer's own: not measured (the peer exports no {SERVER_LATENCY}; "
            "vLLM does)"
        )
    return (
        f"time per request beyond the peer's own ({SERVER_LATENCY}, mean of the rounds): generator over the "
        f"peer +{via[0]:.0f} ms on {via[1]:.0f} ms ({via[0] / via[1] * 100:.2f}%), calling it directly "
        f"+{direct[0]:.0f} ms on {direct[1]:.0f} ms ({direct[0] / direct[1] * 100:.2f}%)"
    )


def _first_model(base_url: str) -> str:
    import httpx

    try:
        data = httpx.get(f"{base_url}/models", timeout=30.0).json()
        return str(data["data"][0]["id"])
    except Exception as exc:
        raise click.ClickException(
            f"cannot list models at {base_url}/models ({exc}); pass --peer-model"
        ) from None


def _load_peer_adapter(llm: LLMClient, adapter_dir: Path) -> str:
    from gravity_core.errors import GravityError

    try:
        llm.load_adapter(BENCH_ADAPTER, str(adapter_dir.resolve()))
    except GravityError as exc:
        if "already" not in str(exc):
            raise click.ClickException(
                f"the peer refused the adapter ({exc}); start vLLM with --enable-lora and "
                f"VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, or with --lora-modules NAME={adapter_dir} and "
                "pass --peer-adapter NAME"
            ) from None
    return BENCH_ADAPTER


def _install_adapter(source: str | None, target: Path) -> None:
    """Copy (or make) the benchmark's LoRA adapter into ``target`` with the metadata the generator reads."""
    import shutil

    from gravity.v1 import training_pb2
    from gravity_core.adapters import ADAPTER_META, write_adapter_ref
    from gravity_core.artifacts import sha256_dir

    target.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(ADAPTER_META))
    else:
        _random_adapter(target)
    ref = training_pb2.AdapterRef(
        adapter_id=BENCH_ADAPTER,
        **names.method_fields(names.GRAVITY),
        recipe=names.GRAVITY_DPO_RECIPE,
        uri=target.resolve().as_uri(),
        sha256=sha256_dir(target, exclude=(ADAPTER_META,)),
        base_model="smollm2-135m",
        created_at_ms=int(time.time() * 1000),
    )
    write_adapter_ref(target, ref)


def _random_adapter(target: Path) -> None:
    """A rank-16 LoRA on every projection (the trainer's default shape) with small random weights: it costs
    what a trained adapter costs to serve and moves the outputs a little, like one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from gravity_core.llm.models import resolve_model_path

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(resolve_model_path("smollm2-135m"))
    config = LoraConfig(
        r=16,
        lora_alpha=32,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        init_lora_weights=False,
    )
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.05)
    model.save_pretrained(str(target))


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
