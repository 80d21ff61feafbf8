"""Loading what every build shares: the catalog, the category index, the scenario pool, the item bank."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gravity_core.artifacts import ArtifactStore
from gravity_core.catalog import Catalog
from gravity_core.config import Settings
from gravity_core.embeddings import Embedder
from gravity_core.logging import get_logger
from gravity_core.names import CATEGORY, PERSONALITY, SUMMARY, VALUES
from gravity_core.sample import sample_dir
from gravity_core.skips import SkipLog
from gravity_core.targets import EvaluationPool
from gravity_core.values import load_seed_statements
from gravity_pairgen.banks import PersonalityBank
from gravity_pairgen.builder import DatasetPlan, Resources, needed_facets
from gravity_pairgen.interests import BookRanker, CategoryIndex
from gravity_pairgen.scenarios import load_pool, top_up_pool
from gravity_pairgen.settings import PairGenSettings

log = get_logger(__name__)


def catalog_path(cfg: PairGenSettings) -> Path:
    """The configured metadata file, or the bundled sample's."""
    return Path(cfg.meta).expanduser() if cfg.meta else sample_dir() / "meta_Books.jsonl"


def load_resources(
    settings: Settings,
    cfg: PairGenSettings,
    plans: list[DatasetPlan],
    skips: SkipLog,
    catalog: Catalog | None = None,
    embedder: Embedder | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> Resources:
    """Everything ``plans`` need (and nothing more: no embedder when no interest facet is built)."""
    say = on_progress or (lambda _msg: None)
    facets = needed_facets(plans)
    if catalog is None:
        path = catalog_path(cfg)
        say(f"indexing catalog {path}")
        catalog = Catalog.open(path, skips)
    size = len(catalog)
    categories = None
    if facets & {CATEGORY, SUMMARY} and size:
        genres = catalog.genres()
        say(f"embedding {len(genres)} categories")
        categories = CategoryIndex.build(genres, embedder or Embedder(settings.embedding))
    statements = load_seed_statements()
    pool = None
    if VALUES in facets:
        pool = load_pool(cfg.scenario_pool or None, statements, skips)
        if cfg.generate_scenarios:
            from gravity_core.llm import llm_for_role

            pool = top_up_pool(
                pool,
                list(statements),
                llm_for_role(settings, "author"),
                ArtifactStore.from_settings(settings),
                cfg.pairs_per_statement,
                cfg.scenario_max_tokens,
                on_progress=say,
            )
    bank = None
    if PERSONALITY in facets:
        bank = PersonalityBank.load(skips, cfg.builtin_sjt, cfg.trait_files, cfg.big5chat_files)
    log.info(
        "pairgen_resources",
        catalog=catalog.source,
        books=size,
        categories=len(categories) if categories else 0,
        pool_version=pool.version if pool else None,
        pool_pairs=len(pool) if pool else 0,
        bank_items=bank.size if bank else 0,
    )
    evaluation = EvaluationPool(catalog, settings.evaluation)
    return Resources(
        catalog=catalog,
        ranker=BookRanker(catalog, evaluation),
        evaluation=evaluation,
        categories=categories,
        pool=pool,
        bank=bank,
        statements={s.id: s for s in statements},
        catalog_size=size,
    )
