"""From generations to the three report files, with the scripted judge (fast) and a word-overlap embedder."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from judge_fixtures import ScriptedJudge

from gravity_core.config import load_settings
from gravity_core.profiles import ProfileStore
from gravity_core.skips import SkipLog
from gravity_judge.inputs import assemble, rows_from_file
from gravity_judge.persona import Persona
from gravity_judge.pipeline import evaluate
from gravity_judge.report import write_report
from gravity_judge.settings import JudgeSettings


class OverlapEmbedder:
    """Jaccard word overlap in place of MiniLM, so this test needs no model."""

    def similarity(self, a: list[str], b: list[str]) -> np.ndarray:
        def sim(x: str, y: str) -> float:
            wx, wy = set(x.lower().split()), set(y.lower().split())
            return len(wx & wy) / len(wx | wy)

        return np.array([sim(x, y) for x, y in zip(a, b, strict=True)])


@pytest.fixture
def report(tmp_path: Path, generations_path: Path, profiles_path: Path) -> tuple[dict, dict[str, Path]]:
    with open(generations_path, "a") as f:
        f.write("{broken line\n")
    skips = SkipLog()
    store = ProfileStore.from_jsonl(profiles_path, skips)
    evalset = assemble(
        rows_from_file(generations_path, skips),
        lambda uid: Persona.from_profile(store.get(uid)) if uid in store else None,
        skips,
    )
    cfg = JudgeSettings(bootstrap_samples=200, orders=3)
    _run, rep = evaluate(
        evalset,
        ScriptedJudge,
        load_settings(env={}),
        cfg,
        embedder=OverlapEmbedder,
        sources={"generations": str(generations_path)},  # type: ignore[arg-type]
    )
    return rep, write_report(rep, tmp_path / "out")


def test_report_json_has_every_number(report) -> None:  # type: ignore[no-untyped-def]
    rep, files = report
    data = json.loads(files["report.json"].read_text())
    assert data == json.loads(json.dumps(rep))
    assert data["judge"]["model"] == "scripted-judge" and data["judge"]["ranking_orders"] == 3
    assert data["sample"] == {
        **data["sample"],
        "users": 4,
        "books": 2,
        "units": 8,
        "methods": ["original", "base-rewrite", "lamp", "gravity", "gravity-no-values"],
        "ranked_methods": ["original", "base-rewrite", "lamp", "gravity"],
        "ablations": ["gravity-no-values"],
    }
    overall = data["metrics"]["overall"]
    # VIVID outputs (lamp, gravity) share every win; plain ones never win and tie against the original
    wins = {k: overall[k]["top1_win_rate"]["value"] for k in ("original", "base-rewrite", "lamp", "gravity")}
    assert wins["original"] == wins["base-rewrite"] == 0.0 and wins["lamp"] + wins[
        "gravity"
    ] == pytest.approx(100.0)
    assert overall["gravity"]["preference_gain"]["value"] == 100.0
    assert overall["base-rewrite"]["preference_gain"]["ties"] == 8
    assert overall["gravity-no-values"]["top1_win_rate"]["value"] is None  # ablations are not ranked
    assert overall["gravity"]["interestingness"]["value"] > overall["original"]["interestingness"]["value"]
    assert 0 < overall["base-rewrite"]["similarity"]["value"] < 100
    for entry in overall.values():
        for metric in ("top1_win_rate", "preference_gain", "interestingness", "similarity"):
            e = entry[metric]
            if e and e["value"] is not None:
                assert e["ci_low"] <= e["value"] <= e["ci_high"]
    assert set(data["metrics"]["by_country"]) == {"USA", "Brazil", "India", "Japan"}
    assert set(data["metrics"]["by_genre_group"]) == {"Literature & Fiction", "Business & Money"}
    (test,) = data["ablations"]["tests"]
    assert test["method"] == "gravity-no-values" and test["n_pairs"] == 8
    assert test["delta"]["value"] == -100.0 and test["wilcoxon"]["stars"] == "**"
    rel = data["reliability"]
    assert rel["pairwise"]["pairs"] == 32 and rel["pairwise"]["position_bias_rate"]["value"] == 50.0
    assert rel["ranking"]["order_agreement"]["value"] is not None
    assert data["skipped"]["by_reason"] == {"malformed_json": 1}
    assert data["unusable"]["total"] == 0
    assert data["inputs"]["rows_read"] == 40 and data["inputs"]["rows_used"] == 40


def test_markdown_has_the_paper_tables(report) -> None:  # type: ignore[no-untyped-def]
    md = report[1]["report.md"].read_text()
    assert "| Method | Top-1 Win (%) | Pref. Gain (%) | Int. Score | Text Similarity | Units |" in md
    assert re.search(r"\| GRAVITY \| [\d.]+ \[[\d.]+, [\d.]+\] \| 100\.0 \[100\.0, 100\.0\] \|", md)
    for heading in (
        "By country (Tables 14–17)",
        "by genre group (Figure 3)",
        "Ablations (Tables 5 and 6)",
        "Judge reliability",
    ):
        assert heading in md
    for caption in ("**USA (2 units)**", "**Japan (2 units)**"):
        assert caption in md
    assert "| GRAVITY − Values & Beliefs | 0.0 | -100.0 [-100.0, -100.0]** |" in md
    assert "malformed_json 1" in md


def test_html_embeds_the_figures(report) -> None:  # type: ignore[no-untyped-def]
    html = report[1]["report.html"].read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 3
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    for figure in ('id="preference_by_country"', 'id="preference_by_genre"', 'id="win_rate"'):
        assert figure in html
    assert "<table>" in html and "GRAVITY − Values &amp; Beliefs" in html


def test_unreadable_answers_are_counted_in_the_report(
    tmp_path: Path, generations_path: Path, profiles_path: Path
) -> None:
    store = ProfileStore.from_jsonl(profiles_path, SkipLog())
    skips = SkipLog()
    evalset = assemble(
        rows_from_file(generations_path, skips), lambda uid: Persona.from_profile(store.get(uid)), skips
    )

    def mumbling() -> ScriptedJudge:
        return ScriptedJudge(text_answer=lambda p: "Well..." if "from 1 to 5" in p else "Description A")

    cfg = JudgeSettings(answer_mode="text", bootstrap_samples=50, metrics=["ranking", "pairwise", "likert"])
    _run, rep = evaluate(evalset, mumbling, load_settings(env={}), cfg)  # type: ignore[arg-type]
    assert rep["unusable"]["by_kind"] == {"likert": 40} and rep["unusable"]["by_reason"] == {
        "unreadable_answer": 40
    }
    assert rep["unusable"]["examples"][0]["answer"] == "Well..."
    assert rep["metrics"]["overall"]["gravity"]["interestingness"]["value"] is None
    assert rep["metrics"]["overall"]["gravity"]["similarity"]["value"] is None  # similarity not asked for
    # always answering "Description A": every pair is position-biased and a tie
    assert rep["reliability"]["pairwise"]["position_bias_rate"]["value"] == 100.0
    assert rep["metrics"]["overall"]["gravity"]["preference_gain"]["ties"] == 8
    md = write_report(rep, tmp_path / "out")["report.md"].read_text()
    assert "40 judgment(s) unusable: likert 40" in md
