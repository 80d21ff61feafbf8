"""The compare page: one reader, one book, every method's description side by side (paper §4, Table 2's
methods), next to the reader's profile.

Server-rendered, no script: choosing a reader lists their evaluation books (gravity_core.targets, the
books the paper evaluates on and pairgen holds out of training) and any catalog book can be named by
parent_asin. Opening a (reader, book) starts every available method in the background as PersonalizeRequests
on the serving path gRPC and the API use (gravity_generator.serving: same validation, engine, micro-batcher
and metrics), and the page reloads itself every two seconds until all have answered.
Descriptions are kept per (reader's profile revision, book, method); "Regenerate" samples one method again
with ``generator.compare_temperature`` and a fresh seed (the first description of each method uses the
server's defaults, greedy unless configured otherwise). Templates escape everything.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from gravity.v1 import common_pb2, generation_pb2, profile_pb2
from gravity_core import names, prompts
from gravity_core.llm import GenerationParams
from gravity_core.logging import get_logger
from gravity_core.web.errors import http_error
from gravity_generator.engine import Result
from gravity_generator.methods import BookInput
from gravity_generator.serving import PersonalizeServing

log = get_logger(__name__)

PENDING, DONE, FAILED = "pending", "done", "failed"
PROVENANCE = {common_pb2.PROVENANCE_GIVEN: "given", common_pb2.PROVENANCE_ESTIMATED: "estimated"}


@dataclass
class Description:
    """One method's description on the page, while it is generated and after."""

    state: str
    round: int = 1
    # How it was decoded (greedy, or the sampling), known once the request is validated.
    decoding: str = ""
    result: Result | None = None
    error: str = ""
    started: float = 0.0


def decoding_label(params: GenerationParams) -> str:
    if params.greedy:
        return "greedy"
    return f"sampled: temperature {params.temperature:g}, top_p {params.top_p:g}, seed {params.seed}"


class CompareBoard:
    """Descriptions per (reader revision, book, method), generated in the background, least recent dropped."""

    def __init__(
        self, serving: PersonalizeServing, capacity: int, temperature: float, workers: int = 16
    ) -> None:
        self.serving = serving
        self.capacity = capacity
        self.temperature = temperature
        self._entries: OrderedDict[tuple[str, ...], Description] = OrderedDict()
        self._lock = threading.Lock()
        # Every method of a page at once, so the micro-batcher can batch them together.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="compare")

    @staticmethod
    def key(profile: profile_pb2.UserProfile, book: BookInput, method: str) -> tuple[str, ...]:
        revision = profile.revision or str(profile.built_at_ms)
        return (profile.user_id, revision, book.parent_asin, method)

    def descriptions(
        self, profile: profile_pb2.UserProfile, book: BookInput, methods: Sequence[str]
    ) -> dict[str, Description]:
        """The methods' descriptions, starting those not generated yet with the server's defaults."""
        out = {}
        for method in methods:
            key = self.key(profile, book, method)
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
            out[method] = entry if entry is not None else self._start(key, profile, book, method, None, 1)
        return out

    def regenerate(self, profile: profile_pb2.UserProfile, book: BookInput, method: str) -> Description:
        """Sample ``method`` again (a fresh seed); a description still being generated is left to finish."""
        key = self.key(profile, book, method)
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry.state == PENDING:
            return entry
        sampled = generation_pb2.PersonalizeRequest(
            sampling=generation_pb2.SamplingParams(temperature=self.temperature),
            seed=secrets.randbelow(2**31 - 1),
        )
        return self._start(key, profile, book, method, sampled, (entry.round + 1) if entry else 1)

    def _start(
        self,
        key: tuple[str, ...],
        profile: profile_pb2.UserProfile,
        book: BookInput,
        method: str,
        sampling: generation_pb2.PersonalizeRequest | None,
        round_: int,
    ) -> Description:
        """``sampling``: a PersonalizeRequest holding only sampling and seed (None: the server's defaults)."""
        request = generation_pb2.PersonalizeRequest(
            user_id=profile.user_id, parent_asin=book.parent_asin, **names.method_fields(method)
        )
        if sampling is not None:
            request.MergeFrom(sampling)
        entry = Description(PENDING, round_, started=time.monotonic())
        with self._lock:
            running = self._entries.get(key)
            if running is not None and running.state == PENDING:
                return running  # another page load or click started it a moment ago
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        self._pool.submit(self._run, entry, request)
        return entry

    def _run(self, entry: Description, request: generation_pb2.PersonalizeRequest) -> None:
        try:
            job = self.serving.job(request)
            entry.decoding = decoding_label(job.params)
            entry.result = self.serving.personalize(job)
            entry.state = DONE
        except Exception as exc:
            failure = http_error(exc)
            if failure.status == 500:
                log.error("compare_generation_failed", method=names.method_name(request), exc_info=exc)
            entry.error = failure.message
            entry.state = FAILED

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def profile_view(profile: profile_pb2.UserProfile) -> dict[str, Any]:
    """What the page shows of a profile. Traits whose level is not known (UNKNOWN, unset) are left out, as
    they are left out of every prompt."""
    demographics = []
    for label, field in (
        ("Age group", profile.demographics.age_group),
        ("Gender", profile.demographics.gender),
        ("Country", profile.demographics.country),
    ):
        demographics.append(
            {
                "label": label,
                "value": field.value or "unknown",
                "provenance": PROVENANCE.get(field.provenance, ""),
                "confidence": field.confidence
                if field.provenance == common_pb2.PROVENANCE_ESTIMATED
                else None,
            }
        )
    by_trait = {t.trait: t for t in profile.personality.traits}
    traits = [
        {"name": name, "level": prompts.LEVEL_NAMES[by_trait[t].level], "score": by_trait[t].score}
        for t, name in prompts.TRAIT_NAMES.items()
        if t in by_trait and by_trait[t].level in prompts.LEVEL_NAMES
    ]
    return {
        "user_id": profile.user_id,
        "demographics": demographics,
        "interests": [
            {"genre": i.genre, "share": i.share, "reviews": i.review_count}
            for i in sorted(profile.interests, key=lambda i: -i.share)
        ],
        "value_summary": profile.value_summary.strip(),
        "traits": traits,
        "user_summary": profile.user_summary.strip(),
        "review_count": profile.review_count,
    }


def reader_label(profile: profile_pb2.UserProfile) -> str:
    age, gender, country = (
        profile.demographics.age_group.value,
        profile.demographics.gender.value,
        profile.demographics.country.value,
    )
    about = ", ".join(v for v in (age, gender, country) if v)
    return f"{profile.user_id} ({about})" if about else profile.user_id
