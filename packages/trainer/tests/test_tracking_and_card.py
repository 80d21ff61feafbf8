"""A real tracked training run (issue 18): the TensorBoard event file holds the training loss; the adapter's model
card is in the Hub's format (real base model id, license, prompt format) and its usage snippet, which imports only
transformers, peft and torch, generates text from the adapter; `gravity publish adapter --to-dir` writes the
repository's files. Unusable trackers fail before any model is loaded."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from gravity_core.cli.main import cli
from gravity_core.errors import GravityError
from gravity_core.extras import MissingExtra
from gravity_core.hub import ADAPTER_LINE, adapter_line
from gravity_core.llm.models import SMOLLM2_HUB_ID, ensure_smollm2

SMALL = ["--max-steps", "2", "--set", "per_device_train_batch_size=2", "--set", "max_eval_rows=2"]


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "gravity.toml"
    config.write_text(f'[tracking]\ndir = "{tmp_path / "tb"}"\n')
    return config


def _scalars(run_dir: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _snippet(card: str) -> str:
    (code,) = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    return code


@pytest.mark.model
def test_tracked_run_logs_the_loss_to_tensorboard_and_writes_a_hub_model_card(
    make_pairs: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = make_pairs({"gravity": 6})
    out = tmp_path / "adapter"
    result = CliRunner().invoke(
        cli,
        ["--config", str(_config(tmp_path)), "train", "--pairs", str(pairs), "--recipe", "gravity-dpo",
         "--out", str(out), *SMALL, "--report-to", "tensorboard", "--run-name", "tb-run"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert f"tracking: tensorboard run tb-run ({tmp_path / 'tb' / 'tb-run'})" in result.output

    # the training loss of both steps, and the held-out metrics, in the run's event file
    scalars = _scalars(tmp_path / "tb" / "tb-run")
    assert len(scalars["train/loss"]) == 2
    assert "eval/loss" in scalars and "train/learning_rate" in scalars

    # the model card: Hub metadata with the real base model id, never the alias it was trained from
    from huggingface_hub import ModelCard

    text = (out / "README.md").read_text()
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == SMOLLM2_HUB_ID and card.data.license == "apache-2.0"
    assert card.data.library_name == "peft" and "dpo" in card.data.tags
    assert "smollm2-135m" not in text and str(ensure_smollm2()) not in text  # no alias, no local path
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == SMOLLM2_HUB_ID
    assert (
        "## Prompt format" in text and "You are a young female from Japan. You enjoy reading Poetry" in text
    )
    assert (
        "Please generate a more engaging and interesting description for this book: The Lantern Keeper"
        in text
    )
    assert "| dataset | `test/gravity`" in text

    # the usage snippet imports transformers, peft and torch only, and runs: here on the local files
    code = _snippet(text)
    imported = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported == {"torch", "peft", "transformers"}
    assert f'BASE = "{SMOLLM2_HUB_ID}"' in code and ADAPTER_LINE in code
    local = (
        code.replace(f'BASE = "{SMOLLM2_HUB_ID}"', f"BASE = {str(ensure_smollm2())!r}")
        .replace(ADAPTER_LINE, f"ADAPTER = {str(out)!r}")
        .replace("max_new_tokens=256", "max_new_tokens=8")
    )
    capsys.readouterr()
    exec(compile(local, "model-card-snippet", "exec"), {})
    assert capsys.readouterr().out.strip()

    # gravity publish adapter --to-dir: exactly the repository's files, the snippet naming the repository
    repo = tmp_path / "repo"
    published = CliRunner().invoke(
        cli,
        ["publish", "adapter", str(out), "--repo-id", "gravity-org/gravity-adapter", "--to-dir", str(repo),
         "--dataset-repo-id", "gravity-org/gravity-pairs"],
    )  # fmt: skip
    assert published.exit_code == 0, published.output + repr(published.exception)
    assert sorted(p.name for p in repo.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert (repo / "adapter_model.safetensors").read_bytes() == (
        out / "adapter_model.safetensors"
    ).read_bytes()
    repo_card = ModelCard.load(repo / "README.md")
    assert repo_card.data.datasets == ["gravity-org/gravity-pairs"]
    assert repo_card.data.base_model == SMOLLM2_HUB_ID
    assert (
        adapter_line("gravity-org/gravity-adapter") in repo_card.text and ADAPTER_LINE not in repo_card.text
    )


def test_an_unusable_tracker_fails_before_any_model_is_loaded(
    make_pairs: Callable[..., Path], tmp_path: Path
) -> None:
    pairs = make_pairs({"gravity": 6})
    for tracker, extra in (("mlflow", "mlflow"), ("wandb", "wandb")):
        result = CliRunner().invoke(
            cli,
            ["--config", str(_config(tmp_path)), "train", "--pairs", str(pairs), "--recipe", "gravity-dpo",
             "--out", str(tmp_path / tracker), *SMALL, "--report-to", tracker],
        )  # fmt: skip
        assert isinstance(result.exception, MissingExtra), result.output
        assert f"report_to {tracker} needs gravity-core[{extra}]" in str(result.exception)
        assert not (tmp_path / tracker).exists()
    bad = CliRunner().invoke(
        cli,
        ["train", "--pairs", str(pairs), "--recipe", "gravity-dpo", "--out", str(tmp_path / "x"),
         "--report-to", "comet"],
    )  # fmt: skip
    assert isinstance(bad.exception, GravityError) and "unknown tracker 'comet'" in str(bad.exception)


def test_report_to_and_run_name_do_not_change_the_run_identity(make_pairs: Callable[..., Path]) -> None:
    from gravity_trainer.run import TrainRequest, prepare

    pairs = make_pairs({"gravity": 6})

    def prepared(**overrides: object):  # type: ignore[no-untyped-def]
        return prepare(
            TrainRequest(
                pairs=pairs,
                recipe="gravity-dpo",
                out=pairs.parent / "out",
                base_model="smollm2-135m",
                overrides=dict(overrides),
                tensorboard_root=pairs.parent / "tb",
            ),
            check_out=False,
        )

    plain, tracked = prepared(), prepared(report_to="tensorboard", run_name="mine")
    assert plain.identity == tracked.identity and plain.adapter_id == tracked.adapter_id
    assert plain.tracking.report_to == [] and tracked.tracking.report_to == ["tensorboard"]
    assert tracked.tracking.tensorboard_dir == pairs.parent / "tb" / "mine"
    assert prepared(report_to="tensorboard").tracking.run_name == plain.adapter_id
    assert prepared(lora={"r": 4}).identity != plain.identity


def test_submit_takes_report_to_and_run_name_as_overrides_and_passes_them_to_the_run(
    make_pairs: Callable[..., Path], make_settings: Callable[..., object], tmp_path: Path
) -> None:
    from gravity_core.errors import InvalidInput
    from gravity_trainer.app import TrainerApp
    from gravity_trainer.worker import RunWorker

    app = TrainerApp(make_settings())  # type: ignore[arg-type]
    pairs = make_pairs({"gravity": 6})
    with pytest.raises(InvalidInput, match=r"recipe\.report_to"):
        app.submit(pairs, "gravity", "gravity-dpo", {"report_to": "comet"})
    record, created = app.submit(
        pairs, "gravity", "gravity-dpo", {"report_to": "tensorboard", "run_name": "nightly"}
    )
    assert created and record.overrides == {"report_to": "tensorboard", "run_name": "nightly"}
    worker = RunWorker(app.runs, app.store, None, app.section, app.base_model, app.work_root)
    command = worker.command(record, tmp_path / "out", tmp_path / "progress.jsonl")
    at = command.index("report_to=tensorboard")
    assert command[at - 1] == "--set" and command[at + 1 : at + 3] == ["--set", "run_name=nightly"]
