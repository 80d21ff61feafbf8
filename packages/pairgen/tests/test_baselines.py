"""PrefAlign (author-LLM descriptions, batched and cached) and its book selection."""

from __future__ import annotations

import pytest

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.config import load_settings
from gravity_core.llm import CachedLLM, ResponseCache
from gravity_core.prompts import describe_request, persona, pref_align_prompt
from gravity_core.proto_io import write_jsonl
from gravity_core.targets import EvaluationPool
from gravity_pairgen.baselines import PrefAlignGenerator, PrefAlignJob, pref_align_books, reviewed_asins
from gravity_pairgen.batch import build_dataset
from gravity_pairgen.interests import BookRanker
from gravity_pairgen.settings import PairGenSettings
from gravity_pairgen.shards import read_provenance


def test_pref_align_books_are_reviewed_ones_then_top_rated_unreviewed_of_the_users_genres(
    sample_profiles, sample_catalog
) -> None:
    profile = profile_pb2.UserProfile()
    profile.CopyFrom(sample_profiles[0])
    del profile.reviews[2:]
    reviewed = reviewed_asins(profile)
    books = sample_catalog.get_many(reviewed)
    genres = [i.genre for i in sorted(profile.interests, key=lambda i: -i.share)]
    ranker = BookRanker(sample_catalog)
    chosen = pref_align_books(profile, books, ranker, genres, min_books=len(reviewed) + 4, max_books=0)
    assert [
        b.parent_asin for b in chosen[: len(reviewed)]
    ] == reviewed  # every reviewed book, most recent first
    extra = chosen[len(reviewed) :]
    assert len(extra) == 4 and all(b.genre in genres and b.parent_asin not in reviewed for b in extra)
    assert extra[0].parent_asin == ranker.top(genres[0], 1, exclude=reviewed)[0].parent_asin
    capped = pref_align_books(profile, books, ranker, genres, min_books=100, max_books=3)
    assert [b.parent_asin for b in capped] == reviewed[:3]


def test_prompts_use_demographics_only(sample_profiles, sample_catalog) -> None:
    profile = sample_profiles[0]
    book = sample_catalog.get(profile.reviews[0].parent_asin)
    convos = PrefAlignGenerator(llm=None, max_tokens=8, max_chars=0).conversations(
        PrefAlignJob(profile, [book])
    )  # type: ignore[arg-type]
    aligned, misaligned = (c[0]["content"] for c in convos)
    assert aligned.startswith(persona(profile) + " " + describe_request(book.title, book.description))
    assert "less engaging" in misaligned and profile.value_summary not in aligned + misaligned


@pytest.mark.model
def test_pref_align_with_the_embedded_model_is_batched_and_cached(
    tmp_path, sample_profiles, sample_catalog, embedded_llm
) -> None:
    profiles = tmp_path / "profiles.jsonl"
    two = [sample_profiles[0], sample_profiles[5]]
    write_jsonl(two, profiles)
    settings = load_settings(
        None, env={}, overrides={"artifacts.root": str(tmp_path / "a"), "logging.level": "WARNING"}
    )
    cfg = PairGenSettings(
        datasets=["pref-align"], pref_align_min_books=1, pref_align_max_books=1, pref_align_max_tokens=16
    )
    llm = CachedLLM(embedded_llm, ResponseCache(tmp_path / "cache.sqlite"))
    first = build_dataset(settings, cfg, profiles, tmp_path / "one", catalog=sample_catalog, llm=llm)
    assert first.llm_calls == 4 and first.llm_cached == 0
    entry = first.manifest.dataset("pref-align")
    assert entry.kind == "dpo" and [s.rows for s in entry.shards] == [1, 1]
    import pyarrow.parquet as pq

    held_out = EvaluationPool(sample_catalog, settings.evaluation)
    for profile in two:
        path = tmp_path / "one" / "pref-align" / f"{profile.user_id}.parquet"
        (row,) = pq.read_table(path).to_pylist()
        assert row["prompt"] == pref_align_prompt(profile) and row["facet"] == "pref_align"
        assert row["chosen"] and row["rejected"] and row["chosen"] != row["rejected"]
        # the most recent reviewed book that is not held out for evaluation
        newest = next(a for a in reviewed_asins(profile) if not held_out.holds_asin(a))
        assert read_provenance(path)[row["pair_id"]] == [f"asin:{newest}"]

    again = build_dataset(settings, cfg, profiles, tmp_path / "two", catalog=sample_catalog, llm=llm)
    assert again.llm_cached == 4 and again.llm_calls == 4  # every call answered from the cache
    assert [s.sha256 for s in again.manifest.dataset("pref-align").shards] == [s.sha256 for s in entry.shards]


def test_unreviewed_profile_gets_top_up_books_only(sample_catalog) -> None:
    profile = profile_pb2.UserProfile(
        user_id="new-reader",
        demographics=common_pb2.Demographics(country=common_pb2.DemographicField(value="Brazil")),
        interests=[profile_pb2.Interest(genre="Poetry", share=1.0)],
    )
    books = pref_align_books(profile, {}, BookRanker(sample_catalog), ["Poetry"], min_books=2, max_books=0)
    assert [b.genre for b in books] == ["Poetry", "Poetry"]
