"""The artifact store: shards, manifests and adapters under one root (a local dir or a mounted volume).

Topics carry references (URI + SHA-256) and the bytes live here. Every write is atomic and durable
(gravity_core.files): files are written to a temporary sibling, fsynced and renamed; directories are staged
and swapped in, so a reader never sees half an artifact and a crash leaves the previous version intact (or,
between the two renames of a swap, is repaired by :meth:`ArtifactStore.repair` at the next start).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from gravity_core import files
from gravity_core.config import Settings
from gravity_core.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class ArtifactRef:
    uri: str
    sha256: str
    size: int


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_dir(path: str | Path, exclude: Collection[str] = ()) -> str:
    """Checksum of a directory: SHA-256 over its files' relative paths and contents, in sorted order.

    ``exclude`` names relative paths left out, e.g. a metadata file that records the checksum itself.
    """
    root = Path(path)
    h = hashlib.sha256()
    skipped = set(exclude)
    for file in sorted(
        p for p in root.rglob("*") if p.is_file() and p.relative_to(root).as_posix() not in skipped
    ):
        h.update(file.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(sha256_file(file).encode())
        h.update(b"\n")
    return h.hexdigest()


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class ArtifactStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> ArtifactStore:
        return cls(settings.artifacts.path())

    # ------------------------------------------------------------- naming
    def path(self, rel: str) -> Path:
        """``rel`` under the store root; INVALID_ARGUMENT when it escapes the store."""
        return self._confined(self.root / rel, rel, "path")

    def _confined(self, candidate: Path, shown: str, field: str) -> Path:
        path = candidate.resolve()
        if path != self.root and self.root not in path.parents:
            raise InvalidInput(field, f"{shown!r} is outside the artifact store {self.root}")
        return path

    def uri(self, path: str | Path) -> str:
        return Path(path).resolve().as_uri()

    def resolve(self, uri: str, field: str = "uri") -> Path:
        """The local path of a ``file://`` URI, an absolute path or a path relative to the store root, which
        must lie inside the store (symlinks followed): URIs come from requests and topics, and nothing outside
        the store may be read, written or deleted on their say-so. INVALID_ARGUMENT naming ``field`` otherwise.
        """
        text = uri.strip()
        if not text:
            raise InvalidInput(field, "is required")
        if text.startswith("file://"):
            parsed = urlparse(text)
            if parsed.netloc not in ("", "localhost"):
                raise InvalidInput(field, f"{uri!r} names another host; only local file:// URIs are served")
            candidate = Path(unquote(parsed.path))
        elif "://" in text:
            raise InvalidInput(field, f"{uri!r}: only file:// URIs and store paths are supported")
        else:
            candidate = Path(text).expanduser()
        return self._confined(candidate if candidate.is_absolute() else self.root / candidate, uri, field)

    # ------------------------------------------------------------- writing
    def write_bytes(self, rel: str, data: bytes, durable: bool = True) -> ArtifactRef:
        target = self.path(rel)
        files.write_bytes(target, data, durable)
        return ArtifactRef(self.uri(target), hashlib.sha256(data).hexdigest(), len(data))

    def write_json(self, rel: str, obj: Any) -> ArtifactRef:
        return self.write_bytes(
            rel, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")
        )

    def read_json(self, uri: str) -> Any:
        path = self.resolve(uri)
        if not path.is_file():
            raise NotFound("uri", f"no artifact at {uri}")
        return json.loads(path.read_text(encoding="utf-8"))

    @contextmanager
    def staged_dir(self, rel: str) -> Iterator[Path]:
        """Yield an empty staging directory; on success it atomically replaces ``rel``."""
        target = self.path(rel)
        if target == self.root:
            raise InvalidInput("path", f"{rel!r} names the artifact store itself, which is never replaced")
        with files.staged_dir(target) as stage:
            yield stage

    def publish_dir(self, rel: str, src: str | Path) -> ArtifactRef:
        """Copy directory ``src`` into the store at ``rel`` (atomically) and return its reference."""
        with self.staged_dir(rel) as stage:
            shutil.copytree(src, stage, dirs_exist_ok=True)
        target = self.path(rel)
        return ArtifactRef(self.uri(target), sha256_dir(target), _dir_size(target))

    def dir_ref(self, rel_or_uri: str) -> ArtifactRef:
        target = self.resolve(rel_or_uri)
        if not target.is_dir():
            raise NotFound("uri", f"no artifact directory at {rel_or_uri}")
        return ArtifactRef(self.uri(target), sha256_dir(target), _dir_size(target))

    def repair(self, grace_s: float = 60.0) -> list[str]:
        """Complete swaps and remove temporary files a crash left in the store (services call it at start)."""
        return files.repair(self.root, grace_s)

    # ------------------------------------------------------------ checking
    def verify(self, uri: str, sha256: str) -> bool:
        path = self.resolve(uri)
        if path.is_dir():
            return sha256_dir(path) == sha256
        return path.is_file() and sha256_file(path) == sha256
