"""The paper's book categories (Figure 4, the user-study list) and its fiction / non-fiction split (Figure 3).

Amazon's category paths are far finer (382 genres among the paper's readers); the paper reports preference
gain over a handful of clusters and asks study participants for their top three from the same list. The
mapping from Amazon categories to clusters is package data (``data/genres/clusters.json``): the leaf genre
is looked up first, then the second-level group under "Books". A category the mapping does not know falls
into ``OTHER`` (reported as such, never guessed into a cluster).

Deviation, documented: Figure 3 speaks of nine categories but is not reproduced in text; Figure 4 lists ten.
We use Figure 4's ten, each marked fiction or non-fiction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

OTHER = "Other"


@dataclass(frozen=True)
class GenreCluster:
    name: str
    fiction: bool

    @property
    def side(self) -> str:
        return "fiction" if self.fiction else "non-fiction"


@dataclass(frozen=True)
class _Mapping:
    clusters: tuple[GenreCluster, ...]
    by_genre: dict[str, str]
    by_group: dict[str, str]


@lru_cache(maxsize=1)
def _mapping() -> _Mapping:
    raw = json.loads(
        resources.files("gravity_core").joinpath("data/genres/clusters.json").read_text(encoding="utf-8")
    )
    clusters = tuple(GenreCluster(c["name"], bool(c["fiction"])) for c in raw["clusters"])
    names = {c.name for c in clusters}
    for table in ("by_genre", "by_group"):
        unknown = sorted(set(raw[table].values()) - names)
        if unknown:
            raise ValueError(f"clusters.json {table} names clusters that do not exist: {unknown}")
    return _Mapping(
        clusters,
        {k.lower(): v for k, v in raw["by_genre"].items()},
        {k.lower(): v for k, v in raw["by_group"].items()},
    )


def clusters() -> tuple[GenreCluster, ...]:
    """The ten categories in the paper's order (Figure 4)."""
    return _mapping().clusters


def cluster_names() -> tuple[str, ...]:
    return tuple(c.name for c in clusters())


def cluster_of(genre: str, genre_group: str = "") -> str:
    """The paper category of an Amazon leaf genre and its group under Books, or ``OTHER``."""
    m = _mapping()
    return m.by_genre.get(genre.strip().lower()) or m.by_group.get(genre_group.strip().lower()) or OTHER


def side_of(cluster: str) -> str:
    """ "fiction", "non-fiction", or "unknown" for ``OTHER``."""
    for c in clusters():
        if c.name == cluster:
            return c.side
    return "unknown"
