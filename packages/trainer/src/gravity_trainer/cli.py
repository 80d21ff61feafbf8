"""``gravity train``: one LoRA training run (DPO or SFT) on a pairs directory.

Heavy libraries (torch, transformers, trl) are imported inside the command so ``gravity --help`` stays fast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from gravity_core import names
from gravity_core.cli.common import CliContext, pass_cli, summary_table
from gravity_trainer.recipes import RECIPES, parse_overrides


@click.command(name="train")
@click.option(
    "--pairs", "pairs", type=click.Path(file_okay=False), help="Pairs directory (manifest.json + shards)."
)
@click.option("--recipe", required=True, type=click.Choice(sorted(RECIPES)), help="Training recipe.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Adapter directory to write (resumes an interrupted run of the same settings). Without it the adapter "
    "goes to the artifact store (adapters/<id>) and its AdapterRef to gravity.adapters.v1.",
)
@click.option(
    "--dataset",
    default="",
    help="Dataset name in the pairs directory (default: the recipe's, e.g. gravity-no-values for an ablation), "
    "or the path of a dataset directory inside a pairs directory.",
)
@click.option(
    "--max-steps", type=int, default=None, help="Stop after N optimizer steps (same as --set max_steps=N)."
)
@click.option(
    "--base-model", default=None, help="Base model (default: [trainer] base_model, else llm.writer.model)."
)
@click.option(
    "--recipe-config",
    "recipe_config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Recipe config (TOML/YAML): top-level keys for every recipe, [<recipe>] tables for one.",
)
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Recipe override, e.g. --set lora.r=8."
)
@click.option(
    "--allow-base-mismatch", is_flag=True, help="Train although the manifest names another base model."
)
@click.option("--manifest-sha256", default="", help="Refuse the pairs unless the manifest has this checksum.")
@click.option(
    "--adapter-id", default="", help="Adapter id (default: dataset + a hash of the run's identity)."
)
@click.option(
    "--publish/--no-publish",
    default=None,
    help="Store the adapter and publish its AdapterRef (default: only when --out is not given).",
)
@click.option(
    "--report-to",
    "report_to",
    default=None,
    metavar="TRACKERS",
    help="Experiment tracking: tensorboard, mlflow, wandb (comma-separated) or none (default: [tracking] "
    "report_to; same as --set report_to=...).",
)
@click.option("--run-name", default=None, help="The run's name in the tracker (default: the adapter id).")
@click.option(
    "--progress-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also append progress events as JSON Lines to this file (the service tails it).",
)
@pass_cli
def train(
    cli: CliContext,
    pairs: str | None,
    recipe: str,
    out: str | None,
    dataset: str,
    max_steps: int | None,
    base_model: str | None,
    recipe_config: str | None,
    sets: tuple[str, ...],
    allow_base_mismatch: bool,
    manifest_sha256: str,
    adapter_id: str,
    publish: bool | None,
    report_to: str | None,
    run_name: str | None,
    progress_file: str | None,
) -> None:
    """Train a LoRA adapter with a GRAVITY recipe (gravity-dpo, gravity-sft, user-sft, pref-align)."""
    from gravity_trainer.request import settings_fields
    from gravity_trainer.settings import TrainerSettings

    settings = cli.settings
    section = settings.section("trainer", TrainerSettings)
    overrides = parse_overrides(sets)
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    if report_to is not None:
        overrides["report_to"] = report_to
    if run_name is not None:
        overrides["run_name"] = run_name
    pairs_dir, dataset_name = _resolve(pairs, dataset)
    request_kwargs: dict[str, Any] = {
        "pairs": pairs_dir,
        "recipe": recipe,
        "base_model": base_model or section.base_model or settings.llm.role("writer").model,
        "dataset": dataset_name,
        "config_file": recipe_config or section.recipe_config,
        "settings_overrides": section.overrides.get(recipe, {}),
        "overrides": overrides,
        "allow_base_mismatch": allow_base_mismatch or section.allow_base_mismatch,
        "expected_manifest_sha256": manifest_sha256,
        "adapter_id": adapter_id,
        **settings_fields(settings, section),
    }
    run_training(
        settings, section, request_kwargs, Path(out).expanduser() if out else None, publish, progress_file
    )


def _resolve(pairs: str | None, dataset: str) -> tuple[Path, str]:
    from gravity_trainer.run import resolve_dataset_arg

    return resolve_dataset_arg(pairs, dataset)


def run_training(
    settings: Any,
    section: Any,
    request_kwargs: dict[str, Any],
    out: Path | None,
    publish: bool | None,
    progress_file: str | None = None,
) -> None:
    from gravity_core.artifacts import ArtifactStore
    from gravity_trainer.progress import JsonlSink, Reporter
    from gravity_trainer.run import TrainRequest, prepare, train

    started = time.perf_counter()
    store_mode = out is None
    store = ArtifactStore.from_settings(settings) if (store_mode or publish) else None
    if out is None:
        # Work in the trainer's work area under the adapter id, so a rerun (a retried Job) resumes.
        assert store is not None
        probe = TrainRequest(out=Path("."), **request_kwargs)
        adapter_id = prepare(probe, check_out=False).adapter_id
        out = section.work_path(store.root) / "jobs" / adapter_id
    request = TrainRequest(out=out, **request_kwargs)
    sinks: list[Any] = [lambda e: click.echo(e.line(), err=True)]
    if progress_file:
        sinks.append(JsonlSink(progress_file))
    reporter = Reporter(sinks)
    outcome = train(request, reporter)
    if not reporter.main_process:
        return
    ref = outcome.ref
    lines: list[str] = []
    if publish or (publish is None and store_mode):
        from gravity_core.bus import Bus
        from gravity_trainer.publishing import publish_ref, store_adapter

        assert store is not None
        ref = store_adapter(store, outcome.out)
        lines.append(f"stored at {ref.uri}")
        publish_ref(Bus(settings.kafka, "trainer"), ref)
        lines.append(
            f"AdapterRef published to {settings.kafka.topics.adapters} (key {names.method_name(ref)})"
        )
    rows: list[tuple[str, Any]] = [
        ("adapter", ref.adapter_id),
        ("method / recipe", f"{names.method_name(ref)} / {ref.recipe}"),
        ("directory", str(outcome.out)),
        ("base model", ref.base_model),
        ("dataset", f"{ref.dataset_id} (manifest {ref.dataset_manifest_sha256[:12]})"),
        ("steps", ref.steps),
        ("train / held-out pairs", f"{ref.train_rows} / {ref.eval_rows}"),
        ("resumed from step", outcome.resumed_from_step),
    ]
    rows += [(k, v) for k, v in sorted(ref.metrics.items())]
    rows.append(("wall time", f"{time.perf_counter() - started:.1f} s"))
    title = "training summary" + (" (already trained; nothing to do)" if outcome.already_done else "")
    click.echo(summary_table(title, rows))
    for line in outcome.skips.summary_lines() + lines:
        click.echo(line)
