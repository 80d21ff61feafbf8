"""The values scenario pool: per seed statement, pairs of scenarios (one illustrates it, one contradicts it).

The pool written for this project ships as package data (3 pairs for each of the 150 statements). A
custom pool file may replace it. When ``generate_scenarios`` is on, the author LLM tops every statement up
to ``pairs_per_statement`` pairs with the appendix B prompt; the result is stored once in the artifact
store as a new pool version (``scenario-pools/<version>.jsonl``) named after its inputs, so every later
run, replica and restart reuses it instead of generating again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from gravity_core.amazon import iter_json_lines
from gravity_core.artifacts import ArtifactStore
from gravity_core.errors import ConfigError
from gravity_core.llm import GenerationParams, LLMClient
from gravity_core.logging import get_logger
from gravity_core.skips import SkipLog
from gravity_core.values import SeedStatement
from gravity_pairgen.prompts import SCENARIO_GENERATION_PROMPT, scenario_generation_prompt

log = get_logger(__name__)
POOL_FIELDS = ("statement_id", "pair_index", "illustrates", "contradicts")
POOL_DIR = "scenario-pools"


@dataclass(frozen=True, slots=True)
class ScenarioPair:
    statement_id: str
    pair_index: int
    illustrates: str
    contradicts: str
    source: str = "curated"
    version: str = ""

    @property
    def id(self) -> str:
        return f"{self.statement_id}#{self.pair_index}@{self.version}"


class ScenarioPool:
    def __init__(self, pairs: Iterable[ScenarioPair], version: str, origin: str = "") -> None:
        self.by_statement: dict[str, list[ScenarioPair]] = {}
        for pair in pairs:
            self.by_statement.setdefault(pair.statement_id, []).append(pair)
        for group in self.by_statement.values():
            group.sort(key=lambda p: p.pair_index)
        self.version = version
        self.origin = origin

    def pairs(self, statement_id: str, limit: int | None = None) -> list[ScenarioPair]:
        group = self.by_statement.get(statement_id, [])
        return group if limit is None else group[:limit]

    def __len__(self) -> int:
        return sum(len(g) for g in self.by_statement.values())

    def coverage(self, statements: Iterable[SeedStatement], per_statement: int) -> dict[str, int]:
        """How many statements have 0, some, or the full number of pairs."""
        out = {"full": 0, "partial": 0, "missing": 0}
        for s in statements:
            n = len(self.pairs(s.id))
            out["full" if n >= per_statement else ("partial" if n else "missing")] += 1
        return out

    def to_jsonl(self) -> bytes:
        lines = [
            json.dumps(asdict(p), ensure_ascii=False, sort_keys=True)
            for sid in sorted(self.by_statement)
            for p in self.by_statement[sid]
        ]
        return ("\n".join(lines) + "\n").encode("utf-8")


# -------------------------------------------------------------------- loading
def load_pool(
    path: str | Path | None, statements: Iterable[SeedStatement], skips: SkipLog | None = None
) -> ScenarioPool:
    """The shipped pool (``path`` None) or a pool file. Rows for unknown statements or with empty
    scenarios are skipped and recorded; a file without one of the required fields is a ConfigError."""
    skips = skips if skips is not None else SkipLog()
    if path is None:
        ref = resources.files("gravity_pairgen").joinpath("data/scenario_pool.jsonl")
        with resources.as_file(ref) as file:
            return _load(file, statements, skips, origin="shipped")
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"scenario pool {p} does not exist")
    return _load(p, statements, skips, origin=str(p))


def _load(
    path: Path, statements: Iterable[SeedStatement], skips: SkipLog, origin: str, version: str = ""
) -> ScenarioPool:
    """``version`` names a pool whose rows carry several versions (a topped-up pool)."""
    known = {s.id for s in statements}
    pairs: list[ScenarioPair] = []
    seen: set[tuple[str, int]] = set()
    for number, obj in iter_json_lines(path, skips):
        if missing := [f for f in POOL_FIELDS if f not in obj]:
            raise ConfigError(f"{path}:{number}: scenario pool row has no {missing[0]!r} field")
        sid = str(obj["statement_id"]).strip()
        texts = [" ".join(str(obj[f] or "").split()) for f in ("illustrates", "contradicts")]
        try:
            index = int(obj["pair_index"])
        except (TypeError, ValueError):
            skips.add("bad_field", f"pair_index {obj['pair_index']!r} is not an integer", str(path), number)
            continue
        if sid not in known:
            skips.add("unknown_statement", f"statement_id {sid!r} is not a seed statement", str(path), number)
        elif not all(texts):
            skips.add("missing_field", "illustrates or contradicts is empty", str(path), number)
        elif (sid, index) in seen:
            skips.add("duplicate_pair", f"{sid} pair_index {index} repeated", str(path), number)
        else:
            seen.add((sid, index))
            pairs.append(
                ScenarioPair(
                    sid,
                    index,
                    texts[0],
                    texts[1],
                    str(obj.get("source") or "curated"),
                    str(obj.get("version") or ""),
                )
            )
    versions = sorted({p.version for p in pairs})
    if not version:
        single = len(versions) == 1 and versions[0]
        version = versions[0] if single else "pool-" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    # Pairs without their own version take the pool's, so scenario ids stay unique and stable.
    pairs = [
        p
        if p.version
        else ScenarioPair(p.statement_id, p.pair_index, p.illustrates, p.contradicts, p.source, version)
        for p in pairs
    ]
    return ScenarioPool(pairs, version, origin)


# ----------------------------------------------------------------- generation
def generation_version(
    pool: ScenarioPool, model: str, per_statement: int, statements: Iterable[SeedStatement]
) -> str:
    """A name for the topped-up pool that changes whenever anything it is generated from changes."""
    h = hashlib.sha256()
    h.update(pool.to_jsonl())
    for part in (model, str(per_statement), SCENARIO_GENERATION_PROMPT):
        h.update(part.encode("utf-8") + b"\0")
    for s in statements:
        h.update(f"{s.id}:{s.text}\n".encode())
    return f"{pool.version}+gen-{h.hexdigest()[:12]}"


def top_up_pool(
    pool: ScenarioPool,
    statements: list[SeedStatement],
    llm: LLMClient,
    store: ArtifactStore,
    per_statement: int = 3,
    max_tokens: int = 512,
    on_progress: Callable[[str], None] | None = None,
) -> ScenarioPool:
    """Top every statement up to ``per_statement`` pairs with the author LLM, once per inputs (cached)."""
    short = [s for s in statements if len(pool.pairs(s.id)) < per_statement]
    if not short:
        return pool
    version = generation_version(pool, llm.info.name, per_statement, statements)
    rel = f"{POOL_DIR}/{version}.jsonl"
    stored = store.path(rel)
    if stored.is_file():
        log.info("scenario_pool_reused", version=version)
        return _load(stored, statements, SkipLog(), origin=store.uri(stored), version=version)
    if on_progress:
        on_progress(f"generating scenarios for {len(short)} statements with {llm.info.name}")
    params = GenerationParams(max_tokens=max_tokens)
    completions = llm.chat_batch(
        [[{"role": "user", "content": scenario_generation_prompt(s)}] for s in short], params
    )
    added: list[ScenarioPair] = []
    for statement, completion in zip(short, completions, strict=True):
        existing = pool.pairs(statement.id)
        seen = {_norm(t) for p in existing for t in (p.illustrates, p.contradicts)}
        next_index = max((p.pair_index for p in existing), default=-1) + 1
        for illustrates, contradicts in parse_scenario_pairs(completion.text):
            if len(existing) + sum(1 for a in added if a.statement_id == statement.id) >= per_statement:
                break
            if _norm(illustrates) in seen or _norm(contradicts) in seen:
                continue
            seen |= {_norm(illustrates), _norm(contradicts)}
            added.append(
                ScenarioPair(
                    statement.id, next_index, illustrates, contradicts, f"generated:{llm.info.name}", version
                )
            )
            next_index += 1
    topped = ScenarioPool(
        [*(p for g in pool.by_statement.values() for p in g), *added], version, store.uri(stored)
    )
    store.write_bytes(rel, topped.to_jsonl())
    log.info("scenario_pool_generated", version=version, statements=len(short), pairs_added=len(added))
    return topped


# -------------------------------------------------------------------- parsing
_PAIR_HEADER = re.compile(r"^(?:pair|set|example)\s*#?\s*\d+\b\s*[:.)\-–—]*\s*(?P<rest>.*)$", re.I)
_ROLE = (
    r"scenario\s*#?\s*\d*\s*[a-z]?|illustrat\w*|contradict\w*|support\w*|no\s+support|oppos\w*|"
    r"misaligned|aligned|against|for|first|second"
)
_LABEL = re.compile(
    rf"^(?:(?:\d+|[a-z])[.)]\s*)?(?P<label>(?:{_ROLE})(?:\s*\([^)]*\))?(?:\s+(?:scenario|the\s+statement))?)\s*[:\-–—]\s*(?P<rest>.*)$",
    re.I,
)
_NUMBERED = re.compile(r"^(?:\d+|[a-z])[.)]\s+(?P<rest>.+)$", re.I)
_CONTRA = re.compile(r"contradict|oppos|no\s+support|against|misaligned|second", re.I)
_ILLUS = re.compile(r"illustrat|support|aligned|\bfor\b|first", re.I)


def _clean_line(line: str) -> str:
    line = re.sub(r"[*_#`>]+", "", line).strip()
    return re.sub(r"^[-•–]\s*", "", line).strip()


def _role(label: str) -> str:
    if _CONTRA.search(label):
        return "contradicts"
    if _ILLUS.search(label):
        return "illustrates"
    return ""


def parse_scenario_pairs(text: str) -> list[tuple[str, str]]:
    """(illustrating, contradicting) scenario pairs from a free-form LLM answer to the appendix B prompt.

    Understands labelled answers ("Scenario 1 (illustrates): ...", "Contradicts: ..."), pair headers
    ("Pair 2:"), numbered lists and plain paragraphs; unlabelled scenarios alternate illustrate/contradict.
    Scenarios that are too short or too long to be 2-3 sentences are discarded.
    """
    # (role, lines, marked): role "" = unlabelled, "|" = pair break; marked = began at a label or number.
    segments: list[tuple[str, list[str], bool]] = []
    for raw in text.splitlines():
        line = _clean_line(raw)
        if not line:
            if segments and segments[-1][1]:
                segments.append(("", [], False))  # a blank line ends a scenario
            continue
        if header := _PAIR_HEADER.match(line):
            segments.append(("|", [], True))
            line = header.group("rest").strip()
            if not line:
                continue
        if label := _LABEL.match(line):
            segments.append((_role(label.group("label")), [label.group("rest")], True))
        elif numbered := _NUMBERED.match(line):
            segments.append(("", [numbered.group("rest")], True))
        elif segments and segments[-1][0] != "|":
            segments[-1][1].append(line)
        else:
            segments.append(("", [line], False))
    if any(marked for _, _, marked in segments):
        # Text before the first label ("Here are three pairs:") is not a scenario.
        first = next(i for i, (_, _, marked) in enumerate(segments) if marked)
        segments = segments[first:]
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for role, lines, _ in segments:
        if role == "|":
            pending = None
            continue
        scenario = _scenario_text(lines)
        if scenario is None:
            continue
        if role == "illustrates" or (role == "" and pending is None):
            pending = scenario
        elif pending is not None and scenario != pending:
            pairs.append((pending, scenario))
            pending = None
    return pairs


def _scenario_text(lines: list[str]) -> str | None:
    text = " ".join(" ".join(lines).split()).strip().strip('"“”')
    words = len(text.split())
    if words < 8 or len(text) > 900:
        return None
    if text.endswith(":") or text.lower().startswith(("here are", "sure", "certainly")):
        return None
    return text


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()
