"""The dataset card (README.md) of a pairs directory, in the Hugging Face Hub's format.

Its YAML front matter declares one ``configs`` entry per dataset (``gravity`` the default) with a ``train``
split whose ``data_files`` glob matches the shard layout (``<dataset>/*.parquet``), and each config's features,
so ``datasets.load_dataset(DIR)`` — or ``load_dataset("ORG/NAME")`` once published with ``gravity publish
dataset`` — reads the shards with no other argument. The body says how the pairs were generated (paper §3.3,
appendix B) and under which terms their sources are.

Written whenever shards are written: by ``gravity pairs build`` into its staged directory, and by the service
next to each cohort's manifest, under the cohort's lock (both through gravity_core.files' atomic writers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from gravity_core import names
from gravity_core.artifacts import ArtifactStore, sha256_file
from gravity_core.config import Settings
from gravity_core.datasets import DPO_COLUMNS, PROVENANCE_KEY, SFT_COLUMNS, DatasetManifest
from gravity_core.llm.models import hub_model_id, hub_model_license
from gravity_core.sample import sample_dir
from gravity_pairgen.settings import PairGenSettings

CARD = "README.md"
SPLIT = "train"
_PROJECT_LICENSE = "apache-2.0"
_PAPER = "GRAVITY: personalized text generation from profile-grounded synthetic preferences (Dey et al.)"
_COLUMN_MEANING = {
    "pair_id": "stable id of the pair (BLAKE2b of user, facet and provenance ids)",
    "user_id": "the reader the pair was built for",
    "facet": "category, summary, values, personality, pref_align or user_sft",
    "trait": "the OCEAN trait of a personality pair, else empty",
    "prompt": "the user turn as plain text (the trainer applies the model's chat template)",
    "chosen": "the response matching the reader",
    "rejected": "the response that does not",
    "completion": "the target response (SFT)",
}
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


@dataclass(frozen=True)
class Source:
    """One input the pairs are built from, and its terms."""

    name: str
    terms: str
    project_owned: bool  # written for this project (Apache-2.0 with it)


@dataclass(frozen=True)
class CardSources:
    """What a build read, for the card's provenance and license."""

    sources: tuple[Source, ...]
    author_model: str = ""  # the LLM that wrote PrefAlign descriptions or scenario top-ups ("" when none)
    generated: tuple[str, ...] = field(default_factory=tuple)  # what that LLM wrote

    @property
    def license(self) -> str:
        owned = all(s.project_owned for s in self.sources)
        if self.generated:
            owned = owned and hub_model_license(hub_model_id(self.author_model)) == _PROJECT_LICENSE
        return _PROJECT_LICENSE if owned else "other"

    @classmethod
    def of_build(
        cls, settings: Settings, cfg: PairGenSettings, catalog: str, datasets: list[str]
    ) -> CardSources:
        """The sources of a build of ``datasets`` with ``cfg`` over the catalog file ``catalog``."""
        sources: list[Source] = []
        sample = _is_sample(catalog)
        if sample:
            sources.append(
                Source(
                    "the bundled sample catalog and reviews (gravity-core, invented for this project)",
                    "Apache-2.0",
                    True,
                )
            )
        else:
            sources.append(
                Source(
                    f"book metadata `{Path(catalog).name}` (Amazon Reviews 2023 format: titles, descriptions, "
                    "categories)",
                    "the terms of that file's source (Amazon Reviews 2023: McAuley Lab, for research use)",
                    False,
                )
            )
            if names.USER_SFT in datasets:
                sources.append(
                    Source(
                        "the readers' own reviews (UserSFT completions), carried in their profiles",
                        "the terms of the reviews file the profiler read",
                        False,
                    )
                )
        sources.append(
            Source(
                "the 150 seed value statements (Hofstede, Schwartz, WVS-style; gravity-core)",
                "Apache-2.0",
                True,
            )
        )
        if cfg.scenario_pool:
            sources.append(
                Source(f"scenario pool `{Path(cfg.scenario_pool).name}`", "the terms of that file", False)
            )
        else:
            sources.append(
                Source("the shipped scenario pool (450 pairs written for this project)", "Apache-2.0", True)
            )
        if cfg.builtin_sjt:
            sources.append(Source("the shipped situational-judgment bank (187 items)", "Apache-2.0", True))
        for path in cfg.trait_files:
            sources.append(Source(f"TRAIT items `{Path(path).name}`", "the TRAIT dataset's license", False))
        for path in cfg.big5chat_files:
            sources.append(
                Source(f"Big5Chat items `{Path(path).name}`", "the Big5Chat dataset's license", False)
            )
        generated = []
        if names.PREF_ALIGN in datasets:
            generated.append("PrefAlign's aligned and misaligned descriptions")
        if cfg.generate_scenarios:
            generated.append("scenario pairs topping the pool up")
        author = settings.llm.role("author").model if generated else ""
        return cls(tuple(sources), author, tuple(generated))


def _is_sample(catalog: str) -> bool:
    """The bundled sample catalog, or a copy of it (``gravity sample export``): same size, same bytes."""
    bundled = sample_dir() / "meta_Books.jsonl"
    path = Path(catalog)
    try:
        if path.resolve() == bundled.resolve():
            return True
        # the size first: a real catalog (gigabytes) is never hashed
        return path.stat().st_size == bundled.stat().st_size and sha256_file(path) == sha256_file(bundled)
    except OSError:
        return False


def _size_category(rows: int) -> str:
    return next((label for limit, label in _SIZES if rows < limit), "n>1M")


def _columns(kind: str) -> tuple[str, ...]:
    return DPO_COLUMNS if kind == "dpo" else SFT_COLUMNS


def front_matter(manifest: DatasetManifest, sources: CardSources) -> dict[str, Any]:
    """The card's metadata: license, configs (one per dataset with shards) and their features."""
    present = [name for name, entry in manifest.datasets.items() if entry.shards]
    ordered = sorted(present, key=lambda n: (n != names.GRAVITY, n))
    configs, infos = [], []
    for i, name in enumerate(ordered):
        config: dict[str, Any] = {"config_name": name}
        if i == 0:
            config["default"] = True
        config["data_files"] = [{"split": SPLIT, "path": f"{name}/*.parquet"}]
        configs.append(config)
        infos.append(
            {
                "config_name": name,
                "features": [{"name": c, "dtype": "string"} for c in _columns(manifest.datasets[name].kind)],
            }
        )
    meta: dict[str, Any] = {"license": sources.license}
    if sources.license == "other":
        meta["license_name"] = "multiple-sources"
    kinds = {manifest.datasets[n].kind for n in ordered}
    meta.update(
        pretty_name=f"GRAVITY preference pairs ({manifest.cohort_id or 'unnamed cohort'})",
        language=["en"],
        task_categories=["text-generation"],
        tags=["gravity", "personalization", "synthetic", "preference", *sorted(kinds)],
        size_categories=[_size_category(sum(manifest.datasets[n].rows for n in ordered))],
        configs=configs,
        dataset_info=infos,
    )
    return meta


def render_dataset_card(manifest: DatasetManifest, sources: CardSources) -> str:
    meta = front_matter(manifest, sources)
    ordered = [c["config_name"] for c in meta["configs"]]
    created = (
        datetime.fromtimestamp(manifest.created_at_ms / 1000, UTC).isoformat(timespec="seconds")
        if manifest.created_at_ms
        else "unknown"
    )
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip("\n"),
        "---",
        "",
        f"# GRAVITY preference pairs: cohort `{manifest.cohort_id or 'unnamed'}`",
        "",
        f"Synthetic preference data for personalized book descriptions — {_PAPER}. Each reader's profile "
        "(demographics, interests, values, Big Five personality) becomes chosen/rejected pairs over their "
        "interests, values and personality (paper §3.3, appendix B); baselines' training data sits alongside.",
        "",
        "| config | kind | readers | rows | rows per facet |",
        "|---|---|---|---|---|",
    ]
    for name in ordered:
        entry = manifest.datasets[name]
        facets: dict[str, int] = {}
        for shard in entry.shards:
            for facet, n in shard.counts_by_facet.items():
                facets[facet] = facets.get(facet, 0) + n
        per_facet = ", ".join(f"{k} {v}" for k, v in sorted(facets.items()))
        dropped = f" (without {', '.join(entry.dropped)})" if entry.dropped else ""
        lines.append(
            f"| `{name}`{' (default)' if name == ordered[0] else ''} | {entry.kind.upper()}{dropped} | "
            f"{len(entry.shards)} | {entry.rows} | {per_facet} |"
        )
    lines += [
        "",
        "## Load",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'pairs = load_dataset("path/to/this/directory")  # or "ORG/NAME" on the Hub; config "{ordered[0]}"',
        *[f'other = load_dataset("path/to/this/directory", "{n}")  # any config above' for n in ordered[1:2]],
        "```",
        "",
        f"Every config has one split, `{SPLIT}`: the GRAVITY trainer holds pairs out itself (a pair is held out "
        "when the SHA-256 of its `pair_id` falls below the recipe's `eval_fraction`), and each reader's "
        "evaluation books are held out of every row before any pair is built (`held_out` in `manifest.json`).",
        "",
        "## Columns",
        "",
        "| column | meaning |",
        "|---|---|",
        *[f"| `{c}` | {_COLUMN_MEANING[c]} |" for c in dict.fromkeys((*DPO_COLUMNS, *SFT_COLUMNS))],
        "",
        "DPO configs have `chosen` and `rejected`, SFT configs `completion`. Each shard's Parquet metadata maps "
        f"pair ids to the ids they were built from under `{PROVENANCE_KEY.decode()}` (books `asin:…`, genres, "
        "statements, scenarios, personality items).",
        "",
        "## How it was generated",
        "",
        f"`gravity pairs build` or the pairgen service (GRAVITY), recipe `{manifest.recipe}`, seed "
        f"{manifest.seed}, for base model `{_model_name(manifest.base_model)}`, created {created}. One shard per "
        "(config, reader): `<config>/<reader>.parquet`; `manifest.json` lists every shard with its SHA-256.",
        "",
        "* **Interests**: the reader's genres against the catalog categories least similar to them "
        "(all-MiniLM-L6-v2), and highly rated books of each.",
        "* **Values**: role-play scenarios illustrating or contradicting the seed statements the reader "
        "supports or opposes.",
        "* **Personality**: situational-judgment items answered as the reader's trait level would.",
    ]
    if sources.generated:
        lines.append(
            f"* **Generated text**: {', '.join(sources.generated)}, written by "
            f"`{_model_name(sources.author_model)}`."
        )
    lines += [
        "",
        "## Sources and licenses",
        "",
        *[f"* {s.name}: {s.terms}." for s in sources.sources],
    ]
    if sources.generated:
        lines.append(
            f"* Text generated by `{_model_name(sources.author_model)}`: that model's terms for its outputs."
        )
    lines += [
        "",
        f"The card's `license` is `{sources.license}`"
        + (
            ": every source is this project's own (Apache-2.0)."
            if sources.license == _PROJECT_LICENSE
            else ": the pairs carry text from the sources above, each under its own terms."
        ),
        "",
    ]
    return "\n".join(lines)


def _model_name(model: str) -> str:
    """A model as the card may name it: its Hub id when known, else its last path part (no local paths)."""
    return hub_model_id(model) or Path(model).name or model


def write_dataset_card(
    store: ArtifactStore, rel_dir: str, manifest: DatasetManifest, sources: CardSources, durable: bool = True
) -> None:
    """README.md next to the manifest, atomically (ArtifactStore.write_bytes). A build that wrote no shard (every
    reader refused) gets no card: there is nothing for `load_dataset` to read, and a card would claim otherwise."""
    if not any(entry.shards for entry in manifest.datasets.values()):
        return
    rel = f"{rel_dir}/{CARD}" if rel_dir else CARD
    store.write_bytes(rel, render_dataset_card(manifest, sources).encode("utf-8"), durable=durable)
