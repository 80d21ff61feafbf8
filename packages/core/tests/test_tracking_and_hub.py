"""Tracking configuration (report_to as TRL takes it), the Hub id of a base model, and `gravity publish` —
its --to-dir layout, and the errors for a bad repo id, a missing token and a card without a Hub base model.
The real runs (a training run's and the judge's TensorBoard event files, a published trained adapter and pairs
directory) are tested in the trainer, judge and pairgen packages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gravity.v1 import training_pb2
from gravity_core.adapters import write_adapter_ref
from gravity_core.cli.main import cli
from gravity_core.config import load_settings, parse_report_to
from gravity_core.errors import ConfigError, InvalidInput, NotFound
from gravity_core.hub import ADAPTER_LINE, adapter_line, check_repo_id
from gravity_core.llm.models import SMOLLM2_HUB_ID, hub_model_id
from gravity_core.tracking import open_tracker, trainer_environment


def test_report_to_is_read_as_trl_reads_it() -> None:
    assert parse_report_to("none") == [] and parse_report_to(None) == [] and parse_report_to([]) == []
    assert parse_report_to("TensorBoard, mlflow,tensorboard") == ["tensorboard", "mlflow"]
    assert parse_report_to(["wandb", "none"]) == ["wandb"]
    with pytest.raises(ValueError, match="unknown tracker 'comet'"):
        parse_report_to("tensorboard,comet")
    settings = load_settings(None, env={"GRAVITY_TRACKING__REPORT_TO": "tensorboard,wandb"})
    assert settings.tracking.report_to == ["tensorboard", "wandb"]
    with pytest.raises(ConfigError, match="report_to"):
        load_settings(None, env={"GRAVITY_TRACKING__REPORT_TO": "neptune"})
    assert open_tracker(load_settings(None, env={}), "run") is None  # nothing configured, nothing opened
    with pytest.raises(InvalidInput, match="run_name"):
        open_tracker(load_settings(None, env={}), "../escape", ["tensorboard"])


def test_mlflow_and_wandb_take_their_experiment_from_the_environment() -> None:
    tracking = load_settings(
        None,
        env={
            "GRAVITY_TRACKING__REPORT_TO": "mlflow,wandb",
            "GRAVITY_TRACKING__EXPERIMENT": "books",
            "GRAVITY_TRACKING__MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "GRAVITY_TRACKING__WANDB_ENTITY": "team",
        },
    ).tracking
    assert trainer_environment(tracking) == {
        "MLFLOW_EXPERIMENT_NAME": "books",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "WANDB_PROJECT": "books",
        "WANDB_ENTITY": "team",
    }
    assert trainer_environment(tracking.model_copy(update={"report_to": []})) == {}


def test_the_hub_id_of_a_base_model_is_never_an_alias_or_a_local_path(tmp_path: Path) -> None:
    assert hub_model_id("smollm2-135m") == SMOLLM2_HUB_ID
    assert hub_model_id("meta-llama/Llama-3.1-8B-Instruct") == "meta-llama/Llama-3.1-8B-Instruct"
    converted = tmp_path / "smollm2-135m-instruct"
    converted.mkdir()
    (converted / "gravity-conversion.json").write_text("{}")
    assert hub_model_id(str(converted)) == SMOLLM2_HUB_ID
    snapshot = tmp_path / "hub" / "models--Qwen--Qwen2.5-0.5B-Instruct" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert hub_model_id(str(snapshot)) == "Qwen/Qwen2.5-0.5B-Instruct"
    named = tmp_path / "finetuned"
    named.mkdir()
    (named / "config.json").write_text(json.dumps({"_name_or_path": "mistralai/Mistral-7B-v0.3"}))
    assert hub_model_id(str(named)) == "mistralai/Mistral-7B-v0.3"
    (named / "config.json").write_text(json.dumps({"_name_or_path": str(tmp_path / "somewhere")}))
    assert hub_model_id(str(named)) == ""
    assert hub_model_id("my-alias") == "" and hub_model_id(str(tmp_path)) == ""


def _adapter(path: Path, base_model: str | None = SMOLLM2_HUB_ID) -> Path:
    path.mkdir()
    (path / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "base_model_name_or_path": "/home/me/models/smollm2"})
    )
    (path / "adapter_model.safetensors").write_bytes(b"weights")
    (path / "training_run.json").write_text("{}")
    front = f"base_model: {base_model}\n" if base_model else ""
    (path / "README.md").write_text(
        f"---\n{front}library_name: peft\nlicense: apache-2.0\n---\n\n# a\n\n```python\n{ADAPTER_LINE}\n```\n"
    )
    write_adapter_ref(path, training_pb2.AdapterRef(adapter_id="a", uri=path.as_uri()))
    return path


def _publish(*args: str) -> object:
    return CliRunner().invoke(cli, ["publish", *args])


def test_publish_adapter_to_dir_writes_exactly_the_repository(tmp_path: Path) -> None:
    source = _adapter(tmp_path / "adapter")
    repo = tmp_path / "repo"
    result = _publish(
        "adapter", str(source), "--repo-id", "org/name", "--private", "--to-dir", str(repo),
        "--dataset-repo-id", "org/pairs",
    )  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "model repository org/name (private): written to" in result.output  # type: ignore[attr-defined]
    # the local-only files (AdapterRef with its file URI, the run record) stay behind
    assert sorted(p.name for p in repo.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert (repo / "adapter_model.safetensors").read_bytes() == b"weights"
    assert json.loads((repo / "adapter_config.json").read_text())["base_model_name_or_path"] == SMOLLM2_HUB_ID
    card = (repo / "README.md").read_text()
    assert adapter_line("org/name") in card and ADAPTER_LINE not in card
    from huggingface_hub import ModelCard

    data = ModelCard(card).data.to_dict()
    assert data["datasets"] == ["org/pairs"] and data["base_model"] == SMOLLM2_HUB_ID
    assert data["library_name"] == "peft" and data["license"] == "apache-2.0"
    assert (source / "README.md").read_text().count(ADAPTER_LINE) == 1  # the source is left as it was

    again = _publish("adapter", str(source), "--repo-id", "org/name", "--to-dir", str(repo))
    assert isinstance(again.exception, InvalidInput) and "not an empty directory" in str(again.exception)  # type: ignore[attr-defined]


def test_publish_refuses_bad_input_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for bad in ("name-only", "org/na me", "../x", "org/name/extra", "org/x.git"):
        with pytest.raises(InvalidInput, match="--repo-id"):
            check_repo_id(bad)
    no_base = _adapter(tmp_path / "local-base", base_model=None)
    result = _publish("adapter", str(no_base), "--repo-id", "org/name", "--to-dir", str(tmp_path / "r"))
    assert isinstance(result.exception, InvalidInput)  # type: ignore[attr-defined]
    assert "names no Hub base model" in str(result.exception) and "base_model_id" in str(result.exception)  # type: ignore[attr-defined]
    not_adapter = tmp_path / "empty"
    not_adapter.mkdir()
    result = _publish("adapter", str(not_adapter), "--repo-id", "org/name", "--to-dir", str(tmp_path / "r"))
    assert isinstance(result.exception, NotFound)  # type: ignore[attr-defined]
    result = _publish("dataset", str(not_adapter), "--repo-id", "org/name", "--to-dir", str(tmp_path / "r"))
    assert isinstance(result.exception, NotFound) and "manifest.json" in str(result.exception)  # type: ignore[attr-defined]

    # no token and no --to-dir: nothing is uploaded, and the error says what to set
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-login"))
    result = _publish("adapter", str(_adapter(tmp_path / "ok")), "--repo-id", "org/name")
    assert isinstance(result.exception, ConfigError)  # type: ignore[attr-defined]
    assert "HF_TOKEN" in str(result.exception) and "--to-dir" in str(result.exception)  # type: ignore[attr-defined]
