"""Pytest fixtures shared by every package's tests (loaded from the root conftest.py).

Real parts only: a real Tansu broker, the real SmolLM2 and MiniLM models, real gRPC and HTTP servers on
127.0.0.1.
Models are converted/cached once under $GRAVITY_HOME (default ~/.cache/gravity), so only the first test
session on a machine pays for it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gravity_core.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]  # the repository root, for tests that read its files


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``whole_stack`` run first, while the pytest process is still small.

    Such a test starts the demo's broker, services and training processes beside pytest. Later in a session
    pytest itself holds the in-process models earlier tests loaded: 5.7 GB with the CPU torch build and 8.0 GB
    with PyPI's CUDA build, which is what `uv run pytest` installs on a fresh machine. There, the kernel killed
    the suite at the end-to-end demo on a 24 GB machine. The sort is stable, so every other test keeps its
    order."""
    items.sort(key=lambda item: item.get_closest_marker("whole_stack") is None)


@pytest.fixture(autouse=True, scope="module")
def _release_embedded_models() -> Iterator[None]:
    """After each test module the embedded models it left behind are released: a pool's worker processes
    (~1 GB each) stop, and in-process models no session fixture still holds are freed (~1 GB each). Kept for
    the session, they grew pytest to 12.9 GB, and a pool's workers beside the end-to-end demo ran the suite
    out of a 24 GB machine."""
    yield
    from gravity_core.llm import release_embedded_models

    release_embedded_models()


@pytest.fixture(scope="session")
def broker() -> Iterator[Any]:
    """A Tansu broker for the whole session; tests isolate themselves with their own topic names."""
    from gravity_core.broker import EmbeddedBroker

    with EmbeddedBroker() as b:
        yield b


@pytest.fixture(scope="session")
def embedded_llm() -> Any:
    """The embedded SmolLM2 client (no response cache)."""
    from gravity_core.config import LLMEndpoint
    from gravity_core.llm import make_llm

    return make_llm(LLMEndpoint(max_tokens=64), cache=None)


@pytest.fixture(scope="session")
def embedder() -> Any:
    from gravity_core.embeddings import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def sample_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled sample, exported to a temp dir: {"Books.jsonl": ..., "meta_Books.jsonl": ..., "demographics.csv": ...}."""
    from gravity_core.sample import export_sample

    return export_sample(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="session")
def sample_profiles(sample_files: dict[str, Path]) -> list[Any]:
    """The 16 main sample readers as synthetic UserProfiles (no profiler; see synthetic_profiles)."""
    from synthetic_profiles import profiles_from_files

    from gravity_core.catalog import Catalog

    catalog = Catalog.open(sample_files["meta_Books.jsonl"])
    return profiles_from_files(sample_files["Books.jsonl"], catalog, sample_files["demographics.csv"])


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Build Settings isolated to this test: artifacts and response cache under tmp_path, no env leakage.

    ``make_settings(broker=b, **{"profiler.min_reviews": 5})``: dotted keys override anything.
    """

    def build(broker: Any = None, topic_suffix: str | None = None, **overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "artifacts.root": str(tmp_path / "artifacts"),
            "cache.enabled": False,
            "logging.level": "WARNING",
            "grpc.host": "127.0.0.1",
        }
        if broker is not None:
            base["kafka.bootstrap_servers"] = broker.bootstrap
            base["kafka.session_timeout_ms"] = 6000
            base["kafka.heartbeat_interval_ms"] = 1000
            base["kafka.partitions"] = 1
            suffix = topic_suffix or tmp_path.name.replace("_", "-")[-40:]
            for topic in ("profiles", "shards", "adapters", "dlq"):
                base[f"kafka.topics.{topic}"] = f"gravity.{topic}.{suffix}"
            base["kafka.group_prefix"] = f"test-{suffix}"
        base.update(overrides)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITY_") or k == "GRAVITY_HOME"}
        return load_settings(None, env=env, overrides=base)

    return build


# Browser tests drive the system Chromium (Debian package) with Playwright, headless.
CHROMIUM = Path(os.environ.get("GRAVITY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def artifacts_dir(name: str) -> Path:
    """Where a test writes what a person should look at (screenshots): test-artifacts/<name>/ in the
    repository, or $GRAVITY_TEST_ARTIFACTS/<name>."""
    root = Path(os.environ.get("GRAVITY_TEST_ARTIFACTS", REPO / "test-artifacts"))
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium context (Playwright). In CI (``CI`` set) a missing browser fails the test; a local
    run without Chromium skips it and says why."""
    if not CHROMIUM.is_file():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + ": browser tests must run in CI")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page with no cookies and a 20 s default timeout."""
    browser.clear_cookies()
    p = browser.new_page()
    p.set_default_timeout(20_000)
    try:
        yield p
    finally:
        p.close()


def drain(consumer: Any, cls: type, want: int, timeout_s: float = 60.0) -> list[Any]:
    """Decode up to ``want`` messages of ``cls`` from a Kafka consumer, polling until ``timeout_s``."""
    import time

    from gravity_core.bus import decode

    got: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got += [decode(r.value, cls, r.headers) for r in records]
    return got


def wait_until(check: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; its last value explains a timeout."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last: {value!r})")


def _churn(parent: Path, started: Any, stop: Any) -> None:
    elsewhere = parent.parent / f"{parent.name}-taken"
    elsewhere.mkdir(parents=True, exist_ok=True)
    started.set()
    while not stop.is_set():
        made = [parent / f"churn-{n}" for n in range(100)]
        for directory in made:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "item.pb").write_bytes(b"")
        for directory in made:
            os.replace(directory / "item.pb", elsewhere / "item.pb")
            directory.rmdir()


@contextmanager
def another_process_churning(parent: Path) -> Iterator[Any]:
    """Another process working on a shared volume as fast as it can while the body runs: directories with a
    file each appear under ``parent``, then each file is taken away and its directory removed (what a replica
    claiming queued cohorts' last items does). A process, not a thread, so the two really run at once."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    started, stop = context.Event(), context.Event()
    other = context.Process(target=_churn, args=(parent, started, stop))
    other.start()
    try:
        assert started.wait(30), "the churning process did not start"
        yield other
    finally:
        stop.set()
        other.join(30)


def first_failure(action: Callable[[], Any], seconds: float) -> tuple[int, OSError] | None:
    """Repeat ``action`` for ``seconds``; the attempt number and error of the first OSError, or None."""
    deadline = time.monotonic() + seconds
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        try:
            action()
        except OSError as exc:
            return attempt, exc
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (servers under test bind it next)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 running ``handler`` in threads; yields ``http://127.0.0.1:PORT``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def send_body(
    handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "application/json"
) -> None:
    """Answer the handler's request with ``status`` and ``body`` (Content-Length set)."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
