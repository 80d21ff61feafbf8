"""The judge's metrics in the experiment tracker (issue 18): both protocols' numbers overall, per country and per
genre, and the report files, read back from real TensorBoard event files — after `gravity judge` on the embedded
SmolLM2, after the service's Evaluate, and from the report of a scripted evaluation (fast)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from judge_fixtures import METHOD_TEXTS, ScriptedJudge, generation, unit_rows

from gravity.v1 import judge_pb2, judge_pb2_grpc
from gravity_core.cli.main import cli
from gravity_core.config import load_settings
from gravity_core.extras import MissingExtra
from gravity_core.grpc import make_channel, wait_for_serving
from gravity_core.profiles import ProfileStore
from gravity_core.proto_io import write_jsonl
from gravity_core.service import start_in_thread
from gravity_core.skips import SkipLog
from gravity_core.tracking import FILES_DIR, open_tracker
from gravity_judge.inputs import assemble, rows_from_file
from gravity_judge.persona import Persona
from gravity_judge.pipeline import evaluate
from gravity_judge.report import write_report
from gravity_judge.service import SERVICE_NAME, JudgeService
from gravity_judge.settings import JudgeSettings
from gravity_judge.tracked import report_scalars

NO_SIMILARITY = ["ranking", "pairwise", "likert"]  # no MiniLM in the fast tests


def _events(run_dir: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return events


def _scalars(run_dir: Path) -> dict[str, float]:
    events = _events(run_dir)
    return {tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"]}


def _value(report: dict[str, Any], protocol: str, *path: str) -> float:
    node: Any = report["metrics_by_protocol"][protocol]
    for key in path:
        node = node[key]
    return float(node["value"])


def test_every_protocol_country_and_genre_number_and_the_report_files_reach_tensorboard(
    tmp_path: Path, generations_path: Path, profiles_path: Path
) -> None:
    skips = SkipLog()
    store = ProfileStore.from_jsonl(profiles_path, skips)
    evalset = assemble(
        rows_from_file(generations_path, skips),
        lambda uid: Persona.from_profile(store.get(uid)) if uid in store else None,
        skips,
    )
    cfg = JudgeSettings(bootstrap_samples=50, metrics=NO_SIMILARITY)
    settings = load_settings(env={}, overrides={"tracking.dir": str(tmp_path / "tb")})
    run, report = evaluate(evalset, ScriptedJudge, settings, cfg)  # type: ignore[arg-type]
    files = write_report(report, tmp_path / "out", run=run)

    tracker = open_tracker(settings, "judge-scripted", ["tensorboard"])
    assert tracker is not None
    from gravity_judge.tracked import log_report

    log_report(tracker, report, files)
    tracker.close()

    run_dir = tmp_path / "tb" / "judge-scripted"
    logged = _scalars(run_dir)
    assert logged == pytest.approx(report_scalars(report))
    for protocol in ("paper", "debiased"):
        assert logged[f"judge/{protocol}/overall/gravity/top1_win_rate"] == pytest.approx(
            _value(report, protocol, "overall", "gravity", "top1_win_rate")
        )
        assert logged[f"judge/{protocol}/overall/lamp/preference_gain"] == pytest.approx(
            _value(report, protocol, "overall", "lamp", "preference_gain")
        )
        for country in ("USA", "Brazil", "India", "Japan"):
            assert f"judge/{protocol}/country/{country}/gravity/preference_gain" in logged
        for genre in ("Literature & Fiction", "Business & Money"):
            assert logged[f"judge/{protocol}/genre/{genre}/gravity/interestingness"] == pytest.approx(
                _value(report, protocol, "by_genre_group", genre, "methods", "gravity", "interestingness")
            )
    assert "judge/debiased/position_bias/pairwise/position_bias_rate/before" in logged
    assert "judge/agreement/kendall_tau" in logged
    # a metric that was not run is not logged (never as a pretend 0)
    assert not [tag for tag in logged if tag.endswith("/similarity")]
    assert "judge/report/text_summary" in _events(run_dir).Tags()["tensors"]
    copied = run_dir / FILES_DIR
    assert sorted(p.name for p in copied.iterdir()) == sorted(files)
    assert json.loads((copied / "report.json").read_text()) == json.loads(files["report.json"].read_text())


@pytest.fixture
def tracked_service(make_settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = make_settings(
        **{
            "judge.bootstrap_samples": 20,
            "judge.metrics": NO_SIMILARITY,
            "tracking.report_to": "tensorboard",
            "tracking.dir": str(tmp_path / "tb"),
        }
    )
    running = start_in_thread(JudgeService(settings, llm=ScriptedJudge()), settings, port=0, poll_s=0.1)
    channel = make_channel(running.target)
    wait_for_serving(channel, SERVICE_NAME, timeout_s=60)
    yield judge_pb2_grpc.JudgeServiceStub(channel), tmp_path / "tb"
    channel.close()
    running.stop(0.5)


def test_the_service_logs_each_evaluation_to_the_configured_tracker(tracked_service) -> None:  # type: ignore[no-untyped-def]
    stub, tb = tracked_service
    personas = [judge_pb2.JudgePersona(user_id="U_USA", country="USA", user_summary="Likes sea stories.")]
    gens = unit_rows("U_USA", "B1", METHOD_TEXTS)
    events = list(
        stub.Evaluate(judge_pb2.EvaluateRequest(generations=gens, personas=personas, report_name="nightly"))
    )
    report = json.loads(events[-1].result.report_json)
    logged = _scalars(tb / "judge-nightly")
    for protocol in ("paper", "debiased"):
        assert logged[f"judge/{protocol}/overall/gravity/top1_win_rate"] == pytest.approx(
            _value(report, protocol, "overall", "gravity", "top1_win_rate")
        )
        assert f"judge/{protocol}/country/USA/gravity/preference_gain" in logged
    assert (tb / "judge-nightly" / FILES_DIR / "report.html").is_file()

    list(stub.Evaluate(judge_pb2.EvaluateRequest(generations=gens, personas=personas)))  # unnamed
    (unnamed,) = [d for d in tb.iterdir() if d.name.startswith("judge-evaluate-")]
    assert "judge/units" in _scalars(unnamed)


def test_an_unusable_tracker_is_a_configuration_error_before_any_judging(
    make_settings, tmp_path: Path, generations_path: Path, profiles_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(**{"tracking.report_to": "wandb"})
    with pytest.raises(MissingExtra, match=r"report_to wandb needs gravity-core\[wandb\]"):
        JudgeService(settings, llm=ScriptedJudge()).start()
    result = CliRunner().invoke(
        cli,
        ["judge", "--generations", str(generations_path), "--profiles", str(profiles_path),
         "--out", str(tmp_path / "out"), "--report-to", "mlflow"],
    )  # fmt: skip
    assert isinstance(result.exception, MissingExtra) and "gravity-core[mlflow]" in str(result.exception)
    assert not (tmp_path / "out").exists()


@pytest.mark.model
def test_gravity_judge_on_the_embedded_model_logs_both_protocols_to_tensorboard(
    tmp_path: Path, profiles_path: Path
) -> None:
    rows = []
    texts = {
        k: v.replace("VIVID", "vivid")
        for k, v in METHOD_TEXTS.items()
        if k in ("original", "lamp", "gravity")
    }
    for user, asin, genre in (("U_USA", "B1", "Literature & Fiction"), ("U_JPN", "B2", "Business & Money")):
        rows += [generation(user, asin, method, text, genre) for method, text in texts.items()]
    gens = tmp_path / "generations.jsonl"
    write_jsonl(rows, gens)
    config = tmp_path / "gravity.toml"
    config.write_text(
        "[llm.defaults]\nmax_tokens = 64\n\n[cache]\nenabled = false\n\n"
        '[judge]\nbootstrap_samples = 20\nmetrics = ["ranking", "pairwise"]\n\n'
        f'[tracking]\ndir = "{tmp_path / "tb"}"\n'
    )
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "judge", "--generations", str(gens), "--profiles", str(profiles_path),
         "--out", str(tmp_path / "report"), "--report-to", "tensorboard"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "tb" / "judge-report"  # judge-<--out directory name>
    assert f"tracked: run judge-report in tensorboard ({run_dir})" in result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    logged = _scalars(run_dir)
    for protocol in ("paper", "debiased"):
        overall = report["metrics_by_protocol"][protocol]["overall"]
        wins = [
            logged[f"judge/{protocol}/overall/{m}/top1_win_rate"] for m in ("original", "lamp", "gravity")
        ]
        assert wins == pytest.approx(
            [overall[m]["top1_win_rate"]["value"] for m in ("original", "lamp", "gravity")]
        )
        assert f"judge/{protocol}/country/Japan/gravity/preference_gain" in logged
        assert f"judge/{protocol}/genre/Business & Money/lamp/top1_win_rate" in logged
    assert (run_dir / FILES_DIR / "judgments.jsonl").is_file()
