"""From generations to the three report files, with the scripted judge (fast) and a word-overlap embedder."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
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
    cfg = JudgeSettings(bootstrap_samples=200)
    run, rep = evaluate(
        evalset,
        ScriptedJudge,
        load_settings(env={}),
        cfg,
        embedder=OverlapEmbedder,
        sources={"generations": str(generations_path)},  # type: ignore[arg-type]
    )
    return rep, write_report(rep, tmp_path / "out", run=run)


def test_report_json_has_every_number(report) -> None:  # type: ignore[no-untyped-def]
    rep, files = report
    data = json.loads(files["report.json"].read_text())
    assert data == json.loads(json.dumps(rep))
    assert data["judge"]["model"] == "scripted-judge" and data["judge"]["ranking_orders"] == 0
    assert data["protocols"]["run"] == ["paper", "debiased"] and data["protocols"]["primary"] == "debiased"
    assert data["protocols"]["comparable_with_table2"] == "paper"
    assert data["sample"] == {
        **data["sample"],
        "users": 4,
        "books": 2,
        "units": 8,
        "methods": ["original", "base-rewrite", "lamp", "gravity", "gravity-no-values"],
        "ranked_methods": ["original", "base-rewrite", "lamp", "gravity"],
        "ablations": ["gravity-no-values"],
    }
    assert data["metrics"] == data["metrics_by_protocol"]["debiased"]  # the primary protocol's numbers
    for protocol in ("paper", "debiased"):
        overall = data["metrics_by_protocol"][protocol]["overall"]
        # VIVID outputs (lamp, gravity) share every win under both protocols
        wins = {
            k: overall[k]["top1_win_rate"]["value"] for k in ("original", "base-rewrite", "lamp", "gravity")
        }
        assert wins["original"] == wins["base-rewrite"] == 0.0
        assert wins["lamp"] + wins["gravity"] == pytest.approx(100.0)
        assert overall["gravity"]["preference_gain"]["value"] == 100.0
        assert overall["gravity-no-values"]["top1_win_rate"]["value"] is None  # ablations are not ranked
        assert (
            overall["gravity"]["interestingness"]["value"] > overall["original"]["interestingness"]["value"]
        )
        assert 0 < overall["base-rewrite"]["similarity"]["value"] < 100
        for entry in overall.values():
            for metric in ("top1_win_rate", "preference_gain", "interestingness", "similarity"):
                e = entry[metric]
                if e and e["value"] is not None:
                    assert e["ci_low"] <= e["value"] <= e["ci_high"]
    paper = data["metrics_by_protocol"]["paper"]["overall"]
    debiased = data["metrics"]["overall"]
    assert debiased["base-rewrite"]["preference_gain"]["ties"] == 8  # A/B ties; a ranking has none
    assert paper["base-rewrite"]["preference_gain"]["ties"] == 0
    assert paper["gravity"]["interestingness"]["value"] == 5.0  # the answer itself, not an expectation
    assert debiased["gravity"]["interestingness"]["value"] == pytest.approx(4.75)
    assert set(data["metrics"]["by_country"]) == {"USA", "Brazil", "India", "Japan"}
    assert set(data["metrics"]["by_genre_group"]) == {"Literature & Fiction", "Business & Money"}
    for protocol in ("paper", "debiased"):
        by = data["metrics_by_protocol"][protocol]
        assert list(by["by_genre_cluster"]) == ["Fiction", "Business / Economics / Finance"]
        assert list(by["by_fiction"]) == ["fiction", "non-fiction"]
        assert by["by_fiction"]["fiction"]["units"] == 4
    assert data["sample"]["units_by_genre_cluster"] == {"Fiction": 4, "Business / Economics / Finance": 4}
    agreement = data["agreement"]
    assert agreement["units"] == 8 and agreement["same_top1"]["value"] is not None
    assert -1.0 <= agreement["kendall_tau"]["value"] <= 1.0
    bias = data["position_bias"]
    assert bias["paper"]["rankings"] == 8 and bias["paper"]["unusable_rankings"] == 0
    assert bias["paper"]["top_pick"]["chance_rate"] == 25.0
    assert (
        bias["debiased"]["ranking"]["balanced_units"] == 8
        and bias["debiased"]["ranking"]["orders_per_unit"] == 4
    )
    assert bias["debiased"]["pairwise"]["pairs"] == 32
    assert bias["debiased"]["ranking"]["prior"]["4"]["observations"] == 32
    (test,) = data["ablations"]["tests"]
    assert test["method"] == "gravity-no-values" and test["n_pairs"] == 8
    assert test["delta"]["value"] == -100.0 and test["wilcoxon"]["stars"] == "**"
    assert data["ablations_by_protocol"]["paper"]["tests"] == []
    assert "rank_ablations" in data["ablations_by_protocol"]["paper"]["note"]
    assert data["skipped"]["by_reason"] == {"malformed_json": 1}
    assert data["unusable"]["total"] == 0
    assert data["inputs"]["rows_read"] == 40 and data["inputs"]["rows_used"] == 40
    assert data["profile_evidence"]["readers"] == 4 and data["profile_evidence"]["without_evidence"] == 4
    assert len(data["examples"]) == 3 and len({e["user_id"] for e in data["examples"]}) == 3


def test_judgments_jsonl_holds_every_judgment(report) -> None:  # type: ignore[no-untyped-def]
    rep, files = report
    lines = [json.loads(x) for x in files["judgments.jsonl"].read_text().splitlines()]
    assert len(lines) == rep["judgments"]["records"]
    kinds = Counter((x["protocol"], x["question"]) for x in lines)
    # per unit: 1 paper ranking, 4 balanced top-pick orders, 4 methods x 2 pair orders, 5 Likert ratings
    assert kinds == {
        ("paper", "ranking"): 8,
        ("debiased", "top-pick"): 32,
        ("debiased", "pairwise"): 64,
        ("both", "likert"): 40,
    }
    paper = next(x for x in lines if x["question"] == "ranking")
    assert paper["status"] == "ok" and sorted(paper["order"]) == sorted(paper["ranking"])
    assert paper["raw_text"].startswith("Ranking: ")
    top = [
        x
        for x in lines
        if x["question"] == "top-pick"
        and x["user_id"] == paper["user_id"]
        and x["parent_asin"] == paper["parent_asin"]
    ]
    assert {tuple(x["order"]) for x in top} and len({x["order"][0] for x in top}) == 4  # balanced orders
    assert all(sum(x["corrected_probabilities"]) == pytest.approx(1.0, abs=1e-5) for x in top)
    pair = next(x for x in lines if x["question"] == "pairwise")
    assert pair["methods"][0] == "original" and len(pair["probabilities"]) == 2


def test_markdown_has_both_protocols_side_by_side(report) -> None:  # type: ignore[no-untyped-def]
    md = report[1]["report.md"].read_text()
    assert (
        "| Method | Top-1 Win (%) (paper) | Top-1 Win (%) (debiased) | Pref. Gain (%) (paper) | "
        "Pref. Gain (%) (debiased) | Int. Score (paper) | Int. Score (debiased) | Text Similarity | Units |"
    ) in md
    assert re.search(
        r"\| GRAVITY \| [\d.]+ \[[\d.]+, [\d.]+\] \| [\d.]+ \[[\d.]+, [\d.]+\] \| 100\.0 \[100\.0, 100\.0\] \|",
        md,
    )
    assert "are the ones comparable with the paper's Table 2" in md
    for heading in (
        "Protocol agreement",
        "Judge position bias",
        "By country (Tables 14–17)",
        "by genre cluster, fiction and non-fiction (Figure 3)",
        "by Amazon category",
        "Ablations (Tables 5 and 6)",
        "Profile evidence",
        "What was judged (examples)",
    ):
        assert heading in md
    for caption in ("**USA (2 units)**", "**Japan (2 units)**"):
        assert caption in md
    assert "| All fiction | 4 |" in md and "| Business / Economics / Finance | 4 |" in md
    assert "| GRAVITY − Values &amp; Beliefs | 0.0 | -100.0 [-100.0, -100.0]\\*\\* |" in md
    assert "| U\\_BRA | unknown | unknown | unknown | unknown | unknown | 0 |" in md
    assert "malformed\\_json 1" in md


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
    run, rep = evaluate(evalset, mumbling, load_settings(env={}), cfg)  # type: ignore[arg-type]
    # "Description A" names one description, not a ranking of all: the paper rankings are unusable
    assert rep["unusable"]["by_kind"] == {"likert": 40, "paper-ranking": 8}
    assert rep["unusable"]["by_reason"] == {"unreadable_answer": 40, "unparsable_ranking": 8}
    assert {e["answer"] for e in rep["unusable"]["examples"]} == {"Well...", "Description A"}
    assert rep["position_bias"]["paper"]["unusable_rankings"] == 8
    paper = rep["metrics_by_protocol"]["paper"]["overall"]["gravity"]
    assert paper["top1_win_rate"]["value"] is None and paper["preference_gain"]["n"] == 0  # never guessed
    assert rep["metrics"]["overall"]["gravity"]["interestingness"]["value"] is None
    assert rep["metrics"]["overall"]["gravity"]["similarity"]["value"] is None  # similarity not asked for
    # always answering "Description A": every pair is position-biased and a tie, which parsed answers
    # (one-hot, no probabilities) cannot be corrected out of
    rates = rep["position_bias"]["debiased"]["pairwise"]["position_bias_rate"]
    assert rates["before"]["value"] == rates["after"]["value"] == 100.0
    assert rep["protocols"]["slot_priors"]["pairwise"] is None
    assert rep["metrics"]["overall"]["gravity"]["preference_gain"]["ties"] == 8
    files = write_report(rep, tmp_path / "out", run=run)
    md = files["report.md"].read_text()
    assert "48 judgment(s) unusable: likert 40, paper-ranking 8" in md
    assert "8 ranking(s) asked, 8 could not be read as a complete ranking" in md
    records = [json.loads(x) for x in files["judgments.jsonl"].read_text().splitlines()]
    unparsed = [x for x in records if x["question"] == "ranking"]
    assert len(unparsed) == 8 and all(
        x["status"] == "unparsable_ranking" and x["raw_text"] == "Description A" and x["ranking"] is None
        for x in unparsed
    )


HOSTILE = "Evil | <script>alert(1)</script> *bold* _it_ `code` [x](http://e.example) $x$\nnew row | x |"


def test_report_escapes_hostile_text_in_every_cell(tmp_path: Path, profiles_path: Path) -> None:
    """A description, method name and country holding table pipes, HTML, Markdown and newlines stay
    literal text: no Markdown row breaks, no tag reaches report.md or report.html."""
    from judge_fixtures import METHOD_TEXTS, profile, unit_rows

    from gravity_core.proto_io import write_jsonl

    weird_method = "my|<script>*method*"
    texts = {**METHOD_TEXTS, "lamp": HOSTILE + " VIVID", weird_method: "A plain text."}
    gens = tmp_path / "g.jsonl"
    write_jsonl(unit_rows("U_X", "B1", texts, "Weird | <i>Group</i>"), gens)
    profiles = tmp_path / "p.jsonl"
    write_jsonl([profile("U_X", "young", "male", "<b>Land|</b>\nnext", "A reader | <img src=x>.")], profiles)
    skips = SkipLog()
    store = ProfileStore.from_jsonl(profiles, skips)
    evalset = assemble(
        rows_from_file(gens, skips),
        lambda uid: Persona.from_profile(store.get(uid)),
        skips,
        extra_methods=[weird_method],
    )
    cfg = JudgeSettings(bootstrap_samples=20, extra_methods=[weird_method])
    run, rep = evaluate(evalset, ScriptedJudge, load_settings(env={}), cfg, embedder=OverlapEmbedder)  # type: ignore[arg-type]
    files = write_report(rep, tmp_path / "out", run=run)
    md = files["report.md"].read_text()
    html = files["report.html"].read_text()
    assert HOSTILE.split("\n")[0].split(" | ")[0] in md  # the description is shown (as an example)
    for raw in ("<script>", "<b>", "<i>", "<img src=x"):
        assert raw not in md and raw not in html
    assert "](http" not in md  # no Markdown link
    assert "&lt;script&gt;" in md and "&lt;script&gt;" in html
    assert "\\*bold\\*" in md and "\\_it\\_" in md and "\\`code\\`" in md and "\\$x\\$" in md
    assert not any(line.startswith("new row") for line in md.splitlines())
    unescaped_pipe = re.compile(r"(?<!\\)\|")
    table: list[str] = []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:  # every row of a table has the header's number of cell separators
            assert len({len(unescaped_pipe.findall(row)) for row in table}) == 1, table
            table = []


def test_markdown_table_cells_are_literal_text() -> None:
    from gravity_judge.report.markdown import table_markdown
    from gravity_judge.report.tables import Table

    md = table_markdown(
        Table(["Method", "Gain"], [["<script>x</script>|*b*\nrow", "1.0"]], caption="<b>Land</b> | *x*")
    )
    assert md.splitlines() == [
        "**&lt;b&gt;Land&lt;/b&gt; \\| \\*x\\***",
        "",
        "| Method | Gain |",
        "|---|---:|",
        "| &lt;script&gt;x&lt;/script&gt;\\|\\*b\\* row | 1.0 |",
    ]
