"""What one pairgen process holds and does (paper §3.2, App. B): profiles -> preference pairs -> shards.

:class:`PairGenApp` loads the catalog, category index and item banks, builds one user's rows for every
configured dataset, writes one shard per dataset under ``<output_prefix>/<cohort_id>/<dataset>/<user>.parquet``,
the cohort's manifest and its dataset card (README.md, gravity_pairgen.card; all atomic, under a per-cohort
lock), and publishes one ShardRef per (dataset, user). The gRPC servicer and the profile consumer of
:mod:`gravity_pairgen.service` call it; neither holds logic.

A profile that cannot be used (no stances, no traits, an interest that is not a catalog category, an
empty catalog) goes to the DLQ with the reason and leaves its cohort (see :mod:`gravity_pairgen.manifests`),
so the cohort still completes; its ShardRefs carry zero rows and no URI.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

from gravity.v1 import pairs_pb2, profile_pb2
from gravity_core.artifacts import ArtifactStore
from gravity_core.bus import Bus, dead_letter, decode
from gravity_core.bus.serde import COHORT_HEADER, header
from gravity_core.catalog import Catalog
from gravity_core.config import Settings
from gravity_core.datasets import DatasetManifest
from gravity_core.embeddings import Embedder
from gravity_core.errors import ConfigError, GravityError, InvalidInput, NotFound, Unavailable, is_transient
from gravity_core.grpc import require_field
from gravity_core.identifiers import is_segment
from gravity_core.llm import LLMClient
from gravity_core.logging import get_logger
from gravity_core.names import PREF_ALIGN
from gravity_core.skips import RecordError, SkipLog
from gravity_pairgen.baselines import PrefAlignGenerator
from gravity_pairgen.builder import DatasetPlan, PairBuilder, Resources, UserBuild, plan_datasets
from gravity_pairgen.card import CardSources, write_dataset_card
from gravity_pairgen.manifests import CohortAccounting, ManifestStore, cohort_of
from gravity_pairgen.recipes import normalize_recipe
from gravity_pairgen.resources import catalog_path, load_resources
from gravity_pairgen.settings import PairGenSettings
from gravity_pairgen.writer import UserShardWriter, WrittenShard

log = get_logger(__name__)
SERVICE = "pairgen"

# Which request field a rejected profile's problem lies in (gRPC INVALID_ARGUMENT names it).
_FIELD_FOR_REASON = {
    "missing_user_id": "profile.user_id",
    "no_interests": "profile.interests",
    "unknown_category": "profile.interests",
    "no_stances": "profile.values",
    "no_traits": "profile.personality.traits",
    "bad_cohort_id": "profile.cohort_id",
}


class PairGenApp:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        cfg: PairGenSettings | None = None,
        *,
        catalog: Catalog | None = None,
        embedder: Embedder | None = None,
        llm: LLMClient | None = None,
    ) -> None:
        self.settings = settings
        self.cfg = cfg or settings.section("pairgen", PairGenSettings)
        self.plans = plan_datasets(self.cfg)
        self.bus = bus
        self.store = ArtifactStore.from_settings(settings)
        self.manifests = ManifestStore(self.store, self.cfg.output_prefix)
        self.base_model = settings.llm.role("writer").model
        self._catalog, self._embedder, self._llm = catalog, embedder, llm
        self.resources: Resources | None = None
        self.generator: PrefAlignGenerator | None = None
        self.load_error: str | None = None
        self.loaded = threading.Event()
        self.processed = 0
        self.rejected = 0

    # -------------------------------------------------------------- loading
    def load(self, stop: threading.Event) -> None:
        """Load the resources, retrying while a dependency is late; sets ``loaded``, or ``load_error`` when the
        configuration or input is bad (the service then stays up, NOT_SERVING, with the reason)."""
        skips = SkipLog()
        delay = 1.0
        while not stop.is_set():
            try:
                self.resources = load_resources(
                    self.settings, self.cfg, self.plans, skips, catalog=self._catalog, embedder=self._embedder
                )
                if any(p.name == PREF_ALIGN for p in self.plans):
                    self.generator = self._pref_align_generator()
                break
            except Exception as exc:
                if not is_transient(exc) or isinstance(exc, ConfigError):
                    # a bad configuration or input: stay up, NOT_SERVING, with the reason
                    self.load_error = f"{type(exc).__name__}: {exc}"
                    log.error("pairgen_load_failed", error=self.load_error)
                    return
                # a dependency (broker, model endpoint, shared volume) is late: try again
                log.warning("pairgen_load_retrying", error=str(exc), retry_in_s=delay)
                stop.wait(delay)
                delay = min(delay * 2, 60.0)
        if stop.is_set():
            return
        if skips.total:
            for line in skips.summary_lines():
                log.warning("pairgen_resource_skips", detail=line)
        self.loaded.set()

    def _pref_align_generator(self) -> PrefAlignGenerator:
        llm = self._llm
        if llm is None:
            from gravity_core.llm import llm_for_role

            llm = llm_for_role(self.settings, "author")
        author = self.settings.llm.role("author")
        return PrefAlignGenerator(
            llm,
            self.cfg.pref_align_max_tokens,
            self.cfg.description_max_chars,
            author.temperature,
            self.cfg.seed,
        )

    # ------------------------------------------------------------ the work
    def _require_loaded(self) -> Resources:
        if self.resources is None:
            if self.load_error:
                raise GravityError(f"pairgen could not load its resources: {self.load_error}")
            raise Unavailable("pairgen is still loading its catalog, category index and item banks")
        return self.resources

    def build_user(self, profile: profile_pb2.UserProfile, plans: list[DatasetPlan]) -> UserBuild:
        """The user's rows for ``plans`` (PrefAlign generated); raises RecordError for an unusable profile."""
        builder = PairBuilder(self._require_loaded(), self.cfg, plans)
        build = builder.build(profile)
        if build.pref_align is not None:
            if self.generator is None:
                self.generator = self._pref_align_generator()
            self.generator.run([build.pref_align], build.omissions)
        return builder.finish(build)

    def prepare(self, profiles: list[profile_pb2.UserProfile]) -> None:
        """Generate the PrefAlign descriptions of several profiles in one batch before they are handled one
        by one (the consumer's ``prepare``): one reader's four descriptions leave most of the model's batch
        empty. A profile that cannot be built is skipped here and rejected when it is handled."""
        if self.generator is None or self.resources is None:
            return
        builder = PairBuilder(self.resources, self.cfg, self.plans)
        jobs = []
        for profile in profiles:
            try:
                job = builder.pref_align_job(profile)
            except RecordError:
                continue
            if job is not None and job.books:
                jobs.append(job)
        if len(jobs) > 1:
            generated = self.generator.prefetch(jobs)
            log.info("pref_align_prefetched", profiles=len(jobs), descriptions=generated)

    def awaits_cohort(self, profiles: list[profile_pb2.UserProfile]) -> bool:
        """Whether members of these profiles' cohorts are still to come (the consumer's ``prepare_awaits``):
        neither among ``profiles`` nor accounted for in the cohort's manifest. Several profiler replicas
        publish one cohort's profiles seconds apart; waiting for the rest keeps their PrefAlign descriptions
        in one batch."""
        arrived: dict[str, set[str]] = {}
        sizes: dict[str, int] = {}
        for profile in profiles:
            try:
                cohort = cohort_of(profile.cohort_id)
            except RecordError:
                continue
            arrived.setdefault(cohort, set()).add(profile.user_id)
            sizes[cohort] = max(sizes.get(cohort, 0), profile.cohort_size)
        for cohort, users in arrived.items():
            accounting = self.manifests.read_accounting(cohort)
            size = accounting.declared_cohort_size or sizes[cohort]
            if len(users | accounting.members_seen(self.manifests.read(cohort))) < size:
                return True
        return False

    def write_user(
        self,
        profile: profile_pb2.UserProfile,
        plans: list[DatasetPlan],
        build: UserBuild | None,
        rejected: str = "",
    ) -> list[pairs_pb2.ShardRef]:
        """Write the user's shards and the cohort's manifest; the ShardRefs to publish. ``build`` None with
        ``rejected`` (the reason) records a dead-lettered profile: no shards, and out of the cohort size."""
        cohort = cohort_of(profile.cohort_id)
        user = profile.user_id
        pool = self.resources.pool.version if self.resources and self.resources.pool else ""
        writer = UserShardWriter(
            self.store,
            self.manifests.dir_rel(cohort),
            plans,
            {"gravity.seed": str(self.cfg.seed), "gravity.pool_version": pool},
        )
        with self.manifests.locked(cohort):
            manifest, accounting = self.manifests.load(cohort)
            accounting.declare(profile.cohort_size, user)
            if build is None:
                accounting.rejected[user] = rejected
            else:
                accounting.rejected.pop(user, None)
            written = writer.write(build)
            stale = writer.record(manifest, build, user, written)
            for w in written:
                accounting.mark_empty(w.plan.name, user, build is not None and w.entry is None)
            manifest.seed, manifest.recipe, manifest.base_model = (
                self.cfg.seed,
                self.cfg.recipe,
                self.base_model,
            )
            manifest.evaluation = self.settings.evaluation
            uri, sha = self.manifests.save(cohort, manifest, accounting)
            for path in stale:
                path.unlink(missing_ok=True)
            catalog = self.resources.catalog_source if self.resources else str(catalog_path(self.cfg))
            sources = CardSources.of_build(self.settings, self.cfg, catalog, list(manifest.datasets))
            write_dataset_card(self.store, self.manifests.dir_rel(cohort), manifest, sources)
        return [self._ref(cohort, user, w, manifest, accounting, uri, sha) for w in written]

    def _ref(
        self,
        cohort: str,
        user: str,
        w: WrittenShard,
        manifest: DatasetManifest,
        accounting: CohortAccounting,
        uri: str,
        sha: str,
    ) -> pairs_pb2.ShardRef:
        dataset_id = f"{cohort}/{w.plan.name}"
        return pairs_pb2.ShardRef(
            shard_id=f"{dataset_id}/{user}",
            dataset_id=dataset_id,
            kind=w.plan.kind,
            user_id=user,
            uri=w.uri,
            sha256=w.entry.sha256 if w.entry else "",
            row_count=w.entry.rows if w.entry else 0,
            counts_by_facet=w.entry.counts_by_facet if w.entry else {},
            manifest_uri=uri,
            manifest_sha256=sha,
            dataset_complete=accounting.complete(manifest, w.plan.name),
            cohort_size=manifest.cohort_size,
            recipe=w.plan.recipe.name,
        )

    def publish(self, refs: list[pairs_pb2.ShardRef]) -> None:
        for ref in refs:
            self.bus.publish(self.bus.topics.shards, ref.shard_id, ref)

    def handle(self, profile: profile_pb2.UserProfile, record: Any) -> None:
        if not profile.user_id.strip():
            raise RecordError("missing_user_id", "profile has no user_id")
        cohort_of(profile.cohort_id)  # an unusable cohort id cannot be placed anywhere: DLQ via the loop
        build: UserBuild | None = None
        try:
            build = self.build_user(profile, self.plans)
        except RecordError as exc:
            self.rejected += 1
            self.bus.publish_dead_letter(
                dead_letter(
                    SERVICE,
                    exc.reason,
                    exc.detail,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    payload=record.value,
                )
            )
            refs = self.write_user(profile, self.plans, None, rejected=exc.reason)
        else:
            refs = self.write_user(profile, self.plans, build)
        self.publish(refs)
        self.processed += 1
        log.info(
            "pairs_built",
            user_id=profile.user_id,
            cohort=refs[0].dataset_id.split("/")[0] if refs else "",
            rows={r.dataset_id.rsplit("/", 1)[-1]: r.row_count for r in refs},
            rejected=build is None,
        )

    def account_rejected(self, record: Any, reason: str) -> None:
        """A profile record the consumer gives up on (no user id, undecodable, a failed write) still counts
        in its cohort — as rejected — so the cohort completes and training starts without it."""
        cohort = header(record.headers, COHORT_HEADER)
        if not cohort:
            try:
                cohort = decode(record.value, profile_pb2.UserProfile, record.headers).cohort_id
            except RecordError:
                cohort = ""
        if not cohort or not is_segment(cohort):
            log.warning("rejected_profile_without_cohort", reason=reason, offset=record.offset)
            return
        key = (record.key or b"").decode(errors="replace").strip()
        member = key or f"record:{record.topic}/{record.partition}/{record.offset}"
        stand_in = profile_pb2.UserProfile(user_id=member, cohort_id=cohort)
        self.publish(self.write_user(stand_in, self.plans, None, rejected=reason))

    def plans_for(self, recipe_name: str) -> list[DatasetPlan]:
        if not recipe_name.strip():
            return self.plans
        try:
            canonical = normalize_recipe(recipe_name)
        except ValueError as exc:
            raise InvalidInput("recipe", str(exc)) from None
        return self.plans if canonical == self.cfg.recipe else plan_datasets(self.cfg, canonical)

    # -------------------------------------------------------------- requests
    def build_pairs(
        self, request: pairs_pb2.BuildPairsRequest, check_deadline: Callable[[], None]
    ) -> pairs_pb2.BuildPairsResponse:
        """One profile's shards, answered with its ShardRefs; ``check_deadline`` runs before the build."""
        require_field(request, "profile.user_id")
        check_deadline()
        plans = self.plans_for(request.recipe)
        try:
            cohort_of(request.profile.cohort_id)
            build = self.build_user(request.profile, plans)
        except RecordError as exc:
            if exc.reason == "empty_catalog":
                raise GravityError(exc.detail) from None
            raise InvalidInput(_FIELD_FOR_REASON.get(exc.reason, "profile"), exc.detail) from None
        refs = self.write_user(request.profile, plans, build)
        if not request.skip_publish:
            self.publish(refs)
        return pairs_pb2.BuildPairsResponse(shards=refs)

    def get_manifest(self, request: pairs_pb2.GetManifestRequest) -> pairs_pb2.GetManifestResponse:
        dataset_id = require_field(request, "dataset_id")
        cohort_part, _, dataset = dataset_id.partition("/")
        try:
            cohort = cohort_of(cohort_part)
        except RecordError as exc:
            raise InvalidInput("dataset_id", exc.detail) from None
        path = self.store.path(self.manifests.rel(cohort))
        if not path.is_file():
            raise NotFound("dataset_id", f"no dataset manifest for cohort {cohort!r}")
        data = path.read_bytes()
        if dataset:
            DatasetManifest.model_validate_json(data).dataset(dataset)  # NotFound naming the datasets it has
        return pairs_pb2.GetManifestResponse(
            manifest_json=data.decode("utf-8"),
            manifest_uri=self.store.uri(path),
            manifest_sha256=hashlib.sha256(data).hexdigest(),
        )
