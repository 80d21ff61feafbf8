"""The bundled sample dataset (invented for this project) in the Amazon Reviews 2023 format."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

SAMPLE_FILES = ("Books.jsonl", "meta_Books.jsonl", "demographics.csv")


def sample_dir() -> Path:
    return Path(str(resources.files("gravity_core").joinpath("data/sample")))


def export_sample(dest: str | Path) -> dict[str, Path]:
    """Copy Books.jsonl, meta_Books.jsonl and demographics.csv into ``dest``; returns name -> path."""
    out_dir = Path(dest).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    src = sample_dir()
    written = {}
    for name in SAMPLE_FILES:
        target = out_dir / name
        shutil.copyfile(src / name, target)
        written[name] = target
    return written


def sample_stats(reviews: str | Path, meta: str | Path, demographics: str | Path) -> dict[str, int]:
    """Counts that describe a dataset in this format (users, reviews, books, genres, users per country)."""
    from collections import Counter

    from gravity_core.amazon import iter_books, iter_reviews, read_demographics
    from gravity_core.skips import SkipLog

    skips = SkipLog()
    per_user = Counter(r.user_id for _, r in iter_reviews(reviews, skips))
    books = [b for _, b in iter_books(meta, skips)]
    demo = read_demographics(demographics, skips)
    stats = {
        "users": len(per_user),
        "reviews": sum(per_user.values()),
        "min_reviews_per_user": min(per_user.values(), default=0),
        "books": len(books),
        "genres": len({b.genre for b in books if b.genre}),
        "skipped_lines": skips.total,
    }
    for country, n in Counter(d.country or "(unknown)" for d in demo.values()).items():
        stats[f"users_{country}"] = n
    return stats
