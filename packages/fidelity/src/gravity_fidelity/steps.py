"""The four fidelity steps as the commands and the bench run them: each reads the planted directory, runs
the real stage, writes its section of the report and returns it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gravity_core import names
from gravity_core.config import Settings
from gravity_core.llm import llm_for_role
from gravity_fidelity.learning import LearningOptions, adapter_path, run_learning
from gravity_fidelity.plant import PlantOptions, PlantResult, plant
from gravity_fidelity.recovery import SUMMARY_TOKENS, meta_file, role_variants, run_profiler, score_profiles
from gravity_fidelity.report import write_report, write_section
from gravity_fidelity.truth import read_manifest, read_truths

Echo = Callable[[str], None]
Progress = Callable[[Iterable, int | None, str], Iterable]


LEARNING_DIR = "learning"


def gravity_adapter_dir(out: Path) -> Path:
    """The GRAVITY adapter ``gravity fidelity train --out OUT`` trained (the persona swaps' ``gravity`` method)."""
    return adapter_path(out / LEARNING_DIR, names.GRAVITY)


def _no_progress(items: Iterable, total: int | None, desc: str) -> Iterable:
    return items


def plant_step(
    settings: Settings, options: PlantOptions, out: Path, meta: Path | None, author_llm: bool, echo: Echo
) -> PlantResult:
    rewriter = None
    if author_llm:
        from gravity_fidelity.rewrite import rewrite_book_talk

        llm = llm_for_role(settings, "author")
        echo(f"the author LLM ({llm.info.backend}:{llm.info.name}) writes the book talk of every review")
        rewriter = lambda drafts: rewrite_book_talk(llm, drafts)  # noqa: E731
    return plant(options, out, meta, rewriter)


def recovery_step(
    settings: Settings,
    truth_dir: Path,
    out: Path,
    echo: Echo,
    progress: Progress = _no_progress,
    summary_tokens: int | None = SUMMARY_TOKENS,
) -> list[dict[str, Any]]:
    """The real profiler on the planted reviews, once per annotator (embedded, and the configured one)."""
    truths = read_truths(truth_dir)
    manifest = read_manifest(truth_dir)
    countries = list(manifest.options.get("countries") or [])  # type: ignore[call-overload]
    sections = []
    for label, variant in role_variants(settings, ["annotator", "author"]):
        echo(f"profiling {len(truths)} planted readers with {label} (gravity profile build's batch path)")
        slug = label.replace(":", "-").replace("/", "-")
        profiles, seconds, _ = run_profiler(
            variant, truth_dir, out / f"profiles-{slug}.jsonl", progress, summary_tokens
        )
        recovery = score_profiles(label, truths, profiles, countries, manifest.seed)
        recovery.seconds = seconds
        sections.append(recovery.to_dict())
    write_section(out, "recovery", sections)
    write_report(out, truth_dir)
    return sections


def quick_recovery(settings: Settings, out: Path, readers: int = 2, seed: int = 13) -> dict[str, Any]:
    """Recovery on a few small planted readers (4 reviews, 4 expressed statements each) with the embedded
    annotator: about a minute of CPU per reader, for a demo's one-line check. Returns the recovery section
    (``report.recovery_line`` prints it)."""
    options = PlantOptions(
        readers=readers, seed=seed, statements_per_reader=4, items_per_trait=1, min_genres=2, max_genres=2,
        books_per_genre=2, other_reviews=0, withhold=1,
    )  # fmt: skip
    plant(options, out / "planted")
    return recovery_step(settings, out / "planted", out, lambda _: None, summary_tokens=16)[0]


def learning_step(
    settings: Settings,
    truth_dir: Path,
    out: Path,
    options: LearningOptions,
    echo: Echo,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    truths = read_truths(truth_dir)
    report = run_learning(settings, truths, meta_file(truth_dir), out / LEARNING_DIR, options, echo, progress)
    data = report.to_dict()
    write_section(out, "learning", data)
    write_report(out, truth_dir)
    return data


def swap_step(
    settings: Settings,
    truth_dir: Path,
    out: Path,
    method: str,
    max_new_tokens: int,
    adapter_dir: Path | None,
    echo: Echo,
    progress: Progress = _no_progress,
    books_per_reader: int = 2,
) -> list[dict[str, Any]]:
    """Descriptions for own vs other reader (one method), judged by the embedded and the configured judge."""
    from gravity_core.catalog import Catalog
    from gravity_core.skips import SkipLog
    from gravity_fidelity.swap import judge_swaps, swap_plan, write_descriptions
    from gravity_judge.judging import Judge
    from gravity_judge.settings import JudgeSettings

    truths = read_truths(truth_dir)
    seed = read_manifest(truth_dir).seed
    meta = meta_file(truth_dir)
    catalog = Catalog.open(meta, SkipLog())
    try:
        plan = swap_plan(truths, catalog, settings, seed, books_per_reader)
    finally:
        catalog.close()
    echo(
        f"writing {2 * len(plan)} {method} descriptions ({len(truths)} readers, {len(plan)} books, for the reader "
        "and for another reader)"
    )
    started = time.perf_counter()
    units, missing = write_descriptions(settings, plan, meta, method, max_new_tokens, adapter_dir)
    if missing:
        echo(
            f"{len(missing)} units left out: a description could not be written ({', '.join(missing[:3])} ...)"
        )
    generation_s = time.perf_counter() - started
    judge_settings = settings.section("judge", JudgeSettings)
    sections = []
    for label, variant in role_variants(settings, ["judge"]):
        echo(f"judging {len(units)} persona swaps with {label}, both orders")
        report = judge_swaps(
            Judge(llm_for_role(variant, "judge"), judge_settings), units, truths, label, progress
        )
        data = report.to_dict()
        data["generation_seconds"] = round(generation_s, 1)
        data["units_without_descriptions"] = missing
        sections.append(data)
    write_section(out, "swap", sections)
    write_report(out, truth_dir)
    return sections
