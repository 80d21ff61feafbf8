"""The values scenario pool: the shipped pool, custom pools, robust parsing, LLM top-up stored once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from gravity_core.artifacts import ArtifactStore
from gravity_core.errors import ConfigError
from gravity_core.llm import Completion, GenerationParams, Usage
from gravity_core.skips import SkipLog
from gravity_core.values import load_seed_statements
from gravity_pairgen.scenarios import load_pool, parse_scenario_pairs, top_up_pool

STATEMENTS = list(load_seed_statements())

LABELLED = """Here are three pairs of scenarios:

**Pair 1:**
- **Scenario 1 (Illustrates):** Maria finishes her work early and spends the evening in the park with friends. She says rest matters as much as effort.
- **Scenario 2 (Contradicts):** John works every weekend and refuses invitations. He believes free time is a waste compared to getting ahead.

**Pair 2:**
Illustrates: Kenji takes a month off to travel with his family through Hokkaido. He comes back refreshed and says the break made him better at his job.
Contradicts: Priya cancels her vacation for the third year in a row. She tells her manager that holidays are for people who are not serious.

Pair 3:
1. Ana signs up for a pottery class on Saturday mornings because hobbies make her life richer and calmer overall.
2. Tom skips his daughter's recital to finish a report, saying leisure can wait until he retires someday.
"""

NUMBERED = """1. A young man gives his seat on the bus to an elderly woman because he was taught to respect elders.
2. A teenager ignores her grandfather's advice and mocks it in front of her friends at the dinner table.
3. Another person helps his neighbour carry groceries every week without being asked to do so.
4. A woman refuses to help her neighbour, saying that everybody should look after themselves only."""

PARAGRAPHS = """A farmer shares his harvest with the whole village because he believes community comes first always.

A banker keeps all his profits and never donates anything, saying each person must fend for himself."""


def test_shipped_pool_has_three_pairs_for_every_statement() -> None:
    skips = SkipLog()
    pool = load_pool(None, STATEMENTS, skips)
    assert skips.total == 0 and len(pool) == 450 and pool.version == "curated-2026.11"
    assert pool.coverage(STATEMENTS, 3) == {"full": 150, "partial": 0, "missing": 0}
    pair = pool.pairs(STATEMENTS[0].id)[0]
    assert pair.illustrates != pair.contradicts and pair.id == f"{STATEMENTS[0].id}#0@curated-2026.11"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (LABELLED, 3),
        (NUMBERED, 2),
        (PARAGRAPHS, 1),
        ("I cannot help with that.", 0),
        ("Scenario 1: Too short.\nScenario 2: Also short.", 0),
    ],
)
def test_parser_understands_labelled_numbered_and_plain_answers(text: str, expected: int) -> None:
    pairs = parse_scenario_pairs(text)
    assert len(pairs) == expected
    for illustrates, contradicts in pairs:
        assert (
            illustrates != contradicts
            and len(illustrates.split()) >= 8
            and not illustrates.startswith(("*", "-"))
        )


def test_parser_keeps_illustrate_then_contradict_order_from_labels() -> None:
    text = (
        "Contradicts: Lena mocks the idea of saving for retirement and spends every bonus on the same day.\n"
        "Illustrates: Omar puts a fixed share of each salary into a pension fund and never touches it.\n"
        "Contradicts: Bea quits her savings plan after a month because the future feels too far away."
    )
    assert parse_scenario_pairs(text) == [
        (
            "Omar puts a fixed share of each salary into a pension fund and never touches it.",
            "Bea quits her savings plan after a month because the future feels too far away.",
        )
    ]


def _pool_file(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "pool.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_custom_pool_skips_unknown_statements_and_requires_fields(tmp_path: Path) -> None:
    sid = STATEMENTS[0].id
    good = {"statement_id": sid, "pair_index": 0, "illustrates": "a " * 10, "contradicts": "b " * 10}
    path = _pool_file(tmp_path, [good, {**good, "statement_id": "nope-1"}, {**good, "pair_index": 0}])
    skips = SkipLog()
    pool = load_pool(path, STATEMENTS, skips)
    assert len(pool) == 1 and pool.version.startswith("pool-")
    assert skips.counts == {"unknown_statement": 1, "duplicate_pair": 1}
    with pytest.raises(ConfigError, match="contradicts"):
        load_pool(_pool_file(tmp_path, [{k: v for k, v in good.items() if k != "contradicts"}]), STATEMENTS)


class ScriptedAuthor:
    """Answers every scenario request with the same labelled text (logic test of the top-up only)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.usage = Usage()
        self.requests: list[str] = []

    @property
    def info(self):
        from gravity_core.llm import ModelInfo

        return ModelInfo("scripted", "test", 4096)

    def chat_batch(
        self, conversations: Sequence, params: GenerationParams | None = None, adapters=None
    ) -> list[Completion]:
        self.requests += [c[-1]["content"] for c in conversations]
        self.usage.calls += len(conversations)
        return [Completion(self.text, 10, 10, "scripted") for _ in conversations]


def test_top_up_fills_short_statements_once_and_reuses_the_stored_version(tmp_path: Path) -> None:
    short = STATEMENTS[:2]
    rows = [
        {
            "statement_id": s.id,
            "pair_index": 0,
            "illustrates": f"{s.id} shown " * 5,
            "contradicts": f"{s.id} denied " * 5,
        }
        for s in STATEMENTS
    ]
    rows = [r for r in rows if r["statement_id"] not in {s.id for s in short}] + [
        {**r, "pair_index": i} for r in rows if r["statement_id"] in {s.id for s in short} for i in range(3)
    ]
    # every statement but the first two has one pair; those two have three
    pool = load_pool(_pool_file(tmp_path, rows), STATEMENTS, SkipLog())
    store = ArtifactStore(tmp_path / "artifacts")
    author = ScriptedAuthor(LABELLED)
    topped = top_up_pool(pool, STATEMENTS, author, store, per_statement=3)
    assert len(author.requests) == 148 and "For the following statement:" in author.requests[0]
    assert topped.version.startswith(pool.version + "+gen-")
    assert len(topped.pairs(STATEMENTS[5].id)) == 3
    new = topped.pairs(STATEMENTS[5].id)[1]
    assert new.source == "generated:scripted" and new.pair_index == 1 and new.version == topped.version
    # a statement never gets the same scenario twice: the third scripted pair fills the third slot
    assert len({p.illustrates for p in topped.pairs(STATEMENTS[5].id)}) == 3
    assert (store.root / "scenario-pools" / f"{topped.version}.jsonl").is_file()

    again = top_up_pool(pool, STATEMENTS, author, store, per_statement=3)
    assert len(author.requests) == 148  # reused, not regenerated
    assert again.version == topped.version and len(again) == len(topped)


@pytest.mark.model
def test_top_up_with_the_embedded_model_is_parsed_stored_and_reused(tmp_path: Path, embedded_llm) -> None:
    keep = {s.id for s in STATEMENTS[1:]}
    rows = [
        json.loads(line)
        for line in (Path(__file__).parents[1] / "src/gravity_pairgen/data/scenario_pool.jsonl")
        .read_text()
        .splitlines()
    ]
    pool = load_pool(
        _pool_file(tmp_path, [r for r in rows if r["statement_id"] in keep]), STATEMENTS, SkipLog()
    )
    assert not pool.pairs(STATEMENTS[0].id)
    store = ArtifactStore(tmp_path / "artifacts")
    calls = embedded_llm.usage.calls
    topped = top_up_pool(pool, STATEMENTS, embedded_llm, store, per_statement=3, max_tokens=160)
    assert embedded_llm.usage.calls == calls + 1  # one statement was short
    generated = topped.pairs(STATEMENTS[0].id)
    assert len(generated) <= 3
    for pair in generated:
        assert pair.source.startswith("generated:") and pair.illustrates != pair.contradicts
    assert (store.root / "scenario-pools" / f"{topped.version}.jsonl").is_file()
    top_up_pool(pool, STATEMENTS, embedded_llm, store, per_statement=3, max_tokens=160)
    assert embedded_llm.usage.calls == calls + 1


def test_pool_command_reports_coverage_and_exports(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gravity_core.cli.main import cli

    out = tmp_path / "pool.jsonl"
    result = CliRunner().invoke(
        cli,
        ["pairs", "pool", "--export", str(out)],
        env={"GRAVITY_LOGGING__LEVEL": "WARNING"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "scenario pool curated-2026.11 (shipped): 450 pairs" in result.output
    assert "with 3 pairs: 150, fewer: 0, none: 0" in result.output
    assert len(load_pool(out, STATEMENTS)) == 450
