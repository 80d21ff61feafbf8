"""One user's rows for every planned dataset, from their profile and the shared resources.

The builder checks a profile before using it: a profile without a user id, stances or trait levels, with no
interests or an interest that is not a catalog category, or an empty catalog, is rejected with a
:class:`~gravity_core.skips.RecordError` naming the user and the problem. Everything else about a user
that cannot become a row (a neutral stance, a review of an unknown book) is counted in ``omissions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gravity.v1 import profile_pb2
from gravity_core.amazon import BookRecord
from gravity_core.catalog import Catalog
from gravity_core.datasets import DatasetEntry, books_of
from gravity_core.names import (
    CATEGORY,
    FULL_RECIPE,
    GRAVITY,
    GRAVITY_FACETS,
    GRAVITY_SFT,
    PERSONALITY,
    PREF_ALIGN,
    SUMMARY,
    USER_SFT,
    VALUES,
)
from gravity_core.prompts import gravity_preamble
from gravity_core.skips import RecordError
from gravity_core.targets import EvaluationPool
from gravity_core.values import SeedStatement
from gravity_pairgen.banks import PersonalityBank
from gravity_pairgen.baselines import PrefAlignJob, pref_align_books, reviewed_asins, user_sft_rows
from gravity_pairgen.facets import category_pairs, personality_pairs, summary_pairs, user_genres, values_pairs
from gravity_pairgen.interests import BookRanker, CategoryIndex
from gravity_pairgen.recipes import Recipe, ablation_recipes, recipe
from gravity_pairgen.rows import Omissions, Pair, dedupe
from gravity_pairgen.scenarios import ScenarioPool
from gravity_pairgen.settings import PairGenSettings

FULL = Recipe(FULL_RECIPE)


@dataclass(frozen=True)
class DatasetPlan:
    """One dataset to write: its name, kind, and where its rows come from."""

    name: str
    kind: str  # "dpo" | "sft"
    source: str  # gravity | gravity-sft | user-sft | pref-align
    recipe: Recipe = FULL

    def entry(self) -> DatasetEntry:
        return DatasetEntry(kind=self.kind, dropped=list(self.recipe.dropped))


def plan_datasets(cfg: PairGenSettings, recipe_name: str | None = None) -> list[DatasetPlan]:
    """The datasets a configuration builds. With ``recipe_name`` (a BuildPairs request for a recipe other
    than the configured one) only that recipe's GRAVITY dataset, ``gravity-<recipe>``, is built."""
    if recipe_name is not None:
        r = recipe(recipe_name)
        return [DatasetPlan(r.dataset, "dpo", GRAVITY, r)]
    main = recipe(cfg.recipe)
    plans = []
    for name in cfg.datasets:
        if name == GRAVITY:
            plans.append(DatasetPlan(GRAVITY, "dpo", GRAVITY, main))
        elif name == GRAVITY_SFT:
            plans.append(DatasetPlan(GRAVITY_SFT, "sft", GRAVITY_SFT, main))
        elif name == USER_SFT:
            plans.append(DatasetPlan(USER_SFT, "sft", USER_SFT))
        elif name == PREF_ALIGN:
            plans.append(DatasetPlan(PREF_ALIGN, "dpo", PREF_ALIGN))
    plans += [DatasetPlan(r.dataset, "dpo", GRAVITY, r) for r in ablation_recipes(cfg.ablations)]
    return list({p.name: p for p in plans}.values())


def needed_facets(plans: list[DatasetPlan]) -> set[str]:
    """GRAVITY facets any GRAVITY-derived plan keeps rows of."""
    recipes = [p.recipe for p in plans if p.source in (GRAVITY, GRAVITY_SFT)]
    return {f for f in GRAVITY_FACETS if any(r.needs(f) for r in recipes)}


@dataclass
class Resources:
    """What every user's build reads: catalog, category index, scenario pool, personality bank."""

    catalog: Catalog
    ranker: BookRanker
    # The books held out for evaluation (the ranker excludes them too).
    evaluation: EvaluationPool
    categories: CategoryIndex | None
    pool: ScenarioPool | None
    bank: PersonalityBank | None
    statements: dict[str, SeedStatement]
    catalog_size: int = 0

    @property
    def catalog_source(self) -> str:
        return self.catalog.source or "<memory>"


@dataclass
class UserBuild:
    profile: profile_pb2.UserProfile
    rows: dict[str, list[Pair]] = field(default_factory=dict)
    omissions: Omissions = field(default_factory=Omissions)
    pref_align: PrefAlignJob | None = None
    # The reader's evaluation books (parent_asins, in evaluation order), chosen before any pair is built.
    held_out: list[str] = field(default_factory=list)

    @property
    def user_id(self) -> str:
        return self.profile.user_id


class PairBuilder:
    def __init__(self, resources: Resources, cfg: PairGenSettings, plans: list[DatasetPlan]) -> None:
        self.res = resources
        self.cfg = cfg
        self.plans = plans
        self.facets = needed_facets(plans)
        self.needs_catalog = bool(self.facets & {CATEGORY, SUMMARY}) or any(
            p.source in (USER_SFT, PREF_ALIGN) for p in plans
        )

    # -------------------------------------------------------------- checking
    def check(self, profile: profile_pb2.UserProfile) -> list[str]:
        """Raise RecordError when the profile cannot be used; returns the user's genres."""
        if not profile.user_id.strip():
            raise RecordError("missing_user_id", "profile has no user_id")
        who = f"profile {profile.user_id!r}"
        if self.needs_catalog and not self.res.catalog_size:
            raise RecordError("empty_catalog", f"{who}: the catalog {self.res.catalog_source} has no books")
        genres = user_genres(profile, self.cfg.max_user_genres)
        if self.facets & {CATEGORY, SUMMARY}:
            if not genres:
                raise RecordError("no_interests", f"{who} has no interests (genres)")
            assert self.res.categories is not None
            unknown = [g for g in genres if g not in self.res.categories]
            if unknown:
                raise RecordError(
                    "unknown_category",
                    f"{who}: interest genre {unknown[0]!r} is not a category of the catalog {self.res.catalog_source}",
                )
        if VALUES in self.facets and not profile.values:
            raise RecordError("no_stances", f"{who} has no value stances")
        if PERSONALITY in self.facets and not any(
            t.level != profile_pb2.TRAIT_LEVEL_UNSPECIFIED for t in profile.personality.traits
        ):
            raise RecordError("no_traits", f"{who} has no personality trait levels")
        return genres

    # -------------------------------------------------------------- building
    def build(self, profile: profile_pb2.UserProfile) -> UserBuild:
        """Every planned dataset's rows except PrefAlign's, which wait for :meth:`PrefAlignGenerator.run`."""
        genres = self.check(profile)
        out = UserBuild(profile, held_out=[b.parent_asin for b in self.res.evaluation.targets(profile)])
        if not out.held_out:
            out.omissions.add("no_evaluation_books")
        sources = {p.source for p in self.plans}
        if sources & {GRAVITY, GRAVITY_SFT}:
            full = dedupe(self._gravity_pairs(profile, genres, out.omissions), out.omissions)
            for plan in self.plans:
                if plan.source == GRAVITY:
                    out.rows[plan.name] = [p for p in full if plan.recipe.keeps(p.facet, p.trait)]
                elif plan.source == GRAVITY_SFT:
                    out.rows[plan.name] = [
                        Pair(p.pair_id, p.facet, p.trait, p.prompt, p.chosen, "", p.provenance)
                        for p in full
                        if plan.recipe.keeps(p.facet, p.trait)
                    ]
        if sources & {USER_SFT, PREF_ALIGN}:
            books = self._reviewed_books(profile, out.omissions)
            if USER_SFT in sources:
                rows = user_sft_rows(profile, books, self.cfg.description_max_chars, out.omissions)
                out.rows[USER_SFT] = dedupe(rows, out.omissions, dpo=False)
            if PREF_ALIGN in sources:
                out.pref_align = self._pref_align_job(profile, books, genres)
        return out

    def pref_align_job(self, profile: profile_pb2.UserProfile) -> PrefAlignJob | None:
        """The PrefAlign books :meth:`build` would give ``profile``, without building its other rows (to
        generate several users' descriptions ahead, in one batch); None when no plan is PrefAlign."""
        if not any(p.source == PREF_ALIGN for p in self.plans):
            return None
        genres = self.check(profile)
        return self._pref_align_job(profile, self._reviewed_books(profile, Omissions()), genres)

    def _reviewed_books(
        self, profile: profile_pb2.UserProfile, omissions: Omissions
    ) -> dict[str, BookRecord]:
        """The user's reviewed books in the catalog, less those held out for evaluation (counted)."""
        books = self.res.catalog.get_many(reviewed_asins(profile))
        held = [a for a, b in books.items() if self.res.evaluation.holds(b)]
        omissions.add("reviewed_book_held_out", len(held))
        for asin in held:
            del books[asin]
        return books

    def _pref_align_job(
        self, profile: profile_pb2.UserProfile, books: dict[str, BookRecord], genres: list[str]
    ) -> PrefAlignJob:
        chosen = pref_align_books(
            profile,
            books,
            self.res.ranker,
            genres,
            self.cfg.pref_align_min_books,
            self.cfg.pref_align_max_books,
        )
        return PrefAlignJob(profile, chosen)

    def finish(self, build: UserBuild) -> UserBuild:
        """Move generated PrefAlign pairs into the build's rows, then refuse the build (RecordError, nothing
        written) if any row would use a book held out for evaluation."""
        if build.pref_align is not None:
            build.rows[PREF_ALIGN] = dedupe(build.pref_align.pairs, build.omissions)
        refuse_held_out(build, self.res.evaluation)
        return build

    def _gravity_pairs(
        self, profile: profile_pb2.UserProfile, genres: list[str], omissions: Omissions
    ) -> list[Pair]:
        cfg, res = self.cfg, self.res
        preamble = gravity_preamble(profile)
        pairs: list[Pair] = []
        if self.facets & {CATEGORY, SUMMARY}:
            assert res.categories is not None
            distinct = res.categories.distinct(genres[0], cfg.distinct_categories, exclude=genres)
            if CATEGORY in self.facets:
                pairs += category_pairs(profile.user_id, preamble, genres, distinct)
            if SUMMARY in self.facets:
                reviewed = set(reviewed_asins(profile))
                pairs += summary_pairs(
                    profile.user_id,
                    preamble,
                    genres,
                    distinct,
                    res.ranker,
                    reviewed,
                    cfg.books_per_genre,
                    cfg.description_max_chars,
                    omissions,
                )
        if VALUES in self.facets:
            assert res.pool is not None
            pairs += values_pairs(
                profile, preamble, res.pool, res.statements, cfg.pairs_per_statement, omissions
            )
        if PERSONALITY in self.facets:
            assert res.bank is not None
            pairs += personality_pairs(profile, preamble, res.bank, cfg.items_per_trait, cfg.seed, omissions)
        return pairs


def refuse_held_out(build: UserBuild, evaluation: EvaluationPool) -> None:
    """RecordError("held_out_book") when a row of any dataset was built from an evaluation book.

    The builder never picks one, so this guards the invariant rather than filtering: a hit means the catalog
    or the code changed under us, and training on it would make the evaluation unfair.
    """
    for dataset, rows in build.rows.items():
        for pair in rows:
            for asins in books_of({pair.pair_id: list(pair.provenance)}).values():
                held = sorted(a for a in asins if evaluation.holds_asin(a))
                if held:
                    raise RecordError(
                        "held_out_book",
                        f"profile {build.user_id!r}: a {dataset} row ({pair.facet}, pair {pair.pair_id}) uses "
                        f"{held[0]}, a book held out for evaluation; no shard was written",
                    )
