"""Pair recipes and what each Table 5 ablation removes (the names are gravity_core.names').

A recipe names the facets kept in a GRAVITY dataset: ``full`` keeps everything, ``no-<ablation>`` removes
one group of rows. Ablation datasets are named ``gravity-no-<ablation>``; the manifest records what each
dropped as facets or ``personality:<trait>`` labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from gravity_core.names import (
    ABLATION_PREFIX,
    ABLATION_RECIPE_PREFIX,
    CATEGORY,
    FULL_RECIPE,
    INTERESTS,
    PERSONALITY,
    SUMMARY,
    TRAITS,
    VALUES,
    ablation_recipe,
    dataset_for_recipe,
)

# ablation -> what it drops: a facet name, or "personality:<trait>" for one trait's rows.
ABLATIONS: dict[str, tuple[str, ...]] = {
    INTERESTS: (CATEGORY, SUMMARY),
    CATEGORY: (CATEGORY,),
    SUMMARY: (SUMMARY,),
    VALUES: (VALUES,),
    PERSONALITY: (PERSONALITY,),
    **{trait: (f"{PERSONALITY}:{trait}",) for trait in TRAITS},
}


@dataclass(frozen=True)
class Recipe:
    """Which rows of the full GRAVITY pair set a dataset keeps."""

    name: str
    dropped: tuple[str, ...] = ()

    def keeps(self, facet: str, trait: str) -> bool:
        if not self.dropped:
            return True
        return facet not in self.dropped and f"{facet}:{trait}" not in self.dropped

    def needs(self, facet: str) -> bool:
        """Whether any row of ``facet`` survives (a dropped trait still leaves the other traits)."""
        return facet not in self.dropped

    @property
    def dataset(self) -> str:
        return dataset_for_recipe(self.name)


def _ablation_key(name: str) -> str:
    key = name.strip().lower()
    for prefix in (ABLATION_PREFIX, ABLATION_RECIPE_PREFIX):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def normalize_ablations(names: list[str]) -> list[str]:
    """Canonical ablation keys (accepts "values", "no-values", "gravity-no-values" and "all")."""
    out: list[str] = []
    for name in names:
        key = _ablation_key(str(name))
        if key == "all":
            out.extend(ABLATIONS)
            continue
        if key not in ABLATIONS:
            raise ValueError(f"unknown ablation {name!r}; choose from all, {', '.join(ABLATIONS)}")
        out.append(key)
    return list(dict.fromkeys(out))


def normalize_recipe(name: str) -> str:
    key = name.strip().lower()
    if key in ("", FULL_RECIPE):
        return FULL_RECIPE
    ablation = _ablation_key(key)
    if ablation not in ABLATIONS:
        raise ValueError(
            f"unknown recipe {name!r}; use {FULL_RECIPE!r} or one of {', '.join(map(ablation_recipe, ABLATIONS))}"
        )
    return ablation_recipe(ablation)


def recipe(name: str) -> Recipe:
    canonical = normalize_recipe(name)
    if canonical == FULL_RECIPE:
        return Recipe(FULL_RECIPE)
    return Recipe(canonical, ABLATIONS[canonical[len(ABLATION_RECIPE_PREFIX) :]])


def ablation_recipes(ablations: list[str]) -> list[Recipe]:
    return [recipe(ablation_recipe(a)) for a in normalize_ablations(ablations)]
