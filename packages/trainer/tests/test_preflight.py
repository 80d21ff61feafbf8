"""Checks before any model loads: manifest checksum, base model, output directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gravity.v1 import training_pb2
from gravity_core.adapters import write_adapter_ref
from gravity_core.errors import InvalidInput, NotFound
from gravity_trainer.preflight import (
    RUN_RECORD,
    RUN_STATE,
    WORK_DIR,
    OutState,
    canonical_model_name,
    check_base_model,
)
from gravity_trainer.run import TrainRequest, prepare, resolve_dataset_arg


def _request(pairs: Path, out: Path, **kw) -> TrainRequest:
    return TrainRequest(
        pairs=pairs,
        recipe=kw.pop("recipe", "gravity-dpo"),
        out=out,
        base_model=kw.pop("base_model", "smollm2-135m"),
        **kw,
    )


def test_model_names_compare_by_alias_and_last_part() -> None:
    assert canonical_model_name("smollm2-135m") == canonical_model_name(
        "/root/.cache/gravity/models/smollm2-135m-instruct/"
    )
    assert canonical_model_name("meta-llama/Llama-3.1-8B-Instruct") == canonical_model_name(
        "/models/Llama-3.1-8B-Instruct"
    )
    check_base_model("", "anything", False)  # a manifest without a base model constrains nothing
    check_base_model("meta-llama/Llama-3.1-8B-Instruct", "smollm2", True)  # forced
    with pytest.raises(InvalidInput, match="built for base model"):
        check_base_model("meta-llama/Llama-3.1-8B-Instruct", "smollm2-135m", False)


def test_base_model_mismatch_fails_before_training(make_pairs: Callable[..., Path], tmp_path: Path) -> None:
    pairs = make_pairs({"gravity": 4}, base_model="meta-llama/Llama-3.1-8B-Instruct")
    with pytest.raises(InvalidInput) as err:
        prepare(_request(pairs, tmp_path / "out"))
    assert err.value.field == "base_model"
    assert prepare(_request(pairs, tmp_path / "out", allow_base_mismatch=True)).out_state is OutState.FRESH


def test_manifest_checksum_mismatch(make_pairs: Callable[..., Path], tmp_path: Path) -> None:
    pairs = make_pairs({"gravity": 4})
    with pytest.raises(InvalidInput, match="expected 0000000000000000") as err:
        prepare(_request(pairs, tmp_path / "out", expected_manifest_sha256="0" * 64))
    assert err.value.field == "manifest_sha256"


def test_recipe_must_fit_the_dataset_kind(make_pairs: Callable[..., Path], tmp_path: Path) -> None:
    pairs = make_pairs({"gravity": 4, "user-sft": 4})
    with pytest.raises(InvalidInput, match="holds DPO rows; recipe user-sft trains on SFT rows"):
        prepare(_request(pairs, tmp_path / "out", recipe="user-sft", dataset="gravity"))
    with pytest.raises(NotFound, match=r"no manifest\.json"):
        prepare(_request(tmp_path, tmp_path / "out"))


def test_output_directory_states(make_pairs: Callable[..., Path], tmp_path: Path) -> None:
    pairs = make_pairs({"gravity": 4})
    out = tmp_path / "out"
    fresh = prepare(_request(pairs, out))
    assert fresh.out_state is OutState.FRESH

    # unrelated files: refused
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not empty and holds no GRAVITY adapter"):
        prepare(_request(pairs, out))
    (out / "notes.txt").unlink()

    # an interrupted run: resumed with the same settings, refused with others
    (out / WORK_DIR).mkdir()
    import json

    (out / WORK_DIR / RUN_STATE).write_text(json.dumps({"identity": fresh.identity.to_dict()}))
    assert prepare(_request(pairs, out)).out_state is OutState.RESUME
    with pytest.raises(InvalidInput, match="holds an unfinished run of recipe gravity-dpo"):
        prepare(_request(pairs, out, overrides={"max_steps": 3}))

    # a finished adapter: the same run is done, anything else is refused
    (out / "adapter_config.json").write_text("{}")
    (out / RUN_RECORD).write_text(json.dumps({"identity": fresh.identity.to_dict()}))
    write_adapter_ref(
        out, training_pb2.AdapterRef(adapter_id="gravity-x", recipe="gravity-dpo", dataset_id="test/gravity")
    )
    assert prepare(_request(pairs, out)).out_state is OutState.DONE
    with pytest.raises(InvalidInput, match="already holds adapter 'gravity-x'"):
        prepare(_request(pairs, out, overrides={"beta": 0.1}))


def test_dataset_argument_accepts_a_dataset_directory(make_pairs: Callable[..., Path]) -> None:
    pairs = make_pairs({"gravity": 2})
    assert resolve_dataset_arg(str(pairs), "gravity") == (pairs, "gravity")
    assert resolve_dataset_arg(None, str(pairs / "gravity")) == (pairs, "gravity")
    assert resolve_dataset_arg(None, str(pairs)) == (pairs, "")
    with pytest.raises(NotFound):
        resolve_dataset_arg(None, str(pairs / "nothing" / "here"))
    with pytest.raises(InvalidInput, match="--pairs"):
        resolve_dataset_arg(None, "gravity")
