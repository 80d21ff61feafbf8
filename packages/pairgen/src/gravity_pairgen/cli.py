"""`gravity pairs ...`: build preference datasets from profiles, inspect them, manage the scenario pool."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from gravity_core.cli.common import CliContext, pass_cli, progress, summary_table
from gravity_core.cli.settings_options import settings_options
from gravity_core.datasets import DatasetManifest
from gravity_core.names import GRAVITY
from gravity_core.options import apply_options
from gravity_pairgen.settings import PairGenSettings


def _settings(cli: CliContext, **overrides: Any) -> PairGenSettings:
    return apply_options(cli.settings.section("pairgen", PairGenSettings), **overrides)


@click.group()
def pairs() -> None:
    """Preference pairs: profiles -> GRAVITY, GRAVITY-SFT, UserSFT and PrefAlign datasets (paper §3.3)."""


@pairs.command()
@click.option(
    "--profiles",
    required=True,
    type=click.Path(dir_okay=False),
    help="profiles.jsonl (gravity.v1.UserProfile per line).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Dataset directory to write (replaced atomically).",
)
@click.option(
    "--cohort", default=None, help="Cohort id recorded in the manifest (default: the profiles' cohort)."
)
@settings_options(
    PairGenSettings,
    "pairgen",
    "meta",
    "recipe",
    "ablations",
    "datasets",
    "seed",
    "items_per_trait",
    "pref_align_min_books",
    "pref_align_max_books",
    "pref_align_max_tokens",
)
@pass_cli
def build(cli: CliContext, profiles: str, out: str, cohort: str | None, overrides: dict[str, Any]) -> None:
    """Build the datasets for every profile in --profiles into --out, with a summary of what was skipped."""
    from gravity_pairgen.batch import build_dataset

    cfg = _settings(cli, **overrides)

    def bar(items: Iterable, total: int | None, desc: str) -> Iterator:
        return progress(items, total=total, desc=desc, unit="user" if desc == "profiles" else "batch")

    report = build_dataset(
        cli.settings,
        cfg,
        profiles,
        out,
        cohort_id=cohort,
        on_progress=lambda m: click.echo(m, err=True),
        progress_bar=bar,
    )
    m = report.manifest
    click.echo(
        f"pairs build: {report.users_built} users from {report.profiles_read} profiles -> {report.out_dir} "
        f"(cohort {m.cohort_id}, recipe {m.recipe}, seed {m.seed}"
        + (f", scenario pool {report.pool_version}" if report.pool_version else "")
        + ")"
    )
    click.echo(dataset_table(m))
    click.echo("skipped records: " + "\n".join(report.skips.summary_lines()))
    if report.omissions.counts:
        click.echo(
            "items not turned into rows: "
            + ", ".join(f"{k}={v}" for k, v in report.omissions.counts.most_common())
        )
    t = report.timings
    seconds = max(t["build"] + t["write"], 1e-9)  # pair building and writing, without setup and LLM calls
    rates = f"{report.total_rows / seconds:,.0f} rows/s"
    if report.rows(GRAVITY):
        rates += f", {report.rows(GRAVITY) / seconds:,.0f} GRAVITY pairs/s"
    click.echo(
        f"timings: setup {t['setup']:.1f}s, pairs {t['build']:.1f}s, LLM {t['llm']:.1f}s "
        f"({report.llm_calls} calls, {report.llm_cached} cached), write {t['write']:.1f}s, total {t['total']:.1f}s; "
        f"{report.total_rows} rows; {rates} excluding setup and LLM"
    )


def dataset_table(manifest: DatasetManifest) -> str:
    facets = sorted({f for e in manifest.datasets.values() for s in e.shards for f in s.counts_by_facet})
    rows = []
    for name, entry in manifest.datasets.items():
        per_user = [s.rows for s in entry.shards]
        totals = {f: sum(s.counts_by_facet.get(f, 0) for s in entry.shards) for f in facets}
        rows.append(
            (
                name,
                entry.kind,
                len(per_user),
                entry.rows,
                *(totals[f] for f in facets),
                f"{min(per_user, default=0)}/{sum(per_user) / max(len(per_user), 1):.0f}/{max(per_user, default=0)}",
                ",".join(entry.dropped) or "-",
            )
        )
    return summary_table(
        "datasets",
        rows,
        headers=("dataset", "kind", "users", "rows", *facets, "per-user min/mean/max", "dropped"),
    )


@pairs.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@pass_cli
def show(cli: CliContext, directory: str) -> None:
    """Print a dataset directory's manifest summary and verify every shard's checksum."""
    from gravity_core.datasets import load_manifest, verify_shards

    manifest = load_manifest(directory)
    for name in manifest.datasets:
        if manifest.datasets[name].shards:
            verify_shards(directory, manifest, name)
    click.echo(
        f"{directory}: cohort {manifest.cohort_id} ({manifest.cohort_size} users), recipe {manifest.recipe}, "
        f"seed {manifest.seed}, base model {manifest.base_model or '-'}; all shard checksums verified"
    )
    click.echo(dataset_table(manifest))


@pairs.command()
@click.option(
    "--generate",
    is_flag=True,
    help="Top every statement up to pairs_per_statement with the author LLM (stored once).",
)
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the (topped-up) pool as JSONL.",
)
@pass_cli
def pool(cli: CliContext, generate: bool, export_path: str | None) -> None:
    """Show the values scenario pool (version, coverage of the 150 statements); optionally top it up."""
    from gravity_core.artifacts import ArtifactStore
    from gravity_core.skips import SkipLog
    from gravity_core.values import load_seed_statements
    from gravity_pairgen.scenarios import load_pool, top_up_pool

    cfg = _settings(cli)
    skips = SkipLog()
    statements = list(load_seed_statements())
    scenario_pool = load_pool(cfg.scenario_pool or None, statements, skips)
    if generate:
        from gravity_core.llm import llm_for_role

        scenario_pool = top_up_pool(
            scenario_pool,
            statements,
            llm_for_role(cli.settings, "author"),
            ArtifactStore.from_settings(cli.settings),
            cfg.pairs_per_statement,
            cfg.scenario_max_tokens,
            on_progress=lambda m: click.echo(m, err=True),
        )
    cover = scenario_pool.coverage(statements, cfg.pairs_per_statement)
    click.echo(
        f"scenario pool {scenario_pool.version} ({scenario_pool.origin}): {len(scenario_pool)} pairs; "
        f"statements with {cfg.pairs_per_statement} pairs: {cover['full']}, fewer: {cover['partial']}, none: {cover['missing']}"
    )
    click.echo("\n".join(skips.summary_lines()))
    if export_path:
        Path(export_path).write_bytes(scenario_pool.to_jsonl())
        click.echo(f"wrote {export_path}")
