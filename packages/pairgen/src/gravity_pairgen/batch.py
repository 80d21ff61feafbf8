"""`gravity pairs build`: profiles.jsonl -> a dataset directory (shards + manifest + dataset card).

Profiles are streamed, so memory stays flat however many users there are; PrefAlign generation is batched
over ``llm_batch_users`` users at a time. The directory is staged and swapped in at the end, so it always
holds one complete, consistent build. A profile that appears more than once is built from its newest
version (``built_at_ms``); bad lines and unusable profiles are skipped and reported with file and line.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gravity.v1 import profile_pb2
from gravity_core.artifacts import ArtifactStore
from gravity_core.catalog import Catalog
from gravity_core.config import Settings
from gravity_core.datasets import MANIFEST, DatasetManifest, manifest_bytes
from gravity_core.embeddings import Embedder
from gravity_core.errors import InvalidInput
from gravity_core.llm import LLMClient
from gravity_core.names import PREF_ALIGN
from gravity_core.proto_io import read_jsonl
from gravity_core.skips import RecordError, SkipLog
from gravity_pairgen.baselines import PrefAlignGenerator
from gravity_pairgen.builder import PairBuilder, Resources, UserBuild, plan_datasets
from gravity_pairgen.card import CardSources, write_dataset_card
from gravity_pairgen.resources import load_resources
from gravity_pairgen.rows import Omissions
from gravity_pairgen.settings import PairGenSettings
from gravity_pairgen.writer import UserShardWriter


@dataclass
class BuildReport:
    out_dir: Path
    manifest: DatasetManifest
    skips: SkipLog
    omissions: Omissions
    profiles_read: int = 0
    users_built: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    pool_version: str = ""
    llm_calls: int = 0
    llm_cached: int = 0

    def rows(self, dataset: str) -> int:
        entry = self.manifest.datasets.get(dataset)
        return entry.rows if entry else 0

    @property
    def total_rows(self) -> int:
        return sum(e.rows for e in self.manifest.datasets.values())


def _check_out_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise InvalidInput(
            "--out", f"{out} exists and is not a pairs dataset directory; choose a new or empty directory"
        )


def _chunks(
    items: Iterable[tuple[int, profile_pb2.UserProfile]], size: int
) -> Iterator[list[tuple[int, profile_pb2.UserProfile]]]:
    chunk: list[tuple[int, profile_pb2.UserProfile]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def build_dataset(
    settings: Settings,
    cfg: PairGenSettings,
    profiles: str | Path,
    out: str | Path,
    *,
    catalog: Catalog | None = None,
    embedder: Embedder | None = None,
    llm: LLMClient | None = None,
    resources: Resources | None = None,
    cohort_id: str | None = None,
    on_progress: Callable[[str], None] | None = None,
    progress_bar: Callable[[Iterable, int | None, str], Iterable] | None = None,
) -> BuildReport:
    """Build every dataset of ``cfg`` for the profiles in ``profiles`` into directory ``out``.

    ``resources`` (already loaded for these plans) lets a caller building several times load them once.
    """
    profiles_path, out_dir = Path(profiles), Path(out).expanduser().resolve()
    if not profiles_path.is_file():
        raise InvalidInput("--profiles", f"{profiles_path} does not exist")
    _check_out_dir(out_dir)
    if catalog is None and resources is None and cfg.meta and not Path(cfg.meta).expanduser().is_file():
        raise InvalidInput("--meta", f"{cfg.meta} does not exist")
    say = on_progress or (lambda _m: None)
    started = time.perf_counter()
    skips, omissions = SkipLog(), Omissions()
    plans = plan_datasets(cfg)
    if resources is None:
        resources = load_resources(
            settings, cfg, plans, skips, catalog=catalog, embedder=embedder, on_progress=say
        )
    builder = PairBuilder(resources, cfg, plans)
    if builder.needs_catalog and not resources.catalog_size:
        raise InvalidInput(
            "--meta", f"the catalog {resources.catalog_source} has no books (empty or unreadable)"
        )
    generator = None
    if any(p.name == PREF_ALIGN for p in plans):
        if llm is None:
            from gravity_core.llm import llm_for_role

            llm = llm_for_role(settings, "author")
        author = settings.llm.role("author")
        generator = PrefAlignGenerator(
            llm, cfg.pref_align_max_tokens, cfg.description_max_chars, author.temperature, cfg.seed
        )
    report = BuildReport(out_dir, DatasetManifest(), skips, omissions)
    report.pool_version = resources.pool.version if resources.pool else ""
    report.timings["setup"] = time.perf_counter() - started
    manifest = report.manifest
    manifest.seed, manifest.recipe = cfg.seed, cfg.recipe
    manifest.evaluation = settings.evaluation
    manifest.base_model = settings.llm.role("writer").model
    manifest.created_at_ms = int(time.time() * 1000)
    for plan in plans:
        manifest.datasets[plan.name] = plan.entry()
    newest: dict[str, int] = {}
    cohorts: Counter[str] = Counter()
    llm_calls_before = llm.usage.calls if llm is not None else 0
    cached_before = llm.usage.cached_calls if llm is not None else 0
    t_build = t_llm = t_write = 0.0
    with open(profiles_path, "rb") as f:
        lines = sum(1 for line in f if line.strip())
    records: Iterable[Any] = read_jsonl(profiles_path, profile_pb2.UserProfile, skips)
    if progress_bar is not None:
        records = progress_bar(records, lines, "profiles")

    parent = ArtifactStore(out_dir.parent)
    with parent.staged_dir(out_dir.name) as stage:
        store = ArtifactStore(stage)
        writer = UserShardWriter(
            store,
            "",
            plans,
            {"gravity.seed": str(cfg.seed), "gravity.pool_version": report.pool_version},
            durable=False,
        )
        for chunk in _chunks(records, cfg.llm_batch_users):
            t0 = time.perf_counter()
            builds: list[UserBuild] = []
            for number, profile in chunk:
                report.profiles_read += 1
                previous = newest.get(profile.user_id)
                if previous is not None and previous > profile.built_at_ms:
                    skips.add(
                        "stale_duplicate",
                        f"an earlier line has a newer profile of {profile.user_id!r}",
                        str(profiles_path),
                        number,
                        profile.user_id,
                    )
                    continue
                try:
                    build = builder.build(profile)
                except RecordError as exc:
                    skips.add(exc.reason, exc.detail, str(profiles_path), number, profile.user_id)
                    continue
                newest[profile.user_id] = profile.built_at_ms
                cohorts[profile.cohort_id] += 1
                builds.append(build)
            t1 = time.perf_counter()
            if generator is not None:
                generator.run(
                    [b.pref_align for b in builds if b.pref_align is not None],
                    omissions,
                    (lambda it, n: progress_bar(it, n, "PrefAlign batches")) if progress_bar else None,
                )
            t2 = time.perf_counter()
            for build in builds:
                try:
                    builder.finish(build)
                except RecordError as exc:  # e.g. a row that would use a held-out evaluation book
                    skips.add(exc.reason, exc.detail, str(profiles_path), record_id=build.user_id)
                    newest.pop(build.user_id, None)
                    # an earlier profile of this user may have written shards: they go too
                    for stale in writer.record(manifest, None, build.user_id, writer.write(None)):
                        stale.unlink(missing_ok=True)
                    continue
                omissions.merge(build.omissions)
                for stale in writer.record(manifest, build, build.user_id, writer.write(build)):
                    stale.unlink(missing_ok=True)  # a newer profile of this user has no rows for it
            t3 = time.perf_counter()
            t_build, t_llm, t_write = t_build + t1 - t0, t_llm + t2 - t1, t_write + t3 - t2
        manifest.cohort_id = cohort_id or _cohort_name(cohorts)
        manifest.cohort_size = len(newest)
        report.users_built = len(newest)
        store.write_bytes(MANIFEST, manifest_bytes(manifest))
        sources = CardSources.of_build(settings, cfg, resources.catalog_source, list(manifest.datasets))
        write_dataset_card(store, "", manifest, sources, durable=False)
    if llm is not None:
        report.llm_calls = llm.usage.calls - llm_calls_before
        report.llm_cached = llm.usage.cached_calls - cached_before
    report.timings.update(build=t_build, llm=t_llm, write=t_write, total=time.perf_counter() - started)
    return report


def _cohort_name(cohorts: Counter[str]) -> str:
    """The profiles' cohort when they agree, else "batch"."""
    named = [c for c in cohorts if c]
    return named[0] if len(named) == 1 and not cohorts.get("") else "batch"
