"""gravity.v1.JudgeService on 127.0.0.1: Rank, Compare, Rate and streaming Evaluate on the real SmolLM2;
validation errors; personas from a followed gravity.profiles.v1 topic (real broker) and skips to the DLQ."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest
from judge_fixtures import METHOD_TEXTS, USERS, ScriptedJudge, generation, profile, unit_rows

from gravity.v1 import common_pb2, judge_pb2, judge_pb2_grpc
from gravity_core.bus import Bus
from gravity_core.errors import ConfigError
from gravity_core.grpc import make_channel, wait_for_serving
from gravity_core.grpc.client import health_status
from gravity_core.service import start_in_thread
from gravity_judge.service import SERVICE_NAME, JudgeService

PERSONA = judge_pb2.JudgePersona(
    user_id="reader-1",
    age_group="young",
    gender="female",
    country="Brazil",
    user_summary="She loves beach reads.",
)
SHORT = {k: v.replace("VIVID", "vivid") for k, v in METHOD_TEXTS.items()}


def _stub(running) -> judge_pb2_grpc.JudgeServiceStub:  # type: ignore[no-untyped-def]
    channel = make_channel(running.target)
    wait_for_serving(channel, SERVICE_NAME, timeout_s=60)
    return judge_pb2_grpc.JudgeServiceStub(channel)


@pytest.fixture
def real_service(make_settings, embedded_llm, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = make_settings(**{"judge.bootstrap_samples": 50, "judge.orders": 2})
    running = start_in_thread(JudgeService(settings, llm=embedded_llm), settings, port=0, poll_s=0.1)
    yield running, settings
    running.stop(0.5)


@pytest.mark.model
def test_rank_compare_rate_and_streaming_evaluate(real_service) -> None:  # type: ignore[no-untyped-def]
    running, settings = real_service
    stub = _stub(running)
    assert health_status(make_channel(running.target), SERVICE_NAME) == "SERVING"
    candidates = [judge_pb2.Candidate(id=k, text=SHORT[k]) for k in ("original", "lamp", "gravity")]

    ranked = stub.Rank(
        judge_pb2.RankRequest(persona=PERSONA, candidates=candidates, orders=2, seed=5), timeout=300
    )
    assert ranked.usable and sorted(ranked.ranking) == ["gravity", "lamp", "original"]
    assert sum(ranked.first_place_probability.values()) == pytest.approx(1.0, abs=1e-4)
    assert ranked.order_agreement in (0.0, 0.5, 1.0)
    again = stub.Rank(
        judge_pb2.RankRequest(persona=PERSONA, candidates=candidates, orders=2, seed=5), timeout=300
    )
    assert list(again.ranking) == list(ranked.ranking)  # seeded orders: the same answer

    pair = stub.Compare(
        judge_pb2.CompareRequest(persona=PERSONA, a=candidates[0], b=candidates[2]), timeout=300
    )
    assert pair.usable and 0.0 < pair.probability_a < 1.0
    assert pair.preferred in ("original", "gravity", "")
    assert pair.orders_agree != pair.position_biased

    rating = stub.Rate(judge_pb2.RateRequest(persona=PERSONA, candidate=candidates[2]), timeout=300)
    assert rating.usable and 1.0 <= rating.score <= 5.0 and len(rating.distribution) == 5

    gens = [g for g in unit_rows("reader-1", "B1", {k: SHORT[k] for k in ("original", "lamp", "gravity")})]
    gens.append(generation("reader-1", "B1", "not-a-method", "x"))
    events = list(
        stub.Evaluate(
            judge_pb2.EvaluateRequest(generations=gens, personas=[PERSONA], report_name="svc-test"),
            timeout=600,
        )
    )
    progress = [e.progress for e in events if e.HasField("progress")]
    assert {p.stage for p in progress} == {"similarity", "paper-ranking", "ranking", "pairwise", "likert"}
    assert all(p.done <= p.total for p in progress)
    result = events[-1].result
    report = json.loads(result.report_json)
    assert report["sample"]["units"] == 1 and report["judge"]["model"] == "smollm2-135m"
    assert report["protocols"]["run"] == ["paper", "debiased"]  # the default: both
    assert report["agreement"]["units"] == 1
    assert result.unusable_judgments == 0
    assert [(s.reason, s.source_line) for s in result.skipped] == [("unknown_method", 4)]
    folder = Path(settings.artifacts.path()) / "reports" / "svc-test"
    assert result.report_uri == folder.resolve().as_uri()
    assert {p.name for p in folder.iterdir()} == {
        "report.json",
        "report.md",
        "report.html",
        "judgments.jsonl",
    }
    records = (folder / "judgments.jsonl").read_text().splitlines()
    assert len(records) == report["judgments"]["records"] > 0


@pytest.fixture
def scripted_service(make_settings):  # type: ignore[no-untyped-def]
    # no similarity: these tests load no model at all
    settings = make_settings(
        **{"judge.bootstrap_samples": 20, "judge.metrics": ["ranking", "pairwise", "likert"]}
    )
    service = JudgeService(settings, llm=ScriptedJudge())
    running = start_in_thread(service, settings, port=0, poll_s=0.1)
    yield running, service
    running.stop(0.5)


def test_requests_are_validated_with_the_field_named(scripted_service) -> None:  # type: ignore[no-untyped-def]
    running, _service = scripted_service
    stub = _stub(running)
    one = [judge_pb2.Candidate(id="a", text="t")]
    cases = [
        (
            lambda: stub.Rank(judge_pb2.RankRequest(persona=PERSONA, candidates=one)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "candidates",
        ),
        (
            lambda: stub.Rank(
                judge_pb2.RankRequest(
                    persona=PERSONA, candidates=[*one, judge_pb2.Candidate(id="a", text="u")]
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "candidates[1].id",
        ),
        (
            lambda: stub.Rate(judge_pb2.RateRequest(candidate=one[0])),
            grpc.StatusCode.INVALID_ARGUMENT,
            "persona",
        ),
        (
            lambda: stub.Rate(
                judge_pb2.RateRequest(persona=judge_pb2.JudgePersona(user_id="nobody"), candidate=one[0])
            ),
            grpc.StatusCode.NOT_FOUND,
            "user_id",
        ),
        (
            lambda: stub.Compare(judge_pb2.CompareRequest(persona=PERSONA, a=one[0], b=one[0])),
            grpc.StatusCode.INVALID_ARGUMENT,
            "b.id",
        ),
        (
            lambda: stub.Rate(judge_pb2.RateRequest(persona=PERSONA, candidate=judge_pb2.Candidate(id="x"))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "candidate.text",
        ),
        (
            lambda: list(stub.Evaluate(judge_pb2.EvaluateRequest())),
            grpc.StatusCode.INVALID_ARGUMENT,
            "generations",
        ),
        (
            lambda: list(
                stub.Evaluate(
                    judge_pb2.EvaluateRequest(
                        generations=[generation("u", "b", "original", "o")], report_name="../escape"
                    )
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "report_name",
        ),
        (
            lambda: list(
                stub.Evaluate(
                    judge_pb2.EvaluateRequest(
                        generations=[generation("u", "b", "original", "o")],
                        protocol=99,  # type: ignore[arg-type]
                    )
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "protocol",
        ),
    ]
    for call, code, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == code and err.value.details().startswith(field), err.value.details()


def test_evaluate_runs_the_protocol_asked_for(scripted_service, profiles_path: Path) -> None:  # type: ignore[no-untyped-def]
    running, service = scripted_service
    stub = _stub(running)
    personas = [judge_pb2.JudgePersona(user_id="U_USA", country="USA", user_summary="Likes sea stories.")]
    gens = unit_rows("U_USA", "B1", METHOD_TEXTS)
    runs = {}
    for protocol in (
        judge_pb2.JUDGE_PROTOCOL_UNSPECIFIED,
        judge_pb2.JUDGE_PROTOCOL_PAPER,
        judge_pb2.JUDGE_PROTOCOL_DEBIASED,
    ):
        events = list(
            stub.Evaluate(judge_pb2.EvaluateRequest(generations=gens, personas=personas, protocol=protocol))
        )
        report = json.loads(events[-1].result.report_json)
        runs[protocol] = (report, {e.progress.stage for e in events if e.HasField("progress")})
    both, paper, debiased = runs.values()
    assert both[0]["protocols"]["run"] == ["paper", "debiased"] and service.cfg.protocol == "both"
    assert paper[0]["protocols"]["run"] == ["paper"] and paper[1] == {"paper-ranking", "likert"}
    overall = paper[0]["metrics"]["overall"]
    assert overall["gravity"]["top1_win_rate"]["value"] + overall["lamp"]["top1_win_rate"]["value"] == 100.0
    assert paper[0]["agreement"] is None and "debiased" not in paper[0]["position_bias"]
    assert debiased[0]["protocols"]["run"] == ["debiased"] and "paper-ranking" not in debiased[1]
    assert debiased[0]["metrics"] == debiased[0]["metrics_by_protocol"]["debiased"]


def test_profiles_file_is_loaded_at_start(make_settings, profiles_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(**{"judge.profiles_file": str(profiles_path)})
    running = start_in_thread(JudgeService(settings, llm=ScriptedJudge()), settings, port=0, poll_s=0.1)
    try:
        rating = _stub(running).Rate(
            judge_pb2.RateRequest(
                persona=judge_pb2.JudgePersona(user_id="U_BRA"),
                candidate=judge_pb2.Candidate(id="x", text="A VIVID one."),
            )
        )
        assert rating.usable and rating.score > 4.0
    finally:
        running.stop(0.5)
    missing = make_settings(**{"judge.profiles_file": str(profiles_path.with_name("nope.jsonl"))})
    with pytest.raises(ConfigError, match="profiles_file"):
        JudgeService(missing, llm=ScriptedJudge()).start()


def test_evaluate_with_nothing_judgeable_reports_the_skips(scripted_service) -> None:  # type: ignore[no-untyped-def]
    running, _service = scripted_service
    stub = _stub(running)
    events = list(
        stub.Evaluate(judge_pb2.EvaluateRequest(generations=unit_rows("ghost", "B1", METHOD_TEXTS)))
    )
    result = events[-1].result
    assert json.loads(result.report_json)["sample"]["units"] == 0
    assert [s.reason for s in result.skipped] == ["missing_profile"] and result.skipped[0].service == "judge"


@pytest.mark.broker
def test_personas_from_followed_profiles_and_skips_to_the_dlq(make_settings, broker) -> None:  # type: ignore[no-untyped-def]
    from kafka import KafkaConsumer, TopicPartition

    settings = make_settings(
        broker=broker,
        **{
            "judge.follow_profiles": True,
            "judge.bootstrap_samples": 20,
            "judge.metrics": ["ranking", "pairwise", "likert"],
        },
    )
    service = JudgeService(settings, llm=ScriptedJudge())
    running = start_in_thread(service, settings, port=0, poll_s=0.2)
    try:
        stub = _stub(running)  # SERVING only once the profile consumer joined its group
        bus = Bus(settings.kafka, "test")
        bus.publish(settings.kafka.topics.profiles, "U_JPN", profile("U_JPN", *USERS["U_JPN"]))
        deadline = time.monotonic() + 60
        while "U_JPN" not in service.store and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "U_JPN" in service.store
        rating = stub.Rate(
            judge_pb2.RateRequest(
                persona=judge_pb2.JudgePersona(user_id="U_JPN"),
                candidate=judge_pb2.Candidate(id="g", text="A VIVID tale."),
            )
        )
        assert rating.usable and rating.score > 4.0

        gens = [*unit_rows("U_JPN", "B1", METHOD_TEXTS), generation("U_JPN", "B1", "nope", "x")]
        result = list(stub.Evaluate(judge_pb2.EvaluateRequest(generations=gens)))[-1].result
        assert json.loads(result.report_json)["sample"]["units"] == 1

        consumer = KafkaConsumer(
            bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=20000
        )
        consumer.assign([TopicPartition(settings.kafka.topics.dlq, 0)])
        letters = []
        for record in consumer:
            letters.append(common_pb2.DeadLetter.FromString(record.value))
            break
        consumer.close()
        assert letters and letters[0].service == "judge" and letters[0].reason == "unknown_method"
        assert letters[0].source_line == 6
        bus.close()
    finally:
        running.stop(0.5)


@pytest.mark.model
def test_the_embedding_model_is_loaded_at_start_not_in_the_first_evaluation(
    make_settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The similarity metric's model loads in the service's background load, after the judge model: on
    2 cores its import and load took the demo's judging stage 8 of its 20 s."""
    from gravity_core import embeddings

    monkeypatch.setattr(embeddings, "_models", {})
    settings = make_settings()
    running = start_in_thread(JudgeService(settings), settings, port=0, poll_s=0.1)
    try:
        _stub(running)  # SERVING: the judge model is loaded
        deadline = time.monotonic() + 300
        while not embeddings._models and time.monotonic() < deadline:
            time.sleep(0.2)
        assert embeddings._models, "no embedding model was loaded without an evaluation"
    finally:
        running.stop(0.5)
