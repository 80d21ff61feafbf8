"""The batch pipeline behind ``gravity profile build``: files in, profiles.jsonl out, in constant memory.

Reviews stream into a scratch SQLite spool (never a list in memory), metadata into the core Catalog
index; qualifying users are then profiled ``batch_users`` at a time and their profiles streamed to a
temporary file that replaces ``out`` atomically at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gravity_core.amazon import DemographicsRecord, iter_reviews, read_demographics
from gravity_core.catalog import Catalog
from gravity_core.files import atomic_open
from gravity_core.proto_io import to_json
from gravity_core.skips import SkipLog
from gravity_profiler.builder import BuildStats, ProfileBuilder, cohort_id_for, input_digest
from gravity_profiler.spool import ReviewSpool

Progress = Callable[[Iterable, int | None, str], Iterable]


@dataclass
class BatchReport:
    out: Path
    cohort_id: str
    users_built: int
    reviews_read: int
    reviews_used: int
    users_below_threshold: int
    input_skips: SkipLog
    answer_skips: SkipLog
    stats: BuildStats
    seconds: dict[str, float] = field(default_factory=dict)


def _no_progress(items: Iterable, total: int | None, desc: str) -> Iterable:
    return items


def build_profiles(
    builder: ProfileBuilder,
    reviews: Path,
    meta: Path,
    out: Path,
    demographics: Path | None = None,
    *,
    min_reviews: int,
    protocol: str | None = None,
    cohort_id: str = "",
    users: set[str] | None = None,
    max_users: int | None = None,
    progress: Progress = _no_progress,
    spool_dir: str | None = None,
) -> BatchReport:
    input_skips = SkipLog(keep=1000)
    answer_skips = SkipLog(keep=1000)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    catalog = Catalog.open(meta, input_skips)
    given: dict[str, DemographicsRecord] = (
        read_demographics(demographics, input_skips) if demographics else {}
    )
    seconds["metadata"] = time.perf_counter() - started

    started = time.perf_counter()
    with ReviewSpool(spool_dir) as spool:
        for number, review in progress(iter_reviews(reviews, input_skips), None, "reading reviews"):
            spool.add(review, str(reviews), number)
        result = spool.finalize(catalog, input_skips, min_reviews, users)
        for missing in result.missing_users:
            input_skips.add(
                "unknown_user", "no reviews by this user in the input", str(reviews), record_id=missing
            )
        chosen = result.qualifying[:max_users] if max_users is not None else result.qualifying
        seconds["reading"] = time.perf_counter() - started

        started = time.perf_counter()
        protocol = protocol or builder.config.protocol
        if not cohort_id:
            cohort_id = cohort_id_for(
                [(u.user_id, input_digest(u)) for u in spool.iter_inputs(chosen, catalog, given.get)]
            )
        stats = BuildStats()
        built = 0
        with atomic_open(out, "w", encoding="utf-8") as handle:
            inputs = spool.iter_inputs(chosen, catalog, given.get)
            for chunk in progress(
                _chunks(inputs, builder.config.batch_users),
                _n_chunks(len(chosen), builder.config.batch_users),
                "profiling",
            ):
                profiles, chunk_stats = builder.build(chunk, cohort_id, len(chosen), answer_skips, protocol)
                stats.merge(chunk_stats)
                for profile in profiles:
                    handle.write(to_json(profile) + "\n")
                built += len(profiles)
        seconds["profiling"] = time.perf_counter() - started
    catalog.close()
    return BatchReport(
        out,
        cohort_id,
        built,
        spool.added,
        result.reviews_kept,
        result.below_threshold,
        input_skips,
        answer_skips,
        stats,
        seconds,
    )


def _chunks(items: Iterable, size: int) -> Iterable[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _n_chunks(n: int, size: int) -> int:
    return (n + size - 1) // size
