"""Hugging Face Hub repositories of GRAVITY artifacts: what `gravity publish` uploads (issue 18).

An adapter repository holds the PEFT files and the model card the trainer wrote (README.md, whose usage snippet
names the repository once published); a dataset repository holds the pair shards, the manifest and the
dataset card pairgen wrote, so ``datasets.load_dataset("ORG/NAME")`` reads it as it reads the local directory.
The local-only files (``gravity_adapter.json`` with its file URI, ``training_run.json``, the service's
``accounting.json`` and lock files) stay behind.

:func:`adapter_layout` and :func:`dataset_layout` decide the files; :func:`write_layout` writes them into a
directory (``--to-dir``, and the staging area of an upload); :func:`upload` sends that directory with
huggingface_hub, authenticated by ``HF_TOKEN`` (or a saved ``huggingface-cli login``).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gravity_core.adapters import is_adapter_dir
from gravity_core.datasets import MANIFEST, load_manifest, verify_shards
from gravity_core.errors import ConfigError, InvalidInput, NotFound
from gravity_core.extras import require
from gravity_core.files import staged_dir, write_bytes

CARD = "README.md"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", CARD)
# The adapter card's usage snippet loads the adapter from here; publishing writes the repo id instead.
ADAPTER_LINE = 'ADAPTER = "."  # this adapter\'s directory; `gravity publish` writes its Hub repo id here'
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")

RepoType = Literal["model", "dataset"]


@dataclass
class Layout:
    """A repository's files: path in the repository -> the bytes, or the local file to copy."""

    repo_type: RepoType
    files: dict[str, bytes | Path]

    def names(self) -> list[str]:
        return sorted(self.files)


def adapter_line(repo_id: str) -> str:
    return f'ADAPTER = "{repo_id}"'


def check_repo_id(repo_id: str, option: str = "--repo-id") -> str:
    """``ORG/NAME`` as the Hub spells repository ids."""
    text = repo_id.strip()
    if not _REPO_ID.match(text) or ".." in text or text.endswith((".git", ".")):
        raise InvalidInput(
            option, f"{repo_id!r} is not a Hub repository id (ORG/NAME: letters, digits, - _ .)"
        )
    return text


def _front_matter(card: str, where: Path) -> tuple[dict[str, object], str]:
    """A card's metadata and its body."""
    import yaml

    if not card.startswith("---\n"):
        raise InvalidInput("PATH", f"{where} has no YAML front matter")
    head, sep, body = card[4:].partition("\n---\n")
    if not sep:
        raise InvalidInput("PATH", f"{where}: the YAML front matter is not closed by ---")
    data = yaml.safe_load(head)
    if not isinstance(data, dict):
        raise InvalidInput("PATH", f"{where}: the YAML front matter is not a mapping")
    return data, body


def _card(meta: dict[str, object], body: str) -> str:
    import yaml

    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n" + body


def adapter_layout(path: Path, repo_id: str, dataset_repo_id: str = "") -> Layout:
    """The adapter's repository: PEFT files and the card, whose snippet now loads ``repo_id`` (and whose
    metadata links ``dataset_repo_id`` when given)."""
    require("hub", "gravity publish")
    if not is_adapter_dir(path):
        raise NotFound(
            "PATH", f"{path} is not a finished GRAVITY adapter directory (no gravity_adapter.json)"
        )
    missing = [name for name in ADAPTER_FILES if not (path / name).is_file()]
    if missing:
        raise InvalidInput("PATH", f"{path} lacks {', '.join(missing)}")
    card_path = path / CARD
    card = card_path.read_text(encoding="utf-8")
    meta, body = _front_matter(card, card_path)
    if not meta.get("base_model"):
        raise InvalidInput(
            "PATH",
            f"{card_path} names no Hub base model (it was trained from a local model whose Hugging Face id "
            "is unknown): set [trainer] base_model_id and train again",
        )
    if ADAPTER_LINE not in body:
        raise InvalidInput("PATH", f"{card_path} is not a GRAVITY adapter card (no usage snippet)")
    if dataset_repo_id:
        meta["datasets"] = [check_repo_id(dataset_repo_id, "--dataset-repo-id")]
        card = _card(meta, body)
    card = card.replace(ADAPTER_LINE, adapter_line(repo_id))
    config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = meta["base_model"]  # never a path on the training machine
    files: dict[str, bytes | Path] = {
        "adapter_model.safetensors": path / "adapter_model.safetensors",
        "adapter_config.json": (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        CARD: card.encode("utf-8"),
    }
    return Layout("model", files)


def dataset_layout(path: Path) -> Layout:
    """The dataset's repository: the dataset card, the manifest and every shard it lists (checksums
    verified first)."""
    require("hub", "gravity publish")
    manifest = load_manifest(path)
    card_path = path / CARD
    if not card_path.is_file():
        raise NotFound(
            "PATH", f"{path} has no dataset card ({CARD}); pairgen writes one with the shards: build it again"
        )
    meta, _ = _front_matter(card_path.read_text(encoding="utf-8"), card_path)
    if not meta.get("configs"):
        raise InvalidInput("PATH", f"{card_path} has no `configs`: it is not a GRAVITY dataset card")
    files: dict[str, bytes | Path] = {CARD: card_path, MANIFEST: path / MANIFEST}
    for name in sorted(manifest.datasets):
        if not manifest.datasets[name].shards:
            continue  # a dataset no reader had rows for: no files, no config in the card
        for shard in verify_shards(path, manifest, name):
            files[shard.relative_to(path).as_posix()] = shard
    return Layout("dataset", files)


def write_layout(layout: Layout, target: Path) -> list[str]:
    """Write the repository's files into ``target`` (new or empty), all at once; returns their names."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInput("--to-dir", f"{target} exists and is not an empty directory")
    with staged_dir(target) as stage:
        for name, source in layout.files.items():
            dest = stage / name
            if isinstance(source, Path):
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)
            else:
                write_bytes(dest, source, durable=False)  # staged_dir syncs the whole stage
    return layout.names()


def hub_token() -> str:
    """HF_TOKEN, else the token a ``huggingface-cli login`` saved; "" when there is none."""
    from huggingface_hub import get_token

    return get_token() or ""


def upload(layout: Layout, repo_id: str, private: bool, token: str, staging: Path) -> str:
    """Create the repository if needed and upload the layout as one commit; returns the repository URL."""
    from huggingface_hub import HfApi

    if not token:
        raise ConfigError(
            "gravity publish needs a Hugging Face token to upload: set HF_TOKEN (or run huggingface-cli "
            "login), or write the repository's files locally with --to-dir DIR"
        )
    folder = staging / "repo"
    write_layout(layout, folder)
    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type=layout.repo_type, private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        repo_type=layout.repo_type,
        folder_path=str(folder),
        commit_message="Upload with gravity publish",
    )
    return str(url)
