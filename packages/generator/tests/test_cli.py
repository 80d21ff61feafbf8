"""`gravity generate` (batch, every method incl. original) and `gravity personalize` (a real CLI process
against a running generator), with bad input reported, never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gravity.v1 import judge_pb2
from gravity_core.catalog import Catalog
from gravity_core.cli.main import cli
from gravity_core.errors import InvalidInput
from gravity_core.names import method_name
from gravity_core.proto_io import read_jsonl
from gravity_core.skips import SkipLog
from gravity_core.targets import select_targets

pytestmark = pytest.mark.model

ALL = {
    "original",
    "base-rewrite",
    "demo-based",
    "user-summary",
    "lamp",
    "tri-agent",
    "user-sft",
    "pref-align",
    "gravity",
}


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "gravity.toml"
    config.write_text(
        f'[cache]\nenabled = false\n[artifacts]\nroot = "{tmp_path / "artifacts"}"\n[logging]\nlevel = "WARNING"\n',
        encoding="utf-8",
    )
    return config


def test_generate_writes_every_method_for_every_target(
    tmp_path: Path, sample_files, profiles_file: Path, profiles, catalog: Catalog, trained_adapters
) -> None:
    dirty = tmp_path / "profiles.jsonl"
    dirty.write_text(profiles_file.read_text() + 'not json\n{"user_id": 5}\n', encoding="utf-8")
    users = [profiles[0].user_id, profiles[5].user_id]
    out = tmp_path / "generations.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "--config", str(write_config(tmp_path)),
            "generate",
            "--profiles", str(dirty),
            "--meta", str(sample_files["meta_Books.jsonl"]),
            "--adapters", str(trained_adapters["gravity"].parent),
            "--method", "all",
            "--users", ",".join([*users, "nobody"]),
            "--books-per-user", "1",
            "--max-new-tokens", "6",
            "--out", str(out),
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [g for _, g in read_jsonl(out, judge_pb2.Generation, SkipLog())]
    assert len(rows) == 2 * len(ALL)
    expected_books = {
        u: select_targets(next(p for p in profiles if p.user_id == u), catalog, 1)[0] for u in users
    }
    assert [(r.user_id, method_name(r)) for r in rows[:2]] == [
        (users[0], "original"),
        (users[0], "base-rewrite"),
    ]
    for row in rows:
        book = expected_books[row.user_id]
        assert row.parent_asin == book.parent_asin and row.book_title == book.title
        assert row.genre == book.genre and row.genre_group == book.genre_group and row.genre
        if method_name(row) == "original":
            assert row.text == book.description and row.model == ""
        else:
            assert row.text and row.model == "smollm2-135m" and row.completion_tokens > 0
    assert {method_name(r) for r in rows} == ALL
    assert {r.adapter for r in rows if method_name(r) == "gravity"} == {"gravity-test"}
    # the summary names every skipped line and user
    assert "generated 18 rows" in result.output
    assert f"{dirty}:{len(profiles) + 1}: malformed_json" in result.output
    assert f"{dirty}:{len(profiles) + 2}: bad_record" in result.output
    assert "unknown_user" in result.output


def test_generate_uses_exactly_the_manifests_held_out_books(
    tmp_path: Path, sample_files, profiles_file: Path, profiles, catalog: Catalog
) -> None:
    from gravity_core.datasets import DatasetManifest, manifest_bytes

    first, second, third = (p.user_id for p in profiles[:3])
    # books a manifest holds out for two readers; the third reader is not in the manifest
    held = {
        first: [b.parent_asin for b in select_targets(profiles[0], catalog, 2)][::-1],
        second: [select_targets(profiles[1], catalog, 1)[0].parent_asin],
    }
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    (pairs / "manifest.json").write_bytes(manifest_bytes(DatasetManifest(held_out=held)))
    out = tmp_path / "generations.jsonl"
    args = [
        "--config", str(write_config(tmp_path)), "generate", "--profiles", str(profiles_file),
        "--meta", str(sample_files["meta_Books.jsonl"]), "--method", "original", "--pairs", str(pairs),
        "--users", f"{first},{second},{third}", "--books-per-user", "1", "--out", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [g for _, g in read_jsonl(out, judge_pb2.Generation, SkipLog())]
    assert [(r.user_id, r.parent_asin) for r in rows] == [(first, held[first][0]), (second, held[second][0])]
    assert "not_in_manifest" in result.output and "held-out books of" in result.output
    # asking for more books than the manifest holds is an error, not a silent substitution
    args[args.index("--books-per-user") + 1] = "2"
    refused = CliRunner().invoke(cli, args)
    assert isinstance(refused.exception, InvalidInput) and "fewer than the 2 asked for" in str(
        refused.exception
    )


def test_generate_rejects_a_method_without_its_adapter(
    tmp_path: Path, sample_files, profiles_file: Path
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gravity_core.cli.main", "--config", str(write_config(tmp_path)), "generate",
         "--profiles", str(profiles_file), "--meta", str(sample_files["meta_Books.jsonl"]),
         "--method", "gravity", "--out", str(tmp_path / "o.jsonl")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "method 'gravity' has no adapter" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o.jsonl").exists()


def personalize(generator, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gravity_core.cli.main", "personalize", "--target", generator.target, *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_personalize_prints_streams_and_fails_in_one_line(generator, profiles, catalog: Catalog) -> None:
    profile = profiles[0]
    book = select_targets(profile, catalog, 1)[0]
    common = ["--user", profile.user_id, "--book", book.parent_asin, "--max-new-tokens", "6"]
    plain = personalize(generator, *common, "--method", "demo-based")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() and "[demo-based | model smollm2-135m | adapter -" in plain.stderr

    streamed = personalize(generator, *common, "--method", "gravity", "--stream", "--json")
    assert streamed.returncode == 0, streamed.stderr
    reply = json.loads(streamed.stdout)
    assert reply["adapter"] == "gravity-test" and reply["text"]

    listed = personalize(generator, "--list-methods")
    assert listed.returncode == 0 and "gravity-test" in listed.stdout

    missing = personalize(generator, "--user", "nobody", "--book", book.parent_asin, "--method", "lamp")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == "error: NOT_FOUND: user_id: no profile for user 'nobody'"
