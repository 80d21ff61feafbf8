"""The bundled GGUF's one-time conversion (gravity_core.llm.models.ensure_smollm2) on the real file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gravity_core.llm.models import SMOLLM2_DIRNAME, ensure_smollm2, smollm2_converted

pytestmark = pytest.mark.model


def test_the_gguf_is_read_once_and_converts_to_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """transformers parses the GGUF header for the tokenizer's config, the tokenizer, the model's config and
    the weights, and builds the tensor-name map per submodule: shared, a first run converts in about 40 s
    instead of 65 here, into the same bytes, with no weight-loading or shard-writing bar in the converting
    service's log."""
    import gguf

    reference = ensure_smollm2()  # the converted model every other test uses
    parses: list[str] = []
    name_maps: list[tuple[object, int]] = []
    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map

    def counting_reader(path, mode="r"):
        parses.append(str(path))
        return reader(path, mode)

    def counting_name_map(arch, n_blocks):
        name_maps.append((arch, n_blocks))
        return name_map(arch, n_blocks)

    monkeypatch.setattr(gguf, "GGUFReader", counting_reader)
    monkeypatch.setattr(gguf, "get_tensor_name_map", counting_name_map)
    capfd.readouterr()
    assert not smollm2_converted(tmp_path)  # what the demo's estimate asks before a first run
    converted = ensure_smollm2(tmp_path)
    err = capfd.readouterr().err
    assert smollm2_converted(tmp_path)

    assert converted == tmp_path / SMOLLM2_DIRNAME
    assert len(parses) == 1 and len(name_maps) == 1, (parses, name_maps)
    assert gguf.GGUFReader is counting_reader and gguf.get_tensor_name_map is counting_name_map
    for name in ("model.safetensors", "tokenizer.json", "config.json", "tokenizer_config.json"):
        assert (converted / name).read_bytes() == (reference / name).read_bytes(), name
    assert "Loading weights" not in err and "Writing model shards" not in err
