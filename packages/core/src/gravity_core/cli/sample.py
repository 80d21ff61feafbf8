"""`gravity sample ...`: the bundled sample dataset."""

from __future__ import annotations

import click

from gravity_core.cli.common import summary_table


@click.group()
def sample() -> None:
    """The bundled sample dataset (16+ invented readers from the USA, Brazil, India and Japan)."""


@sample.command("export")
@click.argument("dest", type=click.Path(file_okay=False))
def export(dest: str) -> None:
    """Write DEST/Books.jsonl, DEST/meta_Books.jsonl and DEST/demographics.csv."""
    from gravity_core.sample import export_sample, sample_stats

    written = export_sample(dest)
    stats = sample_stats(written["Books.jsonl"], written["meta_Books.jsonl"], written["demographics.csv"])
    for path in written.values():
        click.echo(f"wrote {path}")
    click.echo(summary_table("sample", sorted(stats.items())))
