"""What one profiler process holds and does (paper §3.1, App. A): build, store and publish profiles.

:class:`ProfilerApp` owns the profile store, the pending queue, the catalog and the builder. The gRPC
servicer and the background worker of :mod:`gravity_profiler.service` call it; neither holds logic.

* BuildProfile builds one user's profile synchronously from structured input, stores it and publishes it.
* GetProfile answers the latest stored profile (NOT_FOUND naming user_id otherwise).
* IngestRecords parses a client stream of raw lines; bad lines are dead-lettered (file, line, raw bytes)
  and counted; qualifying users are written to the durable queue before the call returns. The worker then
  builds them ``batch_users`` at a time (:meth:`ProfilerApp.process`), so summaries batch across users, stores
  and publishes each profile and removes the queue entry. A profile already stored with the same revision is
  republished, not rebuilt.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator

from gravity.v1 import profile_pb2
from gravity_core.artifacts import ArtifactStore
from gravity_core.bus import Bus, dead_letter
from gravity_core.config import Settings
from gravity_core.errors import GravityError, InvalidInput, NotFound, Unavailable, is_transient
from gravity_core.grpc import require_field
from gravity_core.identifiers import check_segment
from gravity_core.logging import get_logger
from gravity_core.skips import Skip, SkipLog
from gravity_profiler.builder import ProfileBuilder, cohort_id_for, input_digest
from gravity_profiler.ingest import IngestSession
from gravity_profiler.inputs import UserInput, from_request
from gravity_profiler.settings import profiler_settings
from gravity_profiler.store import PendingItem, ProfilerStore

log = get_logger(__name__)
SERVICE = "profiler"


class ProfilerApp:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        ready: Callable[[], bool],
        builder: ProfileBuilder | None = None,
    ) -> None:
        """``ready``: whether Kafka is reachable (and the worker alive), so profiles can be published."""
        self.settings = settings
        self.config = profiler_settings(settings)
        self.bus = bus
        self.ready = ready
        self.store = ProfilerStore(ArtifactStore.from_settings(settings))
        self.catalog = self.store.catalog()
        self._builder = builder
        self._builder_lock = threading.Lock()
        self.published = 0
        self.failed = 0
        # Claims work in the shared pending queue under this name (see store.py: several replicas may share it).
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def builder(self) -> ProfileBuilder:
        with self._builder_lock:
            if self._builder is None:
                self._builder = ProfileBuilder(self.settings, self.config)
            return self._builder

    def close(self) -> None:
        self.catalog.close()

    # ---------------------------------------------------------- requests
    def build_profile(
        self, request: profile_pb2.BuildProfileRequest, check_deadline: Callable[[], None]
    ) -> profile_pb2.BuildProfileResponse:
        """``check_deadline`` runs once the request is validated, before the (long) build."""
        require_field(request, "user_id")
        require_field(request, "reviews")
        if request.cohort_size < 0:
            raise InvalidInput("cohort_size", "must not be negative")
        _check_cohort_id(request.cohort_id, "cohort_id")
        user, rejected = from_request(request)
        self._add_catalog_books(user)
        publish = not request.skip_publish
        if publish and not self.ready():
            raise Unavailable(
                "Kafka is unreachable, so the profile cannot be published; retry or set skip_publish"
            )
        # Without Kafka (skip_publish), left-out reviews are logged instead of dead-lettered.
        skips = self._dlq_skips() if self.ready() else SkipLog(on_skip=_log_skip)
        for index, reason, detail in rejected:
            skips.add(reason, detail, "BuildProfileRequest.reviews", index + 1, record_id=user.user_id)
        known = [r for r in user.reviews if r.parent_asin in user.books]
        for r in user.reviews:
            if r.parent_asin not in user.books:
                skips.add(
                    "unknown_item",
                    f"no metadata for parent_asin {r.parent_asin}",
                    "BuildProfileRequest.reviews",
                    record_id=user.user_id,
                )
        if not known:
            raise InvalidInput("reviews", "no review with text of a book in books or the service catalog")
        user.reviews = known
        check_deadline()
        cohort_id = request.cohort_id.strip() or cohort_id_for([(user.user_id, input_digest(user))])
        profiles, _ = self.builder().build([user], cohort_id, request.cohort_size or 1, skips)
        profile = profiles[0]
        self.store.save_profile(profile)
        if publish:
            self._publish(profile)
        return profile_pb2.BuildProfileResponse(profile=profile, published=publish)

    def get_profile(self, request: profile_pb2.GetProfileRequest) -> profile_pb2.GetProfileResponse:
        user_id = require_field(request, "user_id")
        profile = self.store.load_profile(user_id)
        if profile is None:
            raise NotFound("user_id", f"no profile for user {user_id!r}")
        return profile_pb2.GetProfileResponse(profile=profile)

    def ingest_records(
        self, requests: Iterator[profile_pb2.IngestRecordsRequest]
    ) -> profile_pb2.IngestRecordsResponse:
        """Parse the stream and queue its qualifying users durably; the worker builds them."""
        if not self.ready():
            raise Unavailable("Kafka is unreachable, so bad lines cannot be dead-lettered; retry later")
        skips = SkipLog(keep=200)
        session = IngestSession(self.catalog, skips, catalog_updates=self.config.catalog_updates)
        skips.on_skip = lambda skip: self.bus.skip_to_dlq(skip, payload=session.payload or None)
        try:
            session.feed(requests)
            _check_cohort_id(session.cohort_id, "cohort_id")
            outcome = session.finish(self.config.min_reviews)
            cohort_id = outcome.cohort_id or cohort_id_for(
                [(u.user_id, input_digest(u)) for u in session.inputs(outcome.qualifying)]
            )
            self.store.enqueue_cohort(
                self.owner,
                cohort_id,
                (
                    user.to_request(cohort_id, len(outcome.qualifying))
                    for user in session.inputs(outcome.qualifying)
                ),
            )
        finally:
            session.close()
        log.info(
            "ingest_accepted",
            cohort_id=cohort_id,
            users=len(outcome.qualifying),
            lines=outcome.lines_read,
            skipped=outcome.line_skips,
            below_threshold=outcome.users_below_threshold,
        )
        return profile_pb2.IngestRecordsResponse(
            cohort_id=cohort_id,
            accepted_users=outcome.qualifying,
            lines_read=outcome.lines_read,
            lines_skipped=outcome.line_skips,
            skipped_by_reason=outcome.by_reason,
            users_below_threshold=outcome.users_below_threshold,
        )

    # ------------------------------------------------------ queued work
    def open_claims(self) -> None:
        self.store.open_claims(self.owner)

    def release_orphans(self) -> None:
        """Work a dead replica claimed goes back to the queue."""
        released = self.store.release_orphans()
        if released:
            log.info("profiler_claims_released", items=released)

    def claim(self) -> list[PendingItem]:
        return self.store.claim(self.owner, limit=self.config.batch_users)

    def process_one_by_one(self, items: list[PendingItem]) -> None:
        """After an unexpected error: each item alone, so only the one that causes it is failed and reported."""
        for item in items:
            if not item.path.exists():
                continue
            try:
                self.process([item])
            except Exception as exc:
                if is_transient(exc):
                    continue  # still claimed: retried with the next round
                request = self.store.load_pending(item)
                user_id = request.user_id if request is not None else ""
                self._fail(item, "worker_error", f"{type(exc).__name__}: {exc}", user_id)

    def process(self, items: list[PendingItem]) -> None:
        skips = self._dlq_skips()
        groups: dict[tuple[str, int], list[tuple[PendingItem, UserInput]]] = defaultdict(list)
        for item in items:
            request = self.store.load_pending(item)
            if request is None:
                self._fail(
                    item, "unreadable_pending", "queued request is missing or not a BuildProfileRequest"
                )
                continue
            try:
                user, _ = from_request(request)
            except GravityError as exc:
                self._fail(item, "invalid_request", str(exc), request.user_id)
                continue
            groups[(request.cohort_id, request.cohort_size)].append((item, user))
        builder = self.builder()
        for (cohort_id, cohort_size), members in groups.items():
            fresh: list[tuple[PendingItem, UserInput]] = []
            for item, user in members:
                stored = self.store.load_profile(user.user_id)
                if (
                    stored is not None
                    and stored.revision == builder.revision(user)
                    and stored.cohort_id == cohort_id
                ):
                    self._publish(stored)  # built before a crash or a Kafka outage: publish, don't rebuild
                    self.store.done(item)
                else:
                    fresh.append((item, user))
            if fresh:
                self._build_and_publish(fresh, cohort_id, cohort_size, skips)

    def _build_and_publish(
        self,
        members: list[tuple[PendingItem, UserInput]],
        cohort_id: str,
        cohort_size: int,
        skips: SkipLog,
    ) -> None:
        try:
            profiles, _ = self.builder().build([u for _, u in members], cohort_id, cohort_size, skips)
        except Unavailable:
            raise
        except Exception as exc:
            if len(members) > 1:  # find the one input that breaks the build; the others go through
                for member in members:
                    self._build_and_publish([member], cohort_id, cohort_size, skips)
                return
            item, user = members[0]
            log.exception("profile_build_failed", user_id=user.user_id)
            self._fail(item, "build_failed", f"{type(exc).__name__}: {exc}", user.user_id)
            return
        for (item, _), profile in zip(members, profiles, strict=True):
            self.store.save_profile(profile)
            self._publish(profile)
            self.store.done(item)

    # ------------------------------------------------------------- helpers
    def _publish(self, profile: profile_pb2.UserProfile) -> None:
        partition, offset = self.bus.publish(self.bus.topics.profiles, profile.user_id, profile)
        self.published += 1
        e = profile.evidence
        log.info(
            "profile_published",
            user_id=profile.user_id,
            partition=partition,
            offset=offset,
            revision=profile.revision[:12],
            cohort_id=profile.cohort_id,
            reviews_read=e.reviews_read,
            reviews_total=e.reviews_total,
            chunks=e.chunks,
            unreadable_stances=e.unreadable_stances,
            unreadable_items=e.unreadable_items,
        )

    def _dlq_skips(self) -> SkipLog:
        return SkipLog(keep=50, on_skip=self.bus.skip_to_dlq)

    def _fail(self, item: PendingItem, reason: str, detail: str, user_id: str = "") -> None:
        self.failed += 1
        moved = self.store.fail(item)
        self.bus.publish_dead_letter(
            dead_letter(SERVICE, reason, detail, source_file=str(moved), key=user_id.encode() or None),
            required=False,  # the request itself is kept in the failed directory
        )

    def _add_catalog_books(self, user: UserInput) -> None:
        """Books a request did not carry come from the service catalog (filled by IngestRecords)."""
        missing = [r.parent_asin for r in user.reviews if r.parent_asin not in user.books]
        if missing:
            user.books.update(self.catalog.get_many(missing))


def _log_skip(skip: Skip) -> None:
    log.warning("record_skipped", reason=skip.reason, detail=skip.detail, source=skip.source, line=skip.line)


def _check_cohort_id(cohort_id: str, field: str) -> None:
    if cohort_id:
        check_segment(field, cohort_id)
