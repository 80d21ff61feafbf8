"""IngestRecords parsing (no broker): lines of three kinds in any order, bad ones recorded with source:line."""

from __future__ import annotations

import json
from pathlib import Path

from profiler_fixtures import CASUAL, NO_GENDER

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.catalog import Catalog
from gravity_core.skips import SkipLog
from gravity_profiler.ingest import IngestSession


def _line(kind: str, source: str, number: int, data: bytes) -> profile_pb2.IngestRecordsRequest:
    return profile_pb2.IngestRecordsRequest(
        **{kind: common_pb2.SourceLine(source=source, line_number=number, data=data)}
    )


def test_stream_is_parsed_joined_and_thresholded(tmp_path: Path, sample_files) -> None:
    reviews = sample_files["Books.jsonl"].read_bytes().splitlines()
    meta = sample_files["meta_Books.jsonl"].read_bytes().splitlines()
    demo = sample_files["demographics.csv"].read_bytes().splitlines()
    wanted = {NO_GENDER, CASUAL}
    requests = [_line("demographics_line", "demographics.csv", 1, demo[0])]
    requests += [
        _line("demographics_line", "demographics.csv", n, row)
        for n, row in enumerate(demo[1:], start=2)
        if row.split(b",")[0].decode() in wanted
    ]
    requests.append(_line("demographics_line", "demographics.csv", 99, b"X1,abc,female,USA"))  # bad age
    # reviews before the metadata they refer to: the join happens once the stream ends
    requests += [
        _line("review_line", "Books.jsonl", n, raw)
        for n, raw in enumerate(reviews, start=1)
        if json.loads(raw)["user_id"] in wanted
    ]
    requests.append(_line("review_line", "Books.jsonl", 1000, b'{"user_id": "X", "text": '))
    requests.append(_line("review_line", "Books.jsonl", 1001, b"\xff\xfe not utf-8"))
    requests += [_line("meta_line", "meta_Books.jsonl", n, raw) for n, raw in enumerate(meta, start=1)]
    requests.append(_line("meta_line", "meta_Books.jsonl", 500, json.dumps({"parent_asin": "X"}).encode()))
    requests.append(profile_pb2.IngestRecordsRequest(cohort_id="ignored-after-first"))

    first = requests[0]
    first.cohort_id = "my-cohort"
    skips = SkipLog()
    payloads: list[bytes] = []
    catalog = Catalog.at(tmp_path / "catalog.sqlite")
    session = IngestSession(catalog, skips, str(tmp_path))
    skips.on_skip = lambda skip: payloads.append(session.payload)
    try:
        session.feed(iter(requests))
        outcome = session.finish(min_reviews=20)
        users = list(session.inputs(outcome.qualifying))
    finally:
        session.close()

    assert outcome.cohort_id == "my-cohort"
    assert outcome.qualifying == [NO_GENDER] and outcome.users_below_threshold == 1
    assert outcome.lines_read == len(requests)
    assert outcome.by_reason == {
        "bad_field": 1,
        "malformed_json": 1,
        "not_utf8": 1,
        "missing_field": 1,
        "empty_record": 1,
        "below_threshold": 1,
    }
    assert outcome.line_skips == 5
    where = {(s.reason, s.source, s.line) for s in skips.examples}
    assert ("malformed_json", "Books.jsonl", 1000) in where and ("bad_field", "demographics.csv", 99) in where
    assert b'{"user_id": "X", "text": ' in payloads  # the raw line travels with the skip (DLQ payload)
    [user] = users
    assert user.demographics is not None and user.demographics.age == 26 and user.demographics.gender == ""
    assert len(user.reviews) >= 20 and all(r.parent_asin in user.books for r in user.reviews)
    assert len(catalog) == 90  # metadata persisted in the service catalog


def test_demographics_need_a_header_first(tmp_path: Path) -> None:
    skips = SkipLog()
    session = IngestSession(Catalog.at(tmp_path / "c.sqlite"), skips, str(tmp_path))
    try:
        session.feed(iter([_line("demographics_line", "d.csv", 1, b"U1,30,female,USA")]))
    finally:
        session.close()
    assert skips.counts["missing_field"] == 1 and skips.examples[0].line == 1
