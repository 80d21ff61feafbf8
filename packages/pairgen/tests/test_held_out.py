"""Evaluation books are held out of every training set (paper §3.4; issue: evaluation you can trust)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gravity_core.config import load_settings
from gravity_core.datasets import books_of, load_manifest, verify_shards
from gravity_core.proto_io import write_jsonl
from gravity_core.skips import SkipLog
from gravity_core.targets import EvaluationPool
from gravity_pairgen.batch import build_dataset
from gravity_pairgen.builder import plan_datasets
from gravity_pairgen.interests import BookRanker
from gravity_pairgen.resources import load_resources
from gravity_pairgen.settings import PairGenSettings
from gravity_pairgen.shards import read_provenance

pytestmark = pytest.mark.model  # MiniLM embeds the categories; SmolLM2 writes the PrefAlign descriptions

EVERY_DATASET = ["gravity", "gravity-sft", "user-sft", "pref-align"]


def _settings(root: Path):
    return load_settings(
        None,
        env={},
        overrides={
            "artifacts.root": str(root / "artifacts"),
            "cache.enabled": False,
            "logging.level": "WARNING",
        },
    )


def _row_text(path: Path) -> str:
    import pyarrow.parquet as pq

    return "\n".join(
        str(value)
        for row in pq.read_table(path).to_pylist()
        for key, value in row.items()
        if key != "pair_id"
    )


def test_no_evaluation_book_in_any_training_row_of_any_dataset(
    tmp_path: Path, sample_profiles, sample_catalog, embedder, embedded_llm
) -> None:
    profiles = tmp_path / "profiles.jsonl"
    write_jsonl(sample_profiles, profiles)
    settings = _settings(tmp_path)
    cfg = PairGenSettings(
        datasets=EVERY_DATASET,
        ablations=["all"],
        pref_align_min_books=2,
        pref_align_max_books=2,
        pref_align_max_tokens=8,
    )
    report = build_dataset(
        settings, cfg, profiles, tmp_path / "out", catalog=sample_catalog, embedder=embedder, llm=embedded_llm
    )
    manifest = load_manifest(tmp_path / "out")
    assert set(manifest.datasets) >= set(EVERY_DATASET) | {"gravity-no-values", "gravity-no-openness"}

    # every reader's evaluation books are chosen and recorded: unreviewed, from their genres' pools
    pool = EvaluationPool(sample_catalog, manifest.evaluation)
    for profile in sample_profiles:
        books = manifest.held_out[profile.user_id]
        assert books == [b.parent_asin for b in pool.targets(profile)]
        assert books and not set(books) & set(profile.reviewed_asins)
    evaluation_books = {b.parent_asin: b for g in sample_catalog.genres() for b in pool.books(g)}
    assert manifest.held_out_books() <= set(evaluation_books)

    # no row of any dataset is built from one, by its provenance or by its text
    for name in manifest.datasets:
        for path in verify_shards(tmp_path / "out", manifest, name):
            used = set().union(*books_of(read_provenance(path)).values())
            assert not used & set(evaluation_books), (name, path.name)
            text = _row_text(path)
            for book in evaluation_books.values():
                assert book.description[:80] not in text, (name, path.name, book.parent_asin)
    # reviewed books that sit in a pool were left out of UserSFT and PrefAlign, and counted
    assert report.omissions.counts["reviewed_book_held_out"] > 0


def test_a_build_that_would_use_a_held_out_book_is_refused_and_nothing_written(
    tmp_path: Path, sample_profiles, sample_catalog, embedder
) -> None:
    """The builder never picks an evaluation book; if it ever did (a catalog or code change), the reader's
    shards are refused with the reason instead of written."""
    profiles = tmp_path / "profiles.jsonl"
    write_jsonl(sample_profiles[:3], profiles)
    settings = _settings(tmp_path)
    cfg = PairGenSettings(datasets=["gravity"])
    resources = load_resources(
        settings, cfg, plan_datasets(cfg), SkipLog(), catalog=sample_catalog, embedder=embedder
    )

    class NothingHeldOut(EvaluationPool):  # a ranker that has lost track of the evaluation pool
        def books(self, genre: str) -> list:
            return []

    resources.ranker = BookRanker(sample_catalog, NothingHeldOut(sample_catalog))
    report = build_dataset(settings, cfg, profiles, tmp_path / "out", resources=resources)
    assert report.skips.counts["held_out_book"] == 3 and report.users_built == 0
    example = report.skips.examples[0]
    assert "held out for evaluation" in example.detail and "no shard was written" in example.detail
    manifest = load_manifest(tmp_path / "out")
    assert manifest.dataset("gravity").shards == [] and manifest.held_out == {}
    assert not list((tmp_path / "out").glob("gravity/*.parquet"))
