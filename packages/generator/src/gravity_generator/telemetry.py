"""The generator's own Prometheus series: requests, latency and tokens per generation method."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

from gravity_core.metrics import PERSONALIZATIONS, PERSONALIZE_SECONDS, TOKENS_GENERATED

T = TypeVar("T")


def observed(method: str, call: Callable[[], T], tokens: Callable[[T], int]) -> T:
    """Run ``call`` and count it under ``method`` (status OK or the failure's class)."""
    started = time.perf_counter()
    try:
        result = call()
    except Exception as exc:
        PERSONALIZATIONS.labels(method, type(exc).__name__).inc()
        raise
    PERSONALIZATIONS.labels(method, "OK").inc()
    PERSONALIZE_SECONDS.labels(method).observe(time.perf_counter() - started)
    TOKENS_GENERATED.labels(method).inc(tokens(result))
    return result


def observed_stream(
    method: str, events: Iterator[T], tokens: Callable[[T], int | None]
) -> Generator[T, None, None]:
    """Pass the stream through; count it once its final event (the one ``tokens`` answers for) arrives."""
    started = time.perf_counter()
    try:
        for event in events:
            n = tokens(event)
            if n is not None:
                PERSONALIZATIONS.labels(method, "OK").inc()
                PERSONALIZE_SECONDS.labels(method).observe(time.perf_counter() - started)
                TOKENS_GENERATED.labels(method).inc(n)
            yield event
    except Exception as exc:
        PERSONALIZATIONS.labels(method, type(exc).__name__).inc()
        raise
