"""Batch evaluation generation (`gravity generate`): every method for every user's evaluation books.

Targets follow paper §3.4 (highly rated books from the user's top genres, never reviewed by them; five per
user by default, the same books for every method). All requests of a method go through the personalizer
together, so each model stage is one batched call per chunk. A row that fails is recorded with its reason
and the run goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gravity.v1 import judge_pb2, profile_pb2
from gravity_core import names
from gravity_core.adapters import find_adapters
from gravity_core.amazon import BookRecord
from gravity_core.errors import InvalidInput, NotFound
from gravity_core.llm import GenerationParams
from gravity_core.logging import get_logger
from gravity_core.targets import EvaluationPool
from gravity_generator.app import GeneratorApp
from gravity_generator.engine import Job, Result
from gravity_generator.methods import ADAPTER_METHODS, PROMPT_METHODS, BookInput
from gravity_generator.registry import MethodUnavailable
from gravity_generator.settings import GeneratorSettings

log = get_logger(__name__)


@dataclass
class MethodSummary:
    method: str
    rows: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


@dataclass
class BatchReport:
    generations: list[judge_pb2.Generation] = field(default_factory=list)
    methods: list[MethodSummary] = field(default_factory=list)
    users: int = 0
    books: int = 0
    seconds: float = 0.0


def choose_methods(app: GeneratorApp, requested: Sequence[str]) -> list[str]:
    """``all`` = every method that can run now (adapter methods without an adapter are recorded as skipped);
    explicitly named methods must all be runnable."""
    engine = app.require_engine()
    statuses = {s.name: s for s in engine.methods()}
    if not requested or list(requested) == ["all"]:
        chosen = []
        for status in statuses.values():
            if status.available:
                chosen.append(status.name)
            else:
                app.skips.add(
                    "adapter_missing", f"method {status.name!r} has no adapter loaded", record_id=status.name
                )
        return chosen
    for method in requested:
        engine.check_method(method)
        if not statuses[method].available:
            raise MethodUnavailable(
                f"method {method!r} has no adapter: pass --adapters with a {method!r} adapter"
            )
    return list(dict.fromkeys(requested))


def precheck_methods(cfg: GeneratorSettings, requested: Sequence[str]) -> None:
    """Fail before any model loads when an explicitly named method cannot run: no adapter for it in
    ``adapters_dir`` (or ``served_adapters``), or no such method at all."""
    if not requested or list(requested) == ["all"]:
        return
    found = set(find_adapters(Path(cfg.adapters_dir).expanduser())) if cfg.adapters_dir else set()
    found |= set(cfg.served_adapters)
    for method in requested:
        if method in PROMPT_METHODS or method in found:
            continue
        if method in ADAPTER_METHODS:
            raise MethodUnavailable(
                f"method {method!r} has no adapter: pass --adapters with a {method!r} adapter"
            )
        known = ", ".join([*PROMPT_METHODS, *ADAPTER_METHODS, *sorted(found - set(ADAPTER_METHODS))])
        raise NotFound("method", f"unknown method {method!r} (known: {known})")


def select_jobs(
    app: GeneratorApp,
    users: Sequence[str] | None,
    books_per_user: int,
    held_out: dict[str, list[str]] | None = None,
) -> list[tuple[profile_pb2.UserProfile, BookRecord]]:
    """(profile, evaluation book) jobs: the first ``books_per_user`` of each reader's held-out books from a
    dataset manifest (``held_out``, so generation uses exactly the books training left out), or, without
    a manifest, the same selection computed from the catalog and the ``[evaluation]`` settings."""
    assert app.catalog is not None
    if users:
        profiles = []
        for user_id in users:
            if user_id in app.profiles:
                profiles.append(app.profiles.get(user_id))
            else:
                app.skips.add(
                    "unknown_user", "no profile for this user in the profiles file", record_id=user_id
                )
    else:
        profiles = sorted(app.profiles, key=lambda p: p.user_id)
    pool = EvaluationPool(app.catalog, app.settings.evaluation)
    pairs: list[tuple[Any, Any]] = []
    for profile in profiles:
        if held_out is None:
            targets = pool.targets(profile, books_per_user)
        elif profile.user_id not in held_out:
            app.skips.add(
                "not_in_manifest",
                "the dataset manifest holds no evaluation books for this user",
                record_id=profile.user_id,
            )
            continue
        else:
            targets = _manifest_books(app, profile.user_id, held_out[profile.user_id], books_per_user)
        if not targets:
            app.skips.add(
                "no_targets",
                "no unreviewed, described book in the user's interest genres",
                record_id=profile.user_id,
            )
        pairs.extend((profile, book) for book in targets)
    return pairs


def _manifest_books(app: GeneratorApp, user_id: str, books: list[str], n: int) -> list[BookRecord]:
    assert app.catalog is not None
    if n > len(books):
        raise InvalidInput(
            "--books-per-user",
            f"the manifest holds {len(books)} evaluation book(s) for {user_id!r}, fewer than the {n} asked for",
        )
    found = app.catalog.get_many(books[:n])
    missing = [a for a in books[:n] if a not in found]
    for asin in missing:
        app.skips.add("unknown_book", f"evaluation book {asin} is not in the catalog", record_id=user_id)
    return [found[a] for a in books[:n] if a in found]


def generate_batch(
    app: GeneratorApp,
    methods: Sequence[str],
    pairs: Sequence[tuple[profile_pb2.UserProfile, BookRecord]],
    params: GenerationParams,
    chunk_size: int,
    on_chunk: Callable[[str, int], None] | None = None,
) -> BatchReport:
    """One Generation per (pair, method), in (user, book, method) order."""
    engine = app.require_engine()
    started = time.perf_counter()
    report = BatchReport(users=len({p.user_id for p, _ in pairs}), books=len(pairs))
    rows: dict[tuple[int, int], judge_pb2.Generation] = {}
    for m_index, method in enumerate(methods):
        summary = MethodSummary(method)
        method_started = time.perf_counter()
        for start in range(0, len(pairs), chunk_size):
            chunk = pairs[start : start + chunk_size]
            chunk_started = time.perf_counter()
            jobs = [Job(profile, _book_input(book), method, params) for profile, book in chunk]
            outcomes = engine.run(jobs)
            amortized_ms = (time.perf_counter() - chunk_started) * 1000.0 / len(chunk)
            for offset, ((profile, book), outcome) in enumerate(zip(chunk, outcomes, strict=True)):
                if isinstance(outcome, Exception):
                    summary.failed += 1
                    app.skips.add(
                        "generation_failed",
                        f"{type(outcome).__name__}: {outcome}",
                        record_id=f"{profile.user_id}/{book.parent_asin}/{method}",
                    )
                    continue
                summary.rows += 1
                summary.prompt_tokens += outcome.prompt_tokens
                summary.completion_tokens += outcome.completion_tokens
                rows[(start + offset, m_index)] = _generation(profile, book, outcome, amortized_ms)
            if on_chunk is not None:
                on_chunk(method, len(chunk))
        summary.seconds = time.perf_counter() - method_started
        report.methods.append(summary)
    report.generations = [rows[k] for k in sorted(rows)]
    report.seconds = time.perf_counter() - started
    return report


def _book_input(book: BookRecord) -> BookInput:
    return BookInput(
        book.parent_asin, book.title or book.parent_asin, book.description, book.genre, book.genre_group
    )


def _generation(
    profile: profile_pb2.UserProfile, book: BookRecord, result: Result, amortized_ms: float
) -> judge_pb2.Generation:
    return judge_pb2.Generation(
        user_id=profile.user_id,
        parent_asin=book.parent_asin,
        **names.method_fields(result.method),
        text=result.text,
        book_title=book.title,
        genre=book.genre,
        genre_group=book.genre_group,
        model=result.model,
        adapter=result.adapter,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        # In a batch every row of a chunk is generated together: the chunk's wall time per row.
        latency_ms=0.0 if result.method == names.ORIGINAL else amortized_ms,
    )
