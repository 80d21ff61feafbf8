"""The profiler on the real embedded model: the batch command end to end, both stance protocols, the
OpenAI-compatible path against a real HTTP server, and the classifier estimator's plumbing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from profiler_fixtures import NO_AGE_NO_COUNTRY, NO_GENDER

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.cli.main import cli
from gravity_core.config import LLMEndpoint
from gravity_core.errors import ConfigError
from gravity_core.llm.openai_backend import OpenAILLM
from gravity_core.proto_io import read_jsonl
from gravity_core.skips import SkipLog
from gravity_core.values import load_seed_statements
from gravity_profiler import prompts, summaries
from gravity_profiler.bench import synthetic_reader
from gravity_profiler.builder import ProfileBuilder
from gravity_profiler.history import ReviewHistory, review_lines, split_history
from gravity_profiler.personality import ClassifierEstimator
from gravity_profiler.settings import ClassifierSettings, ProfilerSettings
from gravity_profiler.stances import infer_stances, outcome
from gravity_profiler.summaries import sentences
from gravity_stack.llm_server import OpenAICompatServer

pytestmark = pytest.mark.model


@pytest.mark.slow  # over a minute on 2 cores; a smaller real test of the same kind stays in the default suite
def test_profile_build_command_on_the_sample(tmp_path: Path, sample_files) -> None:
    """`gravity profile build` on the exported sample for a reader with missing age and country (the other
    qualifying readers are left out to keep the suite's time budget; gender estimation is covered by
    test_service.py)."""
    out = tmp_path / "profiles.jsonl"
    env = {
        "GRAVITY_ARTIFACTS__ROOT": str(tmp_path / "artifacts"),
        "GRAVITY_CACHE__ENABLED": "false",
        "GRAVITY_LOGGING__LEVEL": "WARNING",
        "GRAVITY_PROFILER__SUMMARY_MAX_TOKENS": "48",
        # the same endpoint as the embedded_llm fixture, so the process loads the model once
        "GRAVITY_LLM__DEFAULTS__MAX_TOKENS": "64",
    }
    result = CliRunner().invoke(
        cli,
        [
            "profile",
            "build",
            "--reviews",
            str(sample_files["Books.jsonl"]),
            "--meta",
            str(sample_files["meta_Books.jsonl"]),
            "--demographics",
            str(sample_files["demographics.csv"]),
            "--out",
            str(out),
            "--min-reviews",
            "20",
            "--user",
            NO_AGE_NO_COUNTRY,
            "--user",
            "NO-SUCH-READER",
            "--cohort-id",
            "sample-one",
        ],
        env=env,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"profiles written\s+1\n", result.output)
    assert "unknown_user=1" in result.output
    # the whole history is read by default: no cap, one chunk for a sample reader
    assert re.search(r"histories capped \(prompt_review_chars\)\s+0\n", result.output)
    assert re.search(
        r"unreadable answers\s+0 stances, 0 Mini-IPIP items \(0 traits UNKNOWN\)\n", result.output
    )
    profiles = {p.user_id: p for _, p in read_jsonl(out, profile_pb2.UserProfile, SkipLog())}
    assert set(profiles) == {NO_AGE_NO_COUNTRY}
    for p in profiles.values():
        assert p.cohort_id == "sample-one" and p.cohort_size == 1
        assert len(p.values) == 150
        assert {v.stance for v in p.values} <= {
            profile_pb2.STANCE_SUPPORT,
            profile_pb2.STANCE_OPPOSE,
            profile_pb2.STANCE_NEUTRAL,
        }
        # log-probabilities from the embedded model: every confidence is a real probability
        assert all(v.HasField("confidence") and 0.0 < v.confidence <= 1.0 for v in p.values)
        e = p.evidence
        assert (e.reviews_total, e.reviews_read, e.chunks, e.pooling) == (
            p.review_count,
            p.review_count,
            1,
            "none",
        )
        assert (e.unreadable_stances, e.unreadable_items, e.review_chars_cap) == (0, 0, 0)
        assert all((t.readable_items, t.items) == (4, 4) for t in p.personality.traits)
        assert p.interests and all(i.share >= 0.1 for i in p.interests)
        assert len(p.personality.traits) == 5
        assert all(
            t.level in (profile_pb2.TRAIT_LEVEL_HIGH, profile_pb2.TRAIT_LEVEL_LOW)
            for t in p.personality.traits
        )
        assert p.value_summary and p.user_summary
        assert len(sentences(p.value_summary)) <= 6
        assert p.models["annotator"] == "embedded:smollm2-135m"
    d = profiles[NO_AGE_NO_COUNTRY].demographics
    assert (d.gender.value, d.gender.provenance, d.gender.confidence) == (
        "male",
        common_pb2.PROVENANCE_GIVEN,
        1.0,
    )
    assert d.country.provenance == common_pb2.PROVENANCE_ESTIMATED
    assert d.country.value in ("USA", "Brazil", "India", "Japan") and 0.25 <= d.country.confidence <= 1.0
    assert d.age_group.provenance == common_pb2.PROVENANCE_ESTIMATED and d.age == 0
    assert d.age_group.value in ("young", "middle-aged", "senior") and 1 / 3 <= d.age_group.confidence <= 1.0


def _history(user, max_chars: int, max_review_chars: int) -> ReviewHistory:
    lines = review_lines(user.reviews, user.books, max_review_chars, max_chars)
    return split_history(lines, len(user.reviews), 10_000, len, max_chars)


def test_per_statement_protocol_agrees_with_shared_prefix(embedded_llm, sample_inputs) -> None:
    """The paper's protocol on a statement subset: same prompts, same answers, many more tokens."""
    user = sample_inputs[NO_GENDER]
    statements = load_seed_statements()[:5]
    config = ProfilerSettings()
    [chunk] = _history(user, 1500, 400).chunks
    stance_context = prompts.stance_context(chunk, prompts.demographics_text("young", "", "USA"))
    embedded_llm.reuse_prefix = False  # the baseline re-reads the whole history for every statement
    try:
        before = embedded_llm.usage.prompt_tokens
        per = infer_stances(embedded_llm, [stance_context], statements, "per-statement", config)
        per_tokens = embedded_llm.usage.prompt_tokens - before
    finally:
        embedded_llm.reuse_prefix = True
    before = embedded_llm.usage.prompt_tokens
    shared = infer_stances(embedded_llm, [stance_context], statements, "shared-prefix", config)
    shared_tokens = embedded_llm.usage.prompt_tokens - before
    per_out = [outcome(s, sc) for s, sc in zip(statements, per, strict=True)]
    shared_out = [outcome(s, sc) for s, sc in zip(statements, shared, strict=True)]
    assert all(o.usable for o in per_out + shared_out)
    assert [o.stance for o in per_out] == [o.stance for o in shared_out]
    for a, b in zip(per, shared, strict=True):
        assert a.probabilities == pytest.approx(b.probabilities, abs=5e-3)
    assert per_tokens > 3 * shared_tokens


def test_a_chunk_of_reviews_is_encoded_once_for_every_kind_of_question(embedded_llm, sample_inputs) -> None:
    """Stance, Mini-IPIP and demographic contexts open with the same head (the chunk's reviews), so after the
    statements the Mini-IPIP items and the demographic questions encode only their own instruction."""
    user = sample_inputs[NO_GENDER]
    [chunk] = _history(user, 1500, 400).chunks
    head_tokens = embedded_llm.count_tokens(prompts.reviews_head(chunk))
    demo = prompts.demographics_text("young", "", "USA")
    infer_stances(
        embedded_llm,
        [prompts.stance_context(chunk, demo)],
        load_seed_statements()[:2],
        "shared-prefix",
        ProfilerSettings(),
    )

    def tokens_for(context: str, questions: list[str], choices: tuple[str, ...]) -> int:
        before = embedded_llm.usage.prompt_tokens
        scores = embedded_llm.score_choices_shared_prefix(
            [{"role": "user", "content": context}], questions, choices
        )
        assert all(s.usable for s in scores)
        return embedded_llm.usage.prompt_tokens - before

    ipip = tokens_for(prompts.ipip_context(chunk), ["Am the life of the party."], prompts.IPIP_CHOICES)
    gender = tokens_for(
        prompts.demographic_context(chunk),
        [prompts.demographic_question("gender", ("male", "female"))],
        ("male", "female"),
    )
    assert head_tokens > 200
    assert ipip < head_tokens / 2 and gender < head_tokens / 2, (head_tokens, ipip, gender)


def test_the_user_summary_starts_from_the_reviews_the_questions_encoded(embedded_llm, sample_inputs) -> None:
    """The summary prompt opens with the scoring head, so generating it after a chunk's statements reuses
    the chunk's encoded reviews from the engine's prefix cache instead of encoding them again."""
    user = sample_inputs[NO_GENDER]
    [chunk] = _history(user, 1500, 400).chunks
    head_tokens = embedded_llm.count_tokens(prompts.reviews_head(chunk))
    engine = embedded_llm.engine
    engine.forget_prefixes()
    embedded_llm.scorer.forget_prefix()
    infer_stances(
        embedded_llm,
        [prompts.stance_context(chunk, prompts.demographics_text("young", "", "USA"))],
        load_seed_statements()[:2],
        "shared-prefix",
        ProfilerSettings(),
    )
    reused = engine.prefix_cache.stats.reused_tokens
    [completion] = summaries.generate(embedded_llm, [prompts.user_summary_prompt(chunk)], 8)
    assert completion.text
    assert head_tokens > 200
    assert engine.prefix_cache.stats.reused_tokens - reused >= head_tokens - engine.chunk, head_tokens


def test_remote_endpoint_batches_statements_and_falls_back_per_statement(embedded_llm, sample_inputs) -> None:
    """The OpenAI 'batched' strategy against a real OpenAI-compatible HTTP server on the same model."""
    server = OpenAICompatServer(embedded_llm, model_name="smol").start()
    try:
        remote = OpenAILLM(
            LLMEndpoint(backend="openai", model="smol", base_url=server.base_url, max_tokens=64)
        )
        user = sample_inputs[NO_GENDER]
        statements = load_seed_statements()[:4]
        config = ProfilerSettings(remote_batch_size=2)
        [chunk] = _history(user, 1500, 300).chunks
        demo = prompts.demographics_text("young", "", "USA")
        scores = infer_stances(
            remote,
            [prompts.stance_context(chunk, demo)],
            statements,
            "shared-prefix",
            config,
            [prompts.stance_context(chunk, demo, prompts.stance_batch_question())],
        )
        assert len(scores) == 4 and all(s.usable and s.best in prompts.STANCE_CHOICES for s in scores)
        # two batched calls, plus one single-statement call per line the reply did not answer
        parsed = sum(s.method == "parsed" for s in scores)
        assert remote.usage.calls == 2 + (4 - parsed)
        # a parsed line has no probability: its confidence is absent, never 1.0; re-asked ones have one
        for st, sc in zip(statements, scores, strict=True):
            o = outcome(st, sc)
            assert (o.confidence is None) == (sc.method == "parsed")
            assert o.to_proto().HasField("confidence") == (sc.method == "logprobs")
        remote.close()
    finally:
        server.stop()


@pytest.mark.slow  # over a minute on 2 cores; a smaller real test of the same kind stays in the default suite
def test_a_sixty_review_reader_read_in_several_chunks_on_the_real_model(
    embedded_llm, sample_inputs, make_settings
) -> None:
    """A 60-review reader with a context forced small: every review read, several chunks, well-formed
    pooled answers (a statement subset keeps the test short)."""
    reader = synthetic_reader(sample_inputs, 60)
    config = ProfilerSettings(context_tokens=2048, summary_max_tokens=24)
    builder = ProfileBuilder(
        make_settings(),
        config,
        annotator=embedded_llm,
        author=embedded_llm,
        statements=load_seed_statements()[:6],
    )
    [profile], stats = builder.build([reader])
    e = profile.evidence
    assert (e.reviews_total, e.reviews_read) == (60, 60) and e.chunks > 1 and e.pooling == "sum-logprob"
    assert (e.unreadable_stances, e.unreadable_items, e.review_chars_cap) == (0, 0, 0)
    assert stats.chunked_users == 1 and stats.chunks == e.chunks
    # every chunk fits the forced context, and together they hold each review once
    history = builder.history(reader)
    assert len(history.chunks) == e.chunks
    assert all(embedded_llm.count_tokens(c) <= builder.chunk_tokens for c in history.chunks)
    assert sum(len(re.findall(r"^\d+\. Review", c, re.MULTILINE)) for c in history.chunks) == 60
    # pooled answers are distributions: a stance and a real probability each, every trait from 4 items
    assert len(profile.values) == 6
    for v in profile.values:
        assert v.stance in (profile_pb2.STANCE_SUPPORT, profile_pb2.STANCE_OPPOSE, profile_pb2.STANCE_NEUTRAL)
        assert v.HasField("confidence") and 0.0 < v.confidence <= 1.0
    for t in profile.personality.traits:
        assert t.level in (profile_pb2.TRAIT_LEVEL_HIGH, profile_pb2.TRAIT_LEVEL_LOW)
        assert 0.0 <= t.score <= 1.0 and (t.readable_items, t.items) == (4, 4)
    assert profile.user_summary


def test_unreadable_answers_on_a_real_endpoint_without_logprobs(
    embedded_llm, sample_inputs, make_settings
) -> None:
    """The real model behind an OpenAI-compatible server that returns no log-probabilities: every answer is
    parsed from text. Whatever the model says, an answer naming no allowed label is unreadable and counted,
    a trait with fewer readable items than the minimum is UNKNOWN, and no confidence is claimed."""
    server = OpenAICompatServer(embedded_llm, model_name="smol").start()
    try:
        remote = OpenAILLM(
            LLMEndpoint(
                backend="openai", model="smol", base_url=server.base_url, max_tokens=24, logprobs=False
            )
        )
        config = ProfilerSettings(
            prompt_review_chars=1200, summary_max_tokens=16, remote_batch_size=3, min_readable_items=3
        )
        builder = ProfileBuilder(
            make_settings(), config, annotator=remote, author=remote, statements=load_seed_statements()[:3]
        )
        [p], stats = builder.build([sample_inputs[NO_GENDER]])
        remote.close()
    finally:
        server.stop()
    assert p.evidence.review_chars_cap == 1200 and p.evidence.reviews_read < p.evidence.reviews_total
    assert all(not v.HasField("confidence") for v in p.values)
    unreadable = [v for v in p.values if v.stance == profile_pb2.STANCE_UNREADABLE]
    assert p.evidence.unreadable_stances == len(unreadable) == stats.unreadable_stances
    readable_items = sum(t.readable_items for t in p.personality.traits)
    assert p.evidence.unreadable_items == 20 - readable_items == stats.unreadable_items
    for t in p.personality.traits:
        assert t.items == 4
        if t.readable_items < 3:
            assert t.level == profile_pb2.TRAIT_LEVEL_UNKNOWN and t.score == 0.0
        else:
            assert t.level in (profile_pb2.TRAIT_LEVEL_HIGH, profile_pb2.TRAIT_LEVEL_LOW)


def test_classifier_estimator_reads_a_local_model_in_the_configured_label_order(tmp_path: Path) -> None:
    """A tiny randomly initialised sequence classifier saved locally (no download) stands in for RoBERTa."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from gravity_core.llm.models import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("smollm2-135m"))
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_labels=5,
        pad_token_id=tokenizer.pad_token_id,
    )
    model_dir = tmp_path / "tiny-big5"
    LlamaForSequenceClassification(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    assert len(json.loads((model_dir / "config.json").read_text())["id2label"]) == 5

    context = ReviewHistory(("1. Review (rated 5/5): I adored every page of this gentle mystery.",), 1, 1)
    ocean = ClassifierEstimator(ClassifierSettings(path=str(model_dir), threshold=0.5)).estimate(context)
    reversed_order = ClassifierEstimator(
        ClassifierSettings(path=str(model_dir), label_order=list("NAECO"))
    ).estimate(context)
    assert ocean.estimator == f"classifier:{model_dir}"
    assert [t.trait for t in ocean.traits] == [
        profile_pb2.TRAIT_OPENNESS,
        profile_pb2.TRAIT_CONSCIENTIOUSNESS,
        profile_pb2.TRAIT_EXTRAVERSION,
        profile_pb2.TRAIT_AGREEABLENESS,
        profile_pb2.TRAIT_NEUROTICISM,
    ]
    scores = [t.score for t in ocean.traits]
    assert [t.score for t in reversed_order.traits] == pytest.approx(scores[::-1])
    for t in ocean.traits:
        assert 0.0 <= t.score <= 1.0
        assert t.level == (profile_pb2.TRAIT_LEVEL_HIGH if t.score >= 0.5 else profile_pb2.TRAIT_LEVEL_LOW)
    wrong = ClassifierSettings(path=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"config\.json"):
        ClassifierEstimator(wrong)
