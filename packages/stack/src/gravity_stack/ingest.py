"""Stream an Amazon-format dataset into the profiler over gRPC (ProfilerService.IngestRecords)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from gravity.v1 import common_pb2, profile_pb2


def choose_users(reviews: Path, demographics: Path, n: int | None, min_reviews: int) -> list[str]:
    """Up to ``n`` users with at least ``min_reviews`` reviews, round-robin over countries (unknown last)."""
    counts: Counter[str] = Counter()
    with open(reviews, "rb") as f:
        for raw in f:
            try:
                counts[json.loads(raw)["user_id"]] += 1
            except (ValueError, KeyError, TypeError):
                continue
    eligible = sorted(u for u, c in counts.items() if c >= min_reviews)
    if n is None or n >= len(eligible):
        return eligible
    country: dict[str, str] = {}
    with open(demographics, encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            country[row.get("user_id", "")] = (row.get("country") or "").strip()
    by_country: dict[str, list[str]] = {}
    for user in eligible:
        by_country.setdefault(country.get(user) or "~unknown", []).append(user)
    chosen: list[str] = []
    while len(chosen) < n:
        for key in sorted(by_country):
            if by_country[key] and len(chosen) < n:
                chosen.append(by_country[key].pop(0))
    return chosen


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if raw.strip():
                yield number, raw.rstrip(b"\r\n")


def ingest_requests(
    reviews: Path, meta: Path, demographics: Path | None, users: set[str] | None, cohort_id: str = ""
) -> Iterator[profile_pb2.IngestRecordsRequest]:
    """Demographics (header first), then metadata, then the reviews of ``users`` (all when None).

    Lines are sent as raw bytes: the profiler parses them, so a malformed line is reported by the service
    (file and line) and dead-lettered, exactly like in production ingestion.
    """
    first = True

    def request(**kw: common_pb2.SourceLine) -> profile_pb2.IngestRecordsRequest:
        nonlocal first
        req = profile_pb2.IngestRecordsRequest(cohort_id=cohort_id if first else "", **kw)
        first = False
        return req

    if demographics is not None:
        for number, raw in _lines(demographics):
            user = raw.split(b",", 1)[0].decode(errors="replace")
            if number == 1 or users is None or user in users:
                yield request(
                    demographics_line=common_pb2.SourceLine(
                        source=demographics.name, line_number=number, data=raw
                    )
                )
    for number, raw in _lines(meta):
        yield request(meta_line=common_pb2.SourceLine(source=meta.name, line_number=number, data=raw))
    for number, raw in _lines(reviews):
        if users is not None:
            try:
                if json.loads(raw).get("user_id") not in users:
                    continue
            except (ValueError, AttributeError):
                pass  # malformed: let the profiler report it
        yield request(review_line=common_pb2.SourceLine(source=reviews.name, line_number=number, data=raw))
