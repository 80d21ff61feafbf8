"""`gravity bench pairgen`: pair-building throughput and memory, streaming build vs a naive in-memory one.

Synthetic readers over the bundled sample catalog (3-5 genres, a stance on all 150 statements, mostly
non-neutral, five trait levels, 20 reviews each) and a synthetic Big5Chat-format bank next to the shipped
one, so each reader gets about 900 GRAVITY pairs (interests + up to 450 values + 300 personality). No LLM
calls: PrefAlign is excluded. Each configuration runs in a forked child so its peak RSS is its own; the
shared resources (catalog index, category embeddings, pool, bank) are loaded once before forking.

* streaming: :func:`gravity_pairgen.batch.build_dataset` (profiles streamed, one shard per user written
  as soon as it is built);
* naive: the same pairs, but every row of every user kept in memory as dicts and written at the end
  from one pandas DataFrame grouped by user.
"""

from __future__ import annotations

import csv
import multiprocessing as mp
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click

from gravity_core.cli.common import CliContext, pass_cli, summary_table
from gravity_core.names import GRAVITY, GRAVITY_SFT, USER_SFT
from gravity_core.names import TRAITS as OCEAN

DATASETS = [GRAVITY, GRAVITY_SFT, USER_SFT]


class PeakRss:
    """Samples this process's RSS in a thread; ``peak_mb`` and ``start_mb`` after :meth:`stop`."""

    def __init__(self, every_s: float = 0.02) -> None:
        import psutil

        self._proc = psutil.Process()
        self.start_mb = self._proc.memory_info().rss / 2**20
        self.peak_mb = self.start_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)
        self._thread.start()

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)


def synthetic_profiles(n: int, catalog: Any, seed: int = 7) -> list[Any]:
    from gravity.v1 import common_pb2, profile_pb2
    from gravity_core.values import load_seed_statements

    rng = random.Random(seed)
    genres = sorted(catalog.genres())
    books_by_genre = {g: [b.parent_asin for b in catalog.top_rated(g, 100)] for g in genres}
    statements = load_seed_statements()
    stances = (
        [profile_pb2.STANCE_SUPPORT] * 9 + [profile_pb2.STANCE_OPPOSE] * 9 + [profile_pb2.STANCE_NEUTRAL]
    )
    traits = [
        profile_pb2.TRAIT_OPENNESS,
        profile_pb2.TRAIT_CONSCIENTIOUSNESS,
        profile_pb2.TRAIT_EXTRAVERSION,
        profile_pb2.TRAIT_AGREEABLENESS,
        profile_pb2.TRAIT_NEUROTICISM,
    ]
    countries = ["USA", "Brazil", "India", "Japan"]
    out = []
    for i in range(n):
        mine = rng.sample(genres, rng.randint(3, 5))
        shares = sorted((rng.random() + 0.5 for _ in mine), reverse=True)
        reviewed = [a for g in mine for a in rng.sample(books_by_genre[g], min(2, len(books_by_genre[g])))]
        user = f"BENCH{i:05d}"
        out.append(
            profile_pb2.UserProfile(
                user_id=user,
                demographics=common_pb2.Demographics(
                    age_group=common_pb2.DemographicField(
                        value=rng.choice(["young", "middle-aged", "senior"])
                    ),
                    gender=common_pb2.DemographicField(value=rng.choice(["female", "male"])),
                    country=common_pb2.DemographicField(value=rng.choice(countries)),
                ),
                interests=[
                    profile_pb2.Interest(genre=g, share=s / sum(shares))
                    for g, s in zip(mine, shares, strict=True)
                ],
                values=[
                    profile_pb2.ValueStance(statement_id=s.id, stance=rng.choice(stances), statement=s.text)
                    for s in statements
                ],
                value_summary="Cares about family and fairness; values hard work and long-term planning.",
                personality=profile_pb2.Personality(
                    traits=[
                        profile_pb2.TraitScore(
                            trait=t,
                            level=rng.choice([profile_pb2.TRAIT_LEVEL_LOW, profile_pb2.TRAIT_LEVEL_HIGH]),
                        )
                        for t in traits
                    ]
                ),
                reviews=[
                    common_pb2.Review(
                        user_id=user, parent_asin=a, rating=4, text=f"Review {k} of {a}: I liked it."
                    )
                    for k, a in enumerate(reviewed)
                ],
                reviewed_asins=reviewed,
                cohort_id="bench",
                cohort_size=n,
                built_at_ms=1,
            )
        )
    return out


def synthetic_big5chat(path: Path, per_trait: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["train_input", "trait", "high_output", "low_output"])
        for trait in OCEAN:
            for i in range(per_trait):
                w.writerow(
                    [
                        f"Hey, quick question #{i} about the weekend plans — what do you think we should do?",
                        trait,
                        f"A {trait}-high reply number {i}, eager and detailed.",
                        f"A {trait}-low reply number {i}, brief and reserved.",
                    ]
                )
    return path


_job: tuple[Any, tuple] | None = None  # set before forking; a forked child runs it


def _child(queue: Any) -> None:
    assert _job is not None
    fn, args = _job
    queue.put(fn(args))


def _in_child(ctx: Any, fn: Any, args: tuple) -> dict[str, float]:
    global _job
    _job = (fn, args)
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    result = queue.get()
    child.join()
    return result


def _own_catalog(resources: Any) -> Any:
    """A fresh SQLite connection for this process (connections must not cross a fork)."""
    from gravity_core.catalog import Catalog
    from gravity_core.targets import EvaluationPool
    from gravity_pairgen.interests import BookRanker

    resources.catalog = Catalog.open(resources.catalog.source)
    resources.evaluation = EvaluationPool(resources.catalog, resources.evaluation.plan)
    resources.ranker = BookRanker(resources.catalog, resources.evaluation)
    return resources


def _streaming(args: tuple) -> dict[str, float]:
    settings, cfg, resources, profiles, out = args
    from gravity_pairgen.batch import build_dataset

    resources = _own_catalog(resources)
    rss = PeakRss()
    report = build_dataset(settings, cfg, profiles, out, resources=resources)
    rss.stop()
    seconds = report.timings["build"] + report.timings["write"]
    return {
        "pairs": report.rows(GRAVITY),
        "rows": report.total_rows,
        "seconds": seconds,
        "peak_mb": rss.peak_mb,
        "growth_mb": rss.peak_mb - rss.start_mb,
    }


def _naive(args: tuple) -> dict[str, float]:
    """Everything in memory: one dict per row for all users, then one DataFrame written per user."""
    _settings, cfg, resources, profiles, out = args
    import pandas as pd

    from gravity.v1 import profile_pb2
    from gravity_core.proto_io import read_jsonl
    from gravity_core.skips import SkipLog
    from gravity_pairgen.builder import PairBuilder, plan_datasets

    resources = _own_catalog(resources)
    rss = PeakRss()
    started = time.perf_counter()
    plans = plan_datasets(cfg)
    builder = PairBuilder(resources, cfg, plans)
    rows: list[dict[str, str]] = []
    for _, profile in read_jsonl(profiles, profile_pb2.UserProfile, SkipLog()):
        build = builder.build(profile)
        for dataset, pairs in build.rows.items():
            for p in pairs:
                rows.append(
                    {
                        "dataset": dataset,
                        "pair_id": p.pair_id,
                        "user_id": profile.user_id,
                        "facet": p.facet,
                        "trait": p.trait,
                        "prompt": p.prompt,
                        "chosen": p.chosen,
                        "rejected": p.rejected,
                    }
                )
    frame = pd.DataFrame(rows)
    for (dataset, user), group in frame.groupby(["dataset", "user_id"]):
        target = Path(out) / str(dataset) / f"{user}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        group.drop(columns=["dataset"]).to_parquet(target, index=False)
    seconds = time.perf_counter() - started
    rss.stop()
    return {
        "pairs": int((frame["dataset"] == GRAVITY).sum()),
        "rows": len(frame),
        "seconds": seconds,
        "peak_mb": rss.peak_mb,
        "growth_mb": rss.peak_mb - rss.start_mb,
    }


@click.command()
@click.option("--users", default=400, show_default=True, help="Readers in the large run.")
@click.option("--small", default=100, show_default=True, help="Readers in the small run (memory comparison).")
@click.option("--skip-naive", is_flag=True, help="Only the streaming build.")
@pass_cli
def run(cli: CliContext, users: int, small: int, skip_naive: bool) -> None:
    """Pairs/s and peak RSS of the streaming build at SMALL vs USERS readers, against a naive in-memory build."""
    from gravity_core.catalog import Catalog
    from gravity_core.proto_io import write_jsonl
    from gravity_core.sample import sample_dir
    from gravity_core.skips import SkipLog
    from gravity_pairgen.builder import plan_datasets
    from gravity_pairgen.resources import load_resources
    from gravity_pairgen.settings import PairGenSettings

    settings = cli.settings
    with tempfile.TemporaryDirectory(prefix="gravity-bench-pairgen-") as tmp:
        root = Path(tmp)
        bank = synthetic_big5chat(root / "big5chat.csv", per_trait=40)
        cfg = PairGenSettings(datasets=DATASETS, big5chat_files=[str(bank)], items_per_trait=60)
        started = time.perf_counter()
        catalog = Catalog.open(str(sample_dir() / "meta_Books.jsonl"))
        resources = load_resources(settings, cfg, plan_datasets(cfg), SkipLog(), catalog=catalog)
        files = {}
        for n in sorted({small, users}):
            files[n] = root / f"profiles-{n}.jsonl"
            write_jsonl(synthetic_profiles(n, catalog), files[n])
        click.echo(
            f"setup {time.perf_counter() - started:.1f}s: {len(catalog)} books, {len(resources.categories or ())} "
            f"categories, pool {resources.pool.version if resources.pool else '-'}, "
            f"bank {resources.bank.size if resources.bank else 0} items; datasets {', '.join(DATASETS)}"
        )
        # Forked children inherit the loaded resources; they never call into torch.
        ctx = mp.get_context("fork")
        results = []
        modes = [("streaming", _streaming)] + ([] if skip_naive else [("naive in-memory", _naive)])
        for label, fn in modes:
            for n in sorted({small, users}):
                out = root / f"out-{label.split()[0]}-{n}"
                r = _in_child(ctx, fn, (settings, cfg, resources, str(files[n]), str(out)))
                results.append((label, n, r))
    rows = [
        (
            label,
            n,
            int(r["pairs"]),
            round(r["pairs"] / n),
            int(r["rows"]),
            round(r["seconds"], 2),
            f"{r['pairs'] / r['seconds']:,.0f}",
            f"{r['rows'] / r['seconds']:,.0f}",
            round(r["peak_mb"]),
            round(r["growth_mb"]),
        )
        for label, n, r in results
    ]
    click.echo(
        summary_table(
            "gravity bench pairgen (no LLM calls)",
            rows,
            headers=(
                "build",
                "users",
                "gravity pairs",
                "pairs/user",
                "rows (all datasets)",
                "seconds",
                "pairs/s",
                "rows/s",
                "peak RSS MB",
                "RSS growth MB",
            ),
        )
    )
    by = {(label, n): r for label, n, r in results}
    big = by[("streaming", users)]
    click.echo(f"streaming at {users} users: {big['pairs'] / big['seconds']:,.0f} pairs/s (goal >= 5,000)")
    if small != users:
        little = by[("streaming", small)]
        click.echo(
            f"streaming RSS growth: {little['growth_mb']:.0f} MB at {small} users vs {big['growth_mb']:.0f} MB at {users}"
        )
        if not skip_naive:
            n_small, n_big = by[("naive in-memory", small)], by[("naive in-memory", users)]
            click.echo(
                f"naive RSS growth: {n_small['growth_mb']:.0f} MB at {small} users vs {n_big['growth_mb']:.0f} MB at {users}; "
                f"streaming is {n_big['seconds'] / big['seconds']:.2f}x the naive speed at {users} users"
            )
