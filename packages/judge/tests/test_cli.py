"""`gravity judge` end to end: bad input as one-line errors, and a small real run on SmolLM2 + MiniLM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from judge_fixtures import METHOD_TEXTS, generation

from gravity_core.cli.main import cli
from gravity_core.proto_io import write_jsonl


def _gravity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gravity_core.cli.main", *args], capture_output=True, text=True, timeout=300
    )


def test_nothing_judgeable_writes_the_report_and_fails_in_one_line(
    tmp_path: Path, profiles_path: Path
) -> None:
    gens = tmp_path / "g.jsonl"
    write_jsonl(
        [
            generation("U_USA", "B1", "gravity", "no original"),
            generation("U_GHOST", "B1", "original", "o"),
            generation("U_GHOST", "B1", "gravity", "g"),
            generation("U_USA", "B2", "made-up", "x"),
        ],
        gens,
    )
    out = tmp_path / "report"
    proc = _gravity("judge", "--generations", str(gens), "--profiles", str(profiles_path), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: no (user, book) unit could be judged")
    assert "skipped 3: " in proc.stdout and "missing_original=1" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["sample"]["units"] == 0
    assert report["skipped"]["by_reason"] == {
        "missing_original": 1,
        "missing_profile": 1,
        "unknown_method": 1,
    }
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    assert (out / "judgments.jsonl").read_text() == ""  # nothing was judged


def test_unknown_method_option_and_missing_file_are_one_line_errors(
    tmp_path: Path, profiles_path: Path
) -> None:
    proc = _gravity(
        "judge",
        "--generations",
        str(profiles_path),
        "--profiles",
        str(profiles_path),
        "--out",
        str(tmp_path),
        "--methods",
        "gravity,nope",
    )
    assert (
        proc.returncode == 2
        and "--methods: unknown method(s): nope" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    proc = _gravity(
        "judge",
        "--generations",
        str(tmp_path / "missing.jsonl"),
        "--profiles",
        str(profiles_path),
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def _sample_books(n: int) -> list:  # type: ignore[type-arg]
    from gravity_core.amazon import iter_books
    from gravity_core.sample import sample_dir
    from gravity_core.skips import SkipLog

    books = [b for _, b in iter_books(sample_dir() / "meta_Books.jsonl", SkipLog()) if b.description]
    # one fiction and one non-fiction book of the bundled sample
    return [books[0], next(b for b in books if b.genre_group == "Business & Money")][:n]


@pytest.mark.model
@pytest.mark.parametrize("processes", [1, 2], ids=["in-process", "two-worker-processes"])
def test_real_run_on_the_embedded_judge(  # type: ignore[no-untyped-def]
    tmp_path: Path, profiles_path: Path, embedded_llm, processes: int
) -> None:
    """Two readers and two books of the bundled sample, both protocols on SmolLM2 (constrained-greedy
    paper ranking, balanced top-pick orders and A/B pairs from log-probabilities), MiniLM similarity:
    report.json/md/html with both protocols, their agreement, the genre-cluster breakdown and
    judgments.jsonl. With two worker processes (what the demo runs) the two units are judged at once, and the
    slot priors are still estimated over both."""
    from judge_fixtures import generation

    texts = {k: v.replace("VIVID", "vivid") for k, v in METHOD_TEXTS.items() if k != "base-rewrite"}
    rows = []
    for user, book in zip(("U_USA", "U_JPN"), _sample_books(2), strict=True):
        for method, text in texts.items():
            g = generation(
                user, book.parent_asin, method, book.description[:400] if method == "original" else text
            )
            g.book_title, g.genre, g.genre_group = book.title, book.genre, book.genre_group
            rows.append(g)
    rows.append(generation("U_JPN", rows[-1].parent_asin, "gravity", "duplicate"))
    gens = tmp_path / "generations.jsonl"
    write_jsonl(rows, gens)
    config = tmp_path / "gravity.toml"
    config.write_text(
        f"[llm.defaults]\nmax_tokens = 64\nprocesses = {processes}\n\n[cache]\nenabled = false\n\n"
        "[judge]\nbootstrap_samples = 100\n"
    )
    out = tmp_path / "report"
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "judge", "--generations", str(gens), "--profiles", str(profiles_path),
         "--out", str(out)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "gravity judge — smollm2-135m (embedded), 2 units, 2 users; protocols: paper, debiased"
        in result.output
    )
    assert "skipped 1: duplicate_row=1" in result.output
    assert "position bias, paper rankings" in result.output and "protocol agreement" in result.output
    report = json.loads((out / "report.json").read_text())
    # 3 ranked methods: 3 balanced top-pick orders and 1 constrained ranking per unit, 3 methods x 2 A/B
    # orders, 4 Likert ratings
    assert report["judge"]["answers"] == {"logprobs": 2 * 3 + 2 * 3 * 2 + 2 * 4, "constrained-greedy": 2}
    assert report["unusable"]["total"] == 0
    assert report["protocols"]["run"] == ["paper", "debiased"]
    for protocol in ("paper", "debiased"):
        overall = report["metrics_by_protocol"][protocol]["overall"]
        wins = [overall[k]["top1_win_rate"]["value"] for k in ("original", "lamp", "gravity")]
        assert sum(wins) == pytest.approx(100.0, abs=1e-3)
        for method in ("lamp", "gravity"):
            assert overall[method]["preference_gain"]["n"] == 2
            assert 0.0 < overall[method]["similarity"]["value"] < 100.0
            assert 1.0 <= overall[method]["interestingness"]["value"] <= 5.0
        clusters = report["metrics_by_protocol"][protocol]["by_genre_cluster"]
        assert set(clusters) == {"Fiction", "Business / Economics / Finance"}
        assert set(report["metrics_by_protocol"][protocol]["by_fiction"]) == {"fiction", "non-fiction"}
    assert report["metrics"]["overall"]["gravity-no-values"]["preference_gain"]["n"] == 2
    assert report["agreement"]["units"] == 2 and report["agreement"]["kendall_tau"]["n"] == 2
    assert report["position_bias"]["debiased"]["ranking"]["balanced_units"] == 2
    assert report["protocols"]["slot_priors"]["ranking"]["3"]["observations"] == 6
    assert set(report["metrics"]["by_country"]) == {"USA", "Japan"}
    assert report["ablations"]["tests"][0]["n_pairs"] == 2
    assert report["llm_usage"]["prompt_tokens"] > 0
    records = [json.loads(x) for x in (out / "judgments.jsonl").read_text().splitlines()]
    assert len(records) == report["judgments"]["records"] == 2 * (1 + 3 + 6 + 4)
    paper = [x for x in records if x["protocol"] == "paper"]
    assert all(x["read_by"] == "constrained-greedy" and len(x["steps"]) == 2 for x in paper)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    md = (out / "report.md").read_text()
    assert "Protocol agreement" in md and "genre cluster" in md and "What was judged" in md
