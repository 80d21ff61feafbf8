"""`gravity pairs build` on the sample's profiles: the facet rules, the output contract, bad input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from gravity.v1 import profile_pb2
from gravity_core.catalog import Catalog
from gravity_core.cli.main import cli
from gravity_core.datasets import DPO_COLUMNS, SFT_COLUMNS, load_manifest, verify_shards
from gravity_core.errors import InvalidInput
from gravity_core.names import FACETS
from gravity_core.proto_io import to_json, write_jsonl
from gravity_core.skips import SkipLog
from gravity_core.targets import EvaluationPool
from gravity_core.values import load_seed_statements
from gravity_pairgen.banks import load_builtin
from gravity_pairgen.batch import build_dataset
from gravity_pairgen.facets import user_genres
from gravity_pairgen.scenarios import load_pool
from gravity_pairgen.settings import PairGenSettings
from gravity_pairgen.shards import read_provenance

pytestmark = pytest.mark.model  # MiniLM embeds the category names

DATASETS = ["gravity", "gravity-sft", "user-sft"]


def _read(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _shard(out: Path, dataset: str, user_id: str) -> Path:
    return out / dataset / f"{user_id}.parquet"


@pytest.fixture(scope="module")
def built(tmp_path_factory, sample_profiles, sample_catalog, embedder, make_settings_module):
    root = tmp_path_factory.mktemp("built")
    profiles = root / "profiles.jsonl"
    write_jsonl(sample_profiles, profiles)
    settings = make_settings_module()
    cfg = PairGenSettings(datasets=DATASETS, ablations=["all"])
    report = build_dataset(settings, cfg, profiles, root / "out", catalog=sample_catalog, embedder=embedder)
    return report, root / "out"


@pytest.fixture(scope="module")
def make_settings_module(tmp_path_factory):
    from gravity_core.config import load_settings

    root = tmp_path_factory.mktemp("settings")

    def build(**overrides):
        base = {"artifacts.root": str(root / "artifacts"), "cache.enabled": False, "logging.level": "WARNING"}
        return load_settings(None, env={}, overrides={**base, **overrides})

    return build


def test_every_user_gets_every_facet_by_the_rules(built, sample_profiles, sample_catalog) -> None:
    report, out = built
    manifest = load_manifest(out)
    assert report.skips.total == 0 and report.users_built == len(sample_profiles) == manifest.cohort_size
    assert manifest.cohort_id == "sample" and manifest.recipe == "full" and manifest.seed == 13
    pool = load_pool(None, load_seed_statements())
    bank_per_trait = Counter(i.trait for i in load_builtin(SkipLog()))
    counts = manifest.dataset("gravity").counts()
    held_out = EvaluationPool(sample_catalog, manifest.evaluation)
    for profile in sample_profiles:
        genres = user_genres(profile, 5)
        rows = _read(_shard(out, "gravity", profile.user_id))
        provenance = read_provenance(_shard(out, "gravity", profile.user_id))
        by_facet = Counter(r["facet"] for r in rows)
        assert by_facet == counts[profile.user_id]
        # category: each of the user's genres against each of the 3 most distinct categories
        category = [r for r in rows if r["facet"] == "category"]
        assert len(category) == len(genres) * 3
        assert {r["chosen"] for r in category} == set(genres)
        distinct = {r["rejected"] for r in category}
        assert len(distinct) == 3 and not distinct & set(genres)
        # summary: top-rated books of the user's genres vs the distinct ones, reviewed books never used
        # (nor any book of the genre's evaluation pool, which is held out of training)
        reviewed = set(profile.reviewed_asins)

        def usable(g: str, reviewed: set[str] = reviewed) -> int:
            held = {b.parent_asin for b in held_out.books(g)}
            return len(sample_catalog.top_rated(g, 3, exclude=reviewed | held))

        liked = sum(usable(g) for g in genres)
        other = sum(usable(g) for g in distinct)
        assert by_facet["summary"] == liked * other > 0
        summary_asins = {
            a[len("asin:") :] for r in rows if r["facet"] == "summary" for a in provenance[r["pair_id"]]
        }
        assert summary_asins and not summary_asins & reviewed
        # values: all three pool pairs of every non-neutral statement, none of a neutral one
        stance = {v.statement_id: v.stance for v in profile.values}
        non_neutral = [s for s, v in stance.items() if v != profile_pb2.STANCE_NEUTRAL]
        assert by_facet["values"] == 3 * len(non_neutral)
        for r in rows:
            if r["facet"] != "values":
                continue
            sid = provenance[r["pair_id"]][0][len("statement:") :]
            index = int(provenance[r["pair_id"]][1].split("#")[1].split("@")[0])
            scenario = pool.pairs(sid)[index]
            assert stance[sid] != profile_pb2.STANCE_NEUTRAL
            expected = (
                scenario.illustrates if stance[sid] == profile_pb2.STANCE_SUPPORT else scenario.contradicts
            )
            assert r["chosen"] == expected
        # personality: every item of the shipped bank (fewer than 60 per trait), the user's level chosen
        assert by_facet["personality"] == sum(min(60, n) for n in bank_per_trait.values())
        assert all(r["trait"] for r in rows if r["facet"] == "personality")
        assert not any(r["trait"] for r in rows if r["facet"] != "personality")


def test_personality_answers_match_the_users_level(built, sample_profiles) -> None:
    _, out = built
    items = {i.id: i for i in load_builtin(SkipLog())}
    names = {1: "openness", 2: "conscientiousness", 3: "extraversion", 4: "agreeableness", 5: "neuroticism"}
    for profile in sample_profiles[:4]:
        levels = {names[t.trait]: t.level for t in profile.personality.traits}
        path = _shard(out, "gravity", profile.user_id)
        provenance = read_provenance(path)
        for r in _read(path):
            if r["facet"] != "personality":
                continue
            item = items[provenance[r["pair_id"]][0].split(":", 1)[1]]
            high = levels[r["trait"]] == profile_pb2.TRAIT_LEVEL_HIGH
            assert (r["chosen"], r["rejected"]) == (
                (item.high[0], item.low[0]) if high else (item.low[0], item.high[0])
            )
            assert r["prompt"].endswith(item.question)


def test_prompts_follow_table_12(built, sample_profiles) -> None:
    from gravity_core.prompts import gravity_preamble, user_sft_prompt

    _, out = built
    profile = sample_profiles[0]
    preamble = gravity_preamble(profile)
    rows = _read(_shard(out, "gravity", profile.user_id))
    assert all(r["prompt"].startswith(preamble + " ") for r in rows)
    assert "You have the following values:" in preamble and "personality traits:" in preamble
    sft = _read(_shard(out, "user-sft", profile.user_id))
    texts = {r.parent_asin: r.text for r in profile.reviews}
    provenance = read_provenance(_shard(out, "user-sft", profile.user_id))
    for r in sft:
        asin = provenance[r["pair_id"]][0][len("asin:") :]
        assert r["completion"] == texts[asin] and r["facet"] == "user_sft"
        assert r["prompt"].startswith(user_sft_prompt(profile, "", "").split(" You recently")[0])


def test_shards_follow_the_contract_and_load_with_hf_datasets(built, sample_profiles, sample_catalog) -> None:
    import datasets as hf

    _, out = built
    manifest = load_manifest(out)
    for name, entry in manifest.datasets.items():
        paths = verify_shards(out, manifest, name)
        loaded = hf.load_dataset("parquet", data_files=[str(p) for p in paths], split="train")
        assert loaded.num_rows == entry.rows
        assert tuple(loaded.column_names) == (DPO_COLUMNS if entry.kind == "dpo" else SFT_COLUMNS)
        assert len(set(loaded["pair_id"])) == entry.rows  # deduplicated
        assert set(loaded["facet"]) <= set(FACETS)
    gravity, sft = manifest.dataset("gravity"), manifest.dataset("gravity-sft")
    assert gravity.kind == "dpo" and sft.kind == "sft" and sft.rows == gravity.rows
    user = gravity.shards[0].user_id
    chosen = {r["pair_id"]: (r["prompt"], r["chosen"]) for r in _read(out / gravity.shards[0].path)}
    completions = {
        r["pair_id"]: (r["prompt"], r["completion"]) for r in _read(_shard(out, "gravity-sft", user))
    }
    assert completions == chosen  # §4.4: same prompt, completion = the chosen response
    # UserSFT: one example per review whose book has a description in the catalog and is not held out
    held_out = EvaluationPool(sample_catalog, manifest.evaluation)
    described = {
        p.user_id: sum(
            1
            for r in p.reviews
            if (b := sample_catalog.get(r.parent_asin)) and b.description and not held_out.holds(b)
        )
        for p in sample_profiles
    }
    assert {s.user_id: s.rows for s in manifest.dataset("user-sft").shards} == described
    assert min(described.values()) >= 5


def test_the_dataset_card_lets_hf_datasets_load_the_directory_without_arguments(built) -> None:
    import datasets as hf
    from huggingface_hub import DatasetCard

    _, out = built
    manifest = load_manifest(out)
    card = DatasetCard.load(out / "README.md")
    meta = card.data.to_dict()
    # the bundled sample (exported copy), the shipped pool and bank, no generated text: the project's license
    assert meta["license"] == "apache-2.0"
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert set(configs) == set(manifest.datasets) and configs["gravity"].get("default") is True
    assert [c for c in configs.values() if c.get("default")] == [configs["gravity"]]
    for name, config in configs.items():
        assert config["data_files"] == [{"split": "train", "path": f"{name}/*.parquet"}]
    features = {i["config_name"]: [f["name"] for f in i["features"]] for i in meta["dataset_info"]}
    assert features["gravity"] == list(DPO_COLUMNS) and features["user-sft"] == list(SFT_COLUMNS)
    assert "## How it was generated" in card.text and "## Sources and licenses" in card.text

    loaded = hf.load_dataset(str(out))  # no other argument: the card's default config
    assert list(loaded) == ["train"]
    assert loaded["train"].num_rows == manifest.dataset("gravity").rows
    assert tuple(loaded["train"].column_names) == DPO_COLUMNS
    for name in ("gravity-sft", "user-sft", "gravity-no-values"):
        one = hf.load_dataset(str(out), name, split="train")
        entry = manifest.dataset(name)
        assert one.num_rows == entry.rows
        assert tuple(one.column_names) == (DPO_COLUMNS if entry.kind == "dpo" else SFT_COLUMNS)


def test_publish_dataset_to_dir_writes_a_repository_datasets_reads(built, tmp_path: Path) -> None:
    import datasets as hf
    from click.testing import CliRunner

    from gravity_core.cli.main import cli

    _, out = built
    manifest = load_manifest(out)
    repo = tmp_path / "repo"
    result = CliRunner().invoke(
        cli, ["publish", "dataset", str(out), "--repo-id", "org/gravity-pairs", "--to-dir", str(repo)]
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    shards = {s.path for entry in manifest.datasets.values() for s in entry.shards}
    written = {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()}
    assert written == {"README.md", "manifest.json", *shards}
    assert (repo / "README.md").read_bytes() == (out / "README.md").read_bytes()
    assert hf.load_dataset(str(repo), split="train").num_rows == manifest.dataset("gravity").rows


def test_ablations_drop_exactly_their_rows(built) -> None:
    _, out = built
    manifest = load_manifest(out)
    full = manifest.dataset("gravity").counts()
    expectations = {
        "gravity-no-interests": (["category", "summary"], {"category", "summary"}),
        "gravity-no-values": (["values"], {"values"}),
        "gravity-no-personality": (["personality"], {"personality"}),
        "gravity-no-summary": (["summary"], {"summary"}),
    }
    for name, (dropped, facets) in expectations.items():
        entry = manifest.dataset(name)
        assert entry.dropped == dropped and entry.kind == "dpo"
        for user, counts in entry.counts().items():
            assert counts == {f: n for f, n in full[user].items() if f not in facets and n}
    user = manifest.dataset("gravity").shards[0].user_id
    rows = _read(_shard(out, "gravity-no-openness", user))
    assert manifest.dataset("gravity-no-openness").dropped == ["personality:openness"]
    assert "openness" not in {r["trait"] for r in rows}
    assert len(rows) == len(_read(_shard(out, "gravity", user))) - sum(
        1 for r in _read(_shard(out, "gravity", user)) if r["trait"] == "openness"
    )


def test_same_seed_same_bytes_other_seed_other_personality_sample(
    tmp_path, built, sample_profiles, sample_catalog, embedder, make_settings_module
) -> None:
    _, out = built
    profiles = tmp_path / "profiles.jsonl"
    write_jsonl(sample_profiles, profiles)
    settings = make_settings_module()
    again = build_dataset(
        settings,
        PairGenSettings(datasets=DATASETS, ablations=["all"]),
        profiles,
        tmp_path / "again",
        catalog=sample_catalog,
        embedder=embedder,
    )
    first = load_manifest(out)
    assert {n: [s.sha256 for s in e.shards] for n, e in again.manifest.datasets.items()} == {
        n: [s.sha256 for s in e.shards] for n, e in first.datasets.items()
    }
    few = PairGenSettings(datasets=["gravity"], items_per_trait=5)
    a = build_dataset(settings, few, profiles, tmp_path / "a", catalog=sample_catalog, embedder=embedder)
    b = build_dataset(
        settings,
        few.with_overrides(seed=14),
        profiles,
        tmp_path / "b",
        catalog=sample_catalog,
        embedder=embedder,
    )
    assert a.manifest.dataset("gravity").counts() == b.manifest.dataset("gravity").counts()
    user = sample_profiles[0].user_id
    ids = lambda d: {r["pair_id"] for r in _read(_shard(d, "gravity", user)) if r["facet"] == "personality"}  # noqa: E731
    assert len(ids(tmp_path / "a")) == 25 and ids(tmp_path / "a") != ids(tmp_path / "b")


def test_duplicates_and_bad_profiles_are_skipped_and_reported(
    tmp_path, sample_profiles, sample_catalog, embedder, make_settings_module
) -> None:
    good = [profile_pb2.UserProfile() for _ in range(3)]
    for target, source in zip(good, sample_profiles[:3], strict=True):
        target.CopyFrom(source)
    doubled = good[0].values[0]
    good[0].values.append(doubled)  # the same statement twice: its pairs must not repeat
    no_stances = profile_pb2.UserProfile(
        user_id="no-stances", interests=good[1].interests, personality=good[1].personality
    )
    no_traits = profile_pb2.UserProfile(
        user_id="no-traits", interests=good[1].interests, values=good[1].values
    )
    unknown = profile_pb2.UserProfile()
    unknown.CopyFrom(good[2])
    unknown.user_id = "unknown-genre"
    unknown.interests[0].genre = "Underwater Basket Weaving"
    stale = profile_pb2.UserProfile()
    stale.CopyFrom(good[1])
    stale.built_at_ms -= 1000
    lines = [
        to_json(good[0]),
        "{not json",
        to_json(no_stances),
        to_json(good[1]),
        to_json(no_traits),
        to_json(unknown),
        to_json(good[2]),
        to_json(stale),
    ]
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text("\n".join(lines) + "\n")
    report = build_dataset(
        make_settings_module(),
        PairGenSettings(datasets=["gravity"]),
        profiles,
        tmp_path / "out",
        catalog=sample_catalog,
        embedder=embedder,
    )
    assert report.users_built == 3 and report.manifest.cohort_size == 3
    assert report.skips.counts == {
        "malformed_json": 1,
        "no_stances": 1,
        "no_traits": 1,
        "unknown_category": 1,
        "stale_duplicate": 1,
    }
    where = {s.reason: (s.line, s.detail) for s in report.skips.examples}
    assert where["malformed_json"][0] == 2 and where["no_stances"][0] == 3
    assert where["unknown_category"] == (
        6,
        f"profile 'unknown-genre': interest genre 'Underwater Basket Weaving' is not a category of the catalog {sample_catalog.source}",
    )
    assert report.omissions.counts["duplicate_pair_id"] == (
        3 if doubled.stance != profile_pb2.STANCE_NEUTRAL else 0
    )
    rows = _read(_shard(tmp_path / "out", "gravity", good[0].user_id))
    assert len({r["pair_id"] for r in rows}) == len(rows)


def test_empty_catalog_and_unsafe_out_dir_are_clear_errors(
    tmp_path, sample_profiles, embedder, make_settings_module
) -> None:
    profiles = tmp_path / "profiles.jsonl"
    write_jsonl(sample_profiles[:1], profiles)
    empty = Catalog.from_books([])
    with pytest.raises(InvalidInput, match="has no books"):
        build_dataset(
            make_settings_module(),
            PairGenSettings(datasets=["gravity"]),
            profiles,
            tmp_path / "out",
            catalog=empty,
            embedder=embedder,
        )
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    with pytest.raises(InvalidInput, match="not a pairs dataset directory"):
        build_dataset(
            make_settings_module(), PairGenSettings(datasets=["gravity"]), profiles, tmp_path / "busy"
        )
    assert (tmp_path / "busy" / "notes.txt").read_text() == "keep me"


def test_cli_build_prints_a_summary_and_fails_cleanly_on_bad_options(
    tmp_path, sample_profiles, sample_files
) -> None:
    profiles = tmp_path / "profiles.jsonl"
    write_jsonl(sample_profiles[:2], profiles)
    env = {
        "GRAVITY_ARTIFACTS__ROOT": str(tmp_path / "artifacts"),
        "GRAVITY_CACHE__ENABLED": "false",
        "GRAVITY_LOGGING__LEVEL": "WARNING",
    }
    args = [
        "pairs",
        "build",
        "--profiles",
        str(profiles),
        "--meta",
        str(sample_files["meta_Books.jsonl"]),
        "--out",
        str(tmp_path / "out"),
        "--datasets",
        "gravity,user-sft",
        "--ablations",
        "values,openness",
    ]
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "pairs build: 2 users from 2 profiles" in result.output
    assert "gravity-no-openness" in result.output and "nothing skipped" in result.output
    shown = CliRunner().invoke(cli, ["pairs", "show", str(tmp_path / "out")], env=env, catch_exceptions=False)
    assert shown.exit_code == 0 and "checksums verified" in shown.output
    from gravity_core.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main([*args[:-4], "--recipe", "no-everything"])
    assert exit_info.value.code == 2
