"""Personality item banks: situational-judgment questions with a high-trait and a low-trait answer.

Sources (paper §3.3, appendix B, Table 10):

* the bank written for this project (``data/sjt_bank.jsonl``: id, trait, situation, high, low);
* TRAIT records (situation, query, response_high1/2, response_low1/2, personality) — two answers per level,
  one of which is drawn per user (paper footnote 6);
* Big5Chat rows, either long (train_input, trait, level, train_output: the high and the low output of the
  same train_input and trait form one item) or wide (train_input, trait, high_output, low_output).

Each user gets ``items_per_trait`` items per trait, spread evenly over the sources (the paper takes 30
from TRAIT and 30 from Big5Chat), drawn with a generator seeded by (seed, user, trait).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gravity_core.errors import ConfigError
from gravity_core.names import TRAITS as OCEAN
from gravity_core.skips import SkipLog
from gravity_pairgen.tables import read_rows, require_columns

BUILTIN = "gravity-sjt"
TRAIT = "trait"
BIG5CHAT = "big5chat"

SJT_COLUMNS = ("id", "trait", "situation", "high", "low")
TRAIT_COLUMNS = (
    "situation",
    "query",
    "response_high1",
    "response_high2",
    "response_low1",
    "response_low2",
    "personality",
)
BIG5CHAT_LONG_COLUMNS = ("train_input", "trait", "level", "train_output")
BIG5CHAT_WIDE_COLUMNS = ("train_input", "trait", "high_output", "low_output")

_TRAIT_ALIASES = {"extroversion": "extraversion", "emotional stability": "", "stability": ""}


@dataclass(frozen=True, slots=True)
class PersonalityItem:
    id: str
    trait: str
    source: str
    question: str
    high: tuple[str, ...]
    low: tuple[str, ...]


def normalize_trait(value: object) -> str:
    """An OCEAN trait name in lower case, or "" when ``value`` is not one (e.g. TRAIT's Dark Triad)."""
    name = str(value or "").strip().lower()
    name = _TRAIT_ALIASES.get(name, name)
    return name if name in OCEAN else ""


def _text(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return " ".join(str(value).split()) if value is not None else ""


def _content_id(prefix: str, *parts: str) -> str:
    return f"{prefix}-{hashlib.blake2b(chr(31).join(parts).encode(), digest_size=6).hexdigest()}"


# ------------------------------------------------------------------- loaders
def load_builtin(skips: SkipLog) -> list[PersonalityItem]:
    path = resources.files("gravity_pairgen").joinpath("data/sjt_bank.jsonl")
    with resources.as_file(path) as file:
        return load_sjt(file, skips, source=BUILTIN)


def load_sjt(path: str | Path, skips: SkipLog, source: str = BUILTIN) -> list[PersonalityItem]:
    columns, rows = read_rows(path, skips)
    require_columns(path, columns, SJT_COLUMNS)
    out = []
    for number, row in rows:
        trait = normalize_trait(row.get("trait"))
        fields = {k: _text(row, k) for k in ("id", "situation", "high", "low")}
        if not trait:
            skips.add("non_ocean_trait", f"trait {row.get('trait')!r}", str(path), number)
        elif missing := [k for k, v in fields.items() if not v]:
            skips.add("missing_field", f"{missing[0]} is empty", str(path), number)
        else:
            out.append(
                PersonalityItem(
                    fields["id"], trait, source, fields["situation"], (fields["high"],), (fields["low"],)
                )
            )
    return out


def load_trait(path: str | Path, skips: SkipLog) -> list[PersonalityItem]:
    """TRAIT records; the question is the situation followed by the query."""
    columns, rows = read_rows(path, skips)
    require_columns(path, columns, TRAIT_COLUMNS)
    out = []
    for number, row in rows:
        trait = normalize_trait(row.get("personality"))
        if not trait:
            skips.add("non_ocean_trait", f"personality {row.get('personality')!r}", str(path), number)
            continue
        situation, query = _text(row, "situation"), _text(row, "query")
        high = tuple(a for a in (_text(row, "response_high1"), _text(row, "response_high2")) if a)
        low = tuple(a for a in (_text(row, "response_low1"), _text(row, "response_low2")) if a)
        if not situation or not high or not low:
            empty = "situation" if not situation else ("high responses" if not high else "low responses")
            skips.add("missing_field", f"{empty} empty", str(path), number)
            continue
        question = f"{situation} {query}".strip()
        out.append(PersonalityItem(_content_id(TRAIT, trait, question), trait, TRAIT, question, high, low))
    return out


def load_big5chat(path: str | Path, skips: SkipLog) -> list[PersonalityItem]:
    """Big5Chat rows in the long (level, train_output) or the wide (high_output, low_output) layout."""
    columns, rows = read_rows(path, skips)
    wide = "high_output" in columns or "low_output" in columns
    require_columns(path, columns, BIG5CHAT_WIDE_COLUMNS if wide else BIG5CHAT_LONG_COLUMNS)
    return list(_big5chat_wide(path, rows, skips) if wide else _big5chat_long(path, rows, skips))


def _big5chat_wide(
    path: str | Path, rows: Iterable[tuple[int, dict]], skips: SkipLog
) -> Iterator[PersonalityItem]:
    for number, row in rows:
        trait = normalize_trait(row.get("trait"))
        question, high, low = (_text(row, k) for k in ("train_input", "high_output", "low_output"))
        if not trait:
            skips.add("non_ocean_trait", f"trait {row.get('trait')!r}", str(path), number)
        elif not (question and high and low):
            skips.add("missing_field", "train_input, high_output or low_output empty", str(path), number)
        else:
            yield PersonalityItem(
                _content_id(BIG5CHAT, trait, question), trait, BIG5CHAT, question, (high,), (low,)
            )


def _big5chat_long(
    path: str | Path, rows: Iterable[tuple[int, dict]], skips: SkipLog
) -> Iterator[PersonalityItem]:
    # (trait, train_input) -> {"high": (line, output), "low": (line, output)}; first output per level wins.
    groups: dict[tuple[str, str], dict[str, tuple[int, str]]] = {}
    for number, row in rows:
        trait = normalize_trait(row.get("trait"))
        level = _text(row, "level").lower()
        question, output = _text(row, "train_input"), _text(row, "train_output")
        if not trait:
            skips.add("non_ocean_trait", f"trait {row.get('trait')!r}", str(path), number)
        elif level not in ("high", "low"):
            skips.add("bad_field", f"level {row.get('level')!r} is not high or low", str(path), number)
        elif not (question and output):
            skips.add("missing_field", "train_input or train_output empty", str(path), number)
        else:
            groups.setdefault((trait, question), {}).setdefault(level, (number, output))
    for (trait, question), levels in groups.items():
        if "high" in levels and "low" in levels:
            yield PersonalityItem(
                _content_id(BIG5CHAT, trait, question),
                trait,
                BIG5CHAT,
                question,
                (levels["high"][1],),
                (levels["low"][1],),
            )
        else:
            number, _ = next(iter(levels.values()))
            have = next(iter(levels))
            skips.add(
                "unpaired_row",
                f"{trait} input has a {have} output but no {'low' if have == 'high' else 'high'} one",
                str(path),
                number,
            )


# --------------------------------------------------------------------- bank
@dataclass
class PersonalityBank:
    """Items grouped by trait and source, ready for per-user sampling."""

    by_trait: dict[str, dict[str, list[PersonalityItem]]] = field(default_factory=dict)
    duplicates: int = 0

    @classmethod
    def build(cls, items: Iterable[PersonalityItem]) -> PersonalityBank:
        bank = cls({t: {} for t in OCEAN})
        seen: set[str] = set()
        for item in items:
            if item.id in seen:
                bank.duplicates += 1
                continue
            seen.add(item.id)
            bank.by_trait[item.trait].setdefault(item.source, []).append(item)
        return bank

    @classmethod
    def load(
        cls,
        skips: SkipLog,
        builtin: bool = True,
        trait_files: Iterable[str] = (),
        big5chat_files: Iterable[str] = (),
    ) -> PersonalityBank:
        items: list[PersonalityItem] = load_builtin(skips) if builtin else []
        for path in trait_files:
            items += load_trait(path, skips)
        for path in big5chat_files:
            items += load_big5chat(path, skips)
        bank = cls.build(items)
        if not bank.size:
            raise ConfigError(
                "the personality item bank is empty (builtin_sjt off and no TRAIT/Big5Chat files)"
            )
        return bank

    @property
    def size(self) -> int:
        return sum(len(items) for groups in self.by_trait.values() for items in groups.values())

    def counts(self) -> dict[str, Counter[str]]:
        return {t: Counter({s: len(i) for s, i in groups.items()}) for t, groups in self.by_trait.items()}

    def sample(self, trait: str, n: int, rng: random.Random) -> list[PersonalityItem]:
        """Up to ``n`` distinct items of ``trait``, split as evenly as possible across sources."""
        groups = [self.by_trait.get(trait, {})[s] for s in sorted(self.by_trait.get(trait, {}))]
        quotas = _split(n, [len(g) for g in groups])
        picked: list[PersonalityItem] = []
        for group, quota in zip(groups, quotas, strict=True):
            picked += group if quota >= len(group) else rng.sample(group, quota)
        return picked


def _split(n: int, sizes: list[int]) -> list[int]:
    """Share ``n`` across groups evenly, giving a small group's unused share to the others."""
    quotas = [0] * len(sizes)
    remaining = n
    open_groups = [i for i, s in enumerate(sizes) if s > 0]
    while remaining > 0 and open_groups:
        share, extra = divmod(remaining, len(open_groups))
        still_open = []
        for rank, i in enumerate(open_groups):
            want = share + (1 if rank < extra else 0)
            take = min(want, sizes[i] - quotas[i])
            quotas[i] += take
            remaining -= take
            if quotas[i] < sizes[i]:
                still_open.append(i)
        if len(still_open) == len(open_groups) or not still_open:
            break
        open_groups = still_open
    return quotas


def user_rng(seed: int, user_id: str, purpose: str) -> random.Random:
    digest = hashlib.blake2b(f"{seed}\x1f{user_id}\x1f{purpose}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))
