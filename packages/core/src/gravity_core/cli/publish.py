"""`gravity publish adapter|dataset PATH --repo-id ORG/NAME`: an adapter or a pairs directory as a Hugging Face
Hub repository (gravity_core.hub), uploaded with HF_TOKEN or written to a local directory with --to-dir."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from gravity_core.cli.common import summary_table
from gravity_core.hub import (
    Layout,
    adapter_layout,
    check_repo_id,
    dataset_layout,
    hub_token,
    upload,
    write_layout,
)


@click.group()
def publish() -> None:
    """Publish a trained adapter or a pairs dataset to the Hugging Face Hub (needs gravity-core[hub])."""


_repo_id = click.option("--repo-id", required=True, metavar="ORG/NAME", help="The Hub repository to write.")
_private = click.option("--private", is_flag=True, help="Create the repository private (when it is new).")
_to_dir = click.option(
    "--to-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the repository's files into this new or empty directory instead of uploading.",
)


@publish.command("adapter")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_repo_id
@_private
@_to_dir
@click.option(
    "--dataset-repo-id",
    default="",
    metavar="ORG/NAME",
    help="The published pairs dataset the adapter was trained on, linked from the model card.",
)
def adapter(path: Path, repo_id: str, private: bool, to_dir: Path | None, dataset_repo_id: str) -> None:
    """An adapter directory (`gravity train --out`, or adapters/<id> in the artifact store): the PEFT files
    and its model card."""
    repo = check_repo_id(repo_id)
    _finish(adapter_layout(path, repo, dataset_repo_id), repo, private, to_dir)


@publish.command("dataset")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_repo_id
@_private
@_to_dir
def dataset(path: Path, repo_id: str, private: bool, to_dir: Path | None) -> None:
    """A pairs directory (`gravity pairs build --out`, or datasets/<cohort> in the artifact store): its
    dataset card, manifest and shards."""
    repo = check_repo_id(repo_id)
    _finish(dataset_layout(path), repo, private, to_dir)


def _finish(layout: Layout, repo_id: str, private: bool, to_dir: Path | None) -> None:
    kind = f"{layout.repo_type} repository {repo_id}" + (" (private)" if private else "")
    if to_dir is not None:
        names = write_layout(layout, to_dir.expanduser())
        click.echo(summary_table(f"{kind}: written to {to_dir}, not uploaded", [(n,) for n in names]))
        return
    token = hub_token()
    with tempfile.TemporaryDirectory(prefix="gravity-publish-") as staging:
        url = upload(layout, repo_id, private, token, Path(staging))
    click.echo(summary_table(f"{kind}: uploaded", [(n,) for n in layout.names()]))
    click.echo(f"published: {url}")
