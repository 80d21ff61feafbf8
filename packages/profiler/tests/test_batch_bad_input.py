"""The batch pipeline on the sample plus every kind of bad input: counted with file:line, the rest flows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from profiler_fixtures import CASUAL, NO_AGE_NO_COUNTRY, USA_GRANDMOTHER

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.proto_io import read_jsonl
from gravity_core.skips import SkipLog
from gravity_profiler import prompts
from gravity_profiler.batch import build_profiles
from gravity_profiler.builder import ProfileBuilder
from gravity_profiler.settings import ProfilerSettings


def _messy_reviews(sample: Path, dest: Path) -> dict[str, int]:
    """The sample reviews plus one bad line of each kind; returns reason -> line number."""
    shutil.copyfile(sample, dest)
    lines = sample.read_bytes().splitlines()
    n = len(lines)
    good = json.loads(lines[0])
    bad: list[tuple[str, bytes]] = [
        ("malformed_json", b'{"user_id": "U", "text": '),
        ("missing_field", json.dumps({**good, "user_id": ""}).encode()),
        ("not_utf8", b'{"user_id": "\xff\xfe", "parent_asin": "1", "text": "x"}'),
        ("empty_text", json.dumps({**good, "text": "   "}).encode()),
        ("unknown_item", json.dumps({**good, "parent_asin": "NOPE000000", "asin": "NOPE000000"}).encode()),
        ("duplicate_review", json.dumps({**good, "timestamp": good["timestamp"] - 1000}).encode()),
    ]
    where = {}
    with open(dest, "ab") as f:
        if not sample.read_bytes().endswith(b"\n"):
            f.write(b"\n")
        for reason, line in bad:
            f.write(line + b"\n")
            n += 1
            where[reason] = n
    return where


def _builder(make_settings, scripted, **config) -> ProfileBuilder:
    settings = make_settings()
    llm = scripted(summary="A reader of many books. She values family. Third. Fourth. Fifth. Sixth. Seventh.")
    return ProfileBuilder(settings, ProfilerSettings(**config), annotator=llm, author=llm)


def test_bad_lines_are_counted_with_file_and_line_and_the_rest_is_profiled(
    tmp_path: Path, sample_files, make_settings, scripted
) -> None:
    reviews = tmp_path / "Books.jsonl"
    where = _messy_reviews(sample_files["Books.jsonl"], reviews)
    out = tmp_path / "profiles.jsonl"
    report = build_profiles(
        _builder(make_settings, scripted),
        reviews,
        sample_files["meta_Books.jsonl"],
        out,
        sample_files["demographics.csv"],
        min_reviews=20,
    )
    skips = report.input_skips
    for reason, line in where.items():
        assert skips.counts[reason] >= 1, reason
        assert any(
            s.reason == reason and s.line == line and s.source == str(reviews) for s in skips.examples
        ), reason
    # the two casual readers have 3 reviews each
    assert skips.counts["below_threshold"] == 2
    assert {s.record_id for s in skips.examples if s.reason == "below_threshold"} >= {CASUAL}
    assert any("duplicate_review" in line for line in skips.summary_lines())

    profiles = [p for _, p in read_jsonl(out, profile_pb2.UserProfile, SkipLog())]
    assert report.users_built == len(profiles) == 16
    assert len({p.cohort_id for p in profiles}) == 1 and all(p.cohort_size == 16 for p in profiles)
    grandmother = next(p for p in profiles if p.user_id == USA_GRANDMOTHER)
    # the newer duplicate wins; the older copy is not counted twice
    assert len(set(grandmother.reviewed_asins)) == len(grandmother.reviewed_asins) == grandmother.review_count
    assert "NOPE000000" not in grandmother.reviewed_asins


def test_profiles_carry_every_component(tmp_path: Path, sample_files, make_settings, scripted) -> None:
    out = tmp_path / "profiles.jsonl"
    builder = _builder(make_settings, scripted, max_reviews_in_profile=5)
    report = build_profiles(
        builder,
        sample_files["Books.jsonl"],
        sample_files["meta_Books.jsonl"],
        out,
        sample_files["demographics.csv"],
        min_reviews=20,
        users={USA_GRANDMOTHER, NO_AGE_NO_COUNTRY, "NOBODY"},
    )
    assert report.input_skips.counts["unknown_user"] == 1
    profiles = {p.user_id: p for _, p in read_jsonl(out, profile_pb2.UserProfile, SkipLog())}
    assert set(profiles) == {USA_GRANDMOTHER, NO_AGE_NO_COUNTRY}
    p = profiles[USA_GRANDMOTHER]
    assert len(p.values) == 150 and len({v.statement_id for v in p.values}) == 150
    assert all(v.stance != profile_pb2.STANCE_UNSPECIFIED and v.statement and v.topic for v in p.values)
    assert [t.trait for t in p.personality.traits] == [
        profile_pb2.TRAIT_OPENNESS,
        profile_pb2.TRAIT_CONSCIENTIOUSNESS,
        profile_pb2.TRAIT_EXTRAVERSION,
        profile_pb2.TRAIT_AGREEABLENESS,
        profile_pb2.TRAIT_NEUROTICISM,
    ]
    assert all(
        0.0 <= t.score <= 1.0 and t.level != profile_pb2.TRAIT_LEVEL_UNSPECIFIED for t in p.personality.traits
    )
    assert p.personality.estimator == "mini-ipip-llm"
    # given demographics pass through with the raw age
    d = p.demographics
    assert (d.age, d.age_group.value, d.gender.value, d.country.value) == (68, "senior", "female", "USA")
    assert {d.age_group.provenance, d.gender.provenance, d.country.provenance} == {
        common_pb2.PROVENANCE_GIVEN
    }
    # missing ones are estimated from the allowed values, with the answer's probability
    e = profiles[NO_AGE_NO_COUNTRY].demographics
    assert e.gender.provenance == common_pb2.PROVENANCE_GIVEN
    assert e.age_group.provenance == e.country.provenance == common_pb2.PROVENANCE_ESTIMATED
    assert e.age_group.value in ("young", "middle-aged", "senior") and e.country.value in (
        "USA",
        "Brazil",
        "India",
        "Japan",
    )
    assert 0.0 < e.country.confidence <= 1.0 and e.age == 0
    # interests: >= 10% of reviews, shares sorted descending, genre groups filled
    assert p.interests and all(i.share >= 0.1 and i.genre_group for i in p.interests)
    assert [i.share for i in p.interests] == sorted((i.share for i in p.interests), reverse=True)
    assert sum(i.review_count for i in p.interests) <= p.review_count
    # value summary capped at six sentences; user summary kept
    assert p.value_summary.count(".") == 6 and p.user_summary.startswith("A reader of many books.")
    # reviews capped and most recent first; every reviewed asin listed
    assert len(p.reviews) == 5 and p.review_count == len(p.reviewed_asins) > 5
    assert [r.timestamp_ms for r in p.reviews] == sorted((r.timestamp_ms for r in p.reviews), reverse=True)
    assert p.version == 1 and len(p.revision) == 64 and p.built_at_ms > 0
    assert p.models["annotator"] == "embedded:scripted"


def test_rebuild_with_same_inputs_has_same_revision_and_cohort(
    tmp_path: Path, sample_files, make_settings, scripted
) -> None:
    def run(out: Path, **config) -> dict[str, profile_pb2.UserProfile]:
        build_profiles(
            _builder(make_settings, scripted, **config),
            sample_files["Books.jsonl"],
            sample_files["meta_Books.jsonl"],
            out,
            sample_files["demographics.csv"],
            min_reviews=20,
            max_users=3,
        )
        return {p.user_id: p for _, p in read_jsonl(out, profile_pb2.UserProfile, SkipLog())}

    a, b = run(tmp_path / "a.jsonl"), run(tmp_path / "b.jsonl")
    c = run(tmp_path / "c.jsonl", interest_threshold=0.2)
    assert len(a) == 3 and a.keys() == b.keys() == c.keys()
    for user in a:
        assert a[user].revision == b[user].revision != c[user].revision
        assert a[user].cohort_id == b[user].cohort_id == c[user].cohort_id


def test_unreadable_llm_answers_are_recorded_as_unreadable_and_reported(
    tmp_path: Path, sample_files, make_settings, scripted
) -> None:
    settings = make_settings()
    # every prompt about this statement gets an answer outside {'support', 'no support', 'neutral'}
    statement = "Employees should feel free to openly disagree with their managers."
    annotator = scripted(unusable_when=statement)
    author = scripted(summary="")  # the author returns nothing at all
    builder = ProfileBuilder(settings, ProfilerSettings(), annotator=annotator, author=author)
    out = tmp_path / "profiles.jsonl"
    report = build_profiles(
        builder,
        sample_files["Books.jsonl"],
        sample_files["meta_Books.jsonl"],
        out,
        min_reviews=20,
        max_users=2,
    )
    profiles = [p for _, p in read_jsonl(out, profile_pb2.UserProfile, SkipLog())]
    assert len(profiles) == 2
    for p in profiles:
        stance = next(v for v in p.values if v.statement == statement)
        # recorded as unreadable with no confidence: not neutral, not a value
        assert stance.stance == profile_pb2.STANCE_UNREADABLE and not stance.HasField("confidence")
        assert len(p.values) == 150
        assert all(v.HasField("confidence") for v in p.values if v.statement != statement)
        assert (p.evidence.unreadable_stances, p.evidence.unreadable_items) == (1, 0)
        assert p.value_summary  # fallback from the strongest stances
        assert p.user_summary == ""
    assert (report.stats.unreadable_stances, report.stats.unreadable_items) == (2, 0)
    issues = report.answer_skips
    assert issues.counts["unparseable_answer"] == 2
    assert issues.counts["empty_summary"] == 4
    assert any(s.record_id.endswith("/hofstede-02") for s in issues.examples)


def test_gzipped_inputs_and_the_per_statement_protocol(
    tmp_path: Path, sample_files, make_settings, scripted
) -> None:
    import gzip

    paths = {}
    for name in ("Books.jsonl", "meta_Books.jsonl"):
        paths[name] = tmp_path / f"{name}.gz"
        paths[name].write_bytes(gzip.compress(sample_files[name].read_bytes()))
    llm = scripted(summary="A reader.")
    builder = ProfileBuilder(make_settings(), ProfilerSettings(), annotator=llm, author=llm)
    out = tmp_path / "profiles.jsonl"
    report = build_profiles(
        builder,
        paths["Books.jsonl"],
        paths["meta_Books.jsonl"],
        out,
        min_reviews=20,
        users={USA_GRANDMOTHER},
        protocol="per-statement",
    )
    assert report.users_built == 1 and report.input_skips.total == 0
    # the paper's protocol: one request per statement, each carrying the whole review history
    stance_prompts = [p for p in llm.prompts if prompts.STANCE_QUESTION in p]
    assert len(stance_prompts) == 150
    [profile] = [p for _, p in read_jsonl(out, profile_pb2.UserProfile, SkipLog())]
    latest = " ".join(profile.reviews[0].text.split())[:60]
    assert all(latest in p for p in stance_prompts)
    assert len(profile.values) == 150 and profile.revision


def test_unreadable_mini_ipip_answers_give_unknown_traits_counted_in_the_profile(
    tmp_path: Path, sample_files, make_settings, scripted
) -> None:
    """Every Mini-IPIP rating unusable: five UNKNOWN traits (today's code made every one HIGH at 0.5)."""
    annotator = scripted(unusable_when=prompts.IPIP_QUESTION)
    builder = ProfileBuilder(
        make_settings(), ProfilerSettings(), annotator=annotator, author=scripted(summary="A reader.")
    )
    out = tmp_path / "profiles.jsonl"
    report = build_profiles(
        builder,
        sample_files["Books.jsonl"],
        sample_files["meta_Books.jsonl"],
        out,
        min_reviews=20,
        users={USA_GRANDMOTHER},
    )
    [p] = [p for _, p in read_jsonl(out, profile_pb2.UserProfile, SkipLog())]
    assert [t.level for t in p.personality.traits] == [profile_pb2.TRAIT_LEVEL_UNKNOWN] * 5
    assert all((t.score, t.readable_items, t.items) == (0.0, 0, 4) for t in p.personality.traits)
    assert (p.evidence.unreadable_items, p.evidence.unreadable_stances) == (20, 0)
    assert (report.stats.unreadable_items, report.stats.unknown_traits) == (20, 5)
    assert report.answer_skips.counts["unparseable_answer"] == 1


def test_a_sixty_review_reader_is_read_whole(sample_inputs, make_settings, scripted) -> None:
    """A 60-review reader (built from the sample): every review read, in one chunk at the default context;
    in several chunks, every one still read once, when the context is small."""
    from gravity_profiler.bench import synthetic_reader

    reader = synthetic_reader(sample_inputs, 60)
    assert len(reader.reviews) == 60
    llm = scripted(summary="A reader. Who reads.")
    builder = ProfileBuilder(make_settings(), ProfilerSettings(), annotator=llm, author=llm)
    [whole], stats = builder.build([reader])
    e = whole.evidence
    assert (e.reviews_total, e.reviews_read, e.chunks, e.pooling, e.review_chars_cap) == (
        60,
        60,
        1,
        "none",
        0,
    )
    stance_prompts = [p for p in llm.prompts if prompts.STANCE_QUESTION in p]
    oldest = " ".join(reader.reviews[-1].text.split())[:50]
    assert oldest in stance_prompts[0]  # the oldest review is in the prompt: nothing was cut
    assert stats.capped_users == 0 and stats.reviews_read == 60

    small = scripted(summary="A reader. Who reads.")
    config = ProfilerSettings(context_tokens=2048)
    [chunked], stats = ProfileBuilder(make_settings(), config, annotator=small, author=small).build([reader])
    e = chunked.evidence
    assert e.reviews_read == 60 and e.chunks > 1 and e.pooling == "sum-logprob"
    assert stats.chunked_users == 1 and stats.chunks == e.chunks
    # every statement was asked on every chunk; the user summary is a summary per chunk, then one combination
    assert sum(prompts.STANCE_QUESTION in p for p in small.prompts) == 150 * e.chunks
    assert sum(p.startswith("Here are summaries of one user") for p in small.prompts) == 1
    assert chunked.user_summary and len(chunked.values) == 150

    capped = ProfilerSettings(prompt_review_chars=3000)
    [short], stats = ProfileBuilder(make_settings(), capped, annotator=llm, author=llm).build([reader])
    assert short.evidence.reviews_read < 60 and short.evidence.review_chars_cap == 3000
    assert stats.capped_users == 1
