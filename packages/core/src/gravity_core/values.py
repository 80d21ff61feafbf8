"""The bank of 150 seed value statements (Hofstede 10, Schwartz 10, World Values Survey-style 130).

Shared by the profiler (stance inference) and the pair generator (scenario pools), so it ships with
gravity-core. Each statement has an id, framework, dimension, topic and text; see data/values/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from gravity_core.errors import ConfigError

TOPICS = ("culture", "ethics", "society", "politics", "morals", "religion")
FRAMEWORKS = ("hofstede", "schwartz", "wvs")


@dataclass(frozen=True, slots=True)
class SeedStatement:
    id: str
    framework: str
    dimension: str
    topic: str
    text: str


def load_seed_statements(path: str | Path | None = None) -> tuple[SeedStatement, ...]:
    """The bundled bank, or a custom JSONL file with the same fields."""
    if path is None:
        return _bundled()
    return _parse(Path(path).read_text(encoding="utf-8"), str(path))


@lru_cache(maxsize=1)
def _bundled() -> tuple[SeedStatement, ...]:
    text = (
        resources.files("gravity_core")
        .joinpath("data/values/seed_statements.jsonl")
        .read_text(encoding="utf-8")
    )
    return _parse(text, "gravity_core/data/values/seed_statements.jsonl")


def _parse(text: str, source: str) -> tuple[SeedStatement, ...]:
    out: list[SeedStatement] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            st = SeedStatement(
                **{k: str(obj[k]).strip() for k in ("id", "framework", "dimension", "topic", "text")}
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{source}:{number}: not a seed statement ({exc})") from None
        if st.topic not in TOPICS or st.framework not in FRAMEWORKS:
            raise ConfigError(f"{source}:{number}: unknown topic {st.topic!r} or framework {st.framework!r}")
        if st.id in seen:
            raise ConfigError(f"{source}:{number}: duplicate statement id {st.id}")
        seen.add(st.id)
        out.append(st)
    if not out:
        raise ConfigError(f"{source}: no seed statements")
    return tuple(out)


def statements_by_id(statements: tuple[SeedStatement, ...] | None = None) -> dict[str, SeedStatement]:
    return {s.id: s for s in (statements or load_seed_statements())}
