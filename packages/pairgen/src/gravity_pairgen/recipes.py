"""Dataset names, recipes and the Table 5 ablations.

A recipe names the facets kept in a GRAVITY dataset: ``full`` keeps everything, ``no-<ablation>`` removes
one group of rows. Ablation datasets are named ``gravity-no-<ablation>``; the manifest records what each
dropped as facets or ``personality:<trait>`` labels.
"""

from __future__ import annotations

from dataclasses import dataclass

GRAVITY = "gravity"
GRAVITY_SFT = "gravity-sft"
USER_SFT = "user-sft"
PREF_ALIGN = "pref-align"
BASE_DATASETS = (GRAVITY, GRAVITY_SFT, USER_SFT, PREF_ALIGN)

CATEGORY = "category"
SUMMARY = "summary"
VALUES = "values"
PERSONALITY = "personality"
PREF_ALIGN_FACET = "pref_align"
USER_SFT_FACET = "user_sft"
GRAVITY_FACETS = (CATEGORY, SUMMARY, VALUES, PERSONALITY)
OCEAN = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")

# ablation -> what it drops: a facet name, or "personality:<trait>" for one trait's rows.
ABLATIONS: dict[str, tuple[str, ...]] = {
    "interests": (CATEGORY, SUMMARY),
    CATEGORY: (CATEGORY,),
    SUMMARY: (SUMMARY,),
    VALUES: (VALUES,),
    PERSONALITY: (PERSONALITY,),
    **{trait: (f"{PERSONALITY}:{trait}",) for trait in OCEAN},
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
        return GRAVITY if self.name == "full" else f"{GRAVITY}-{self.name}"


def _ablation_key(name: str) -> str:
    key = name.strip().lower()
    for prefix in (f"{GRAVITY}-no-", "no-"):
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
    if key in ("", "full"):
        return "full"
    ablation = _ablation_key(key)
    if ablation not in ABLATIONS:
        raise ValueError(
            f"unknown recipe {name!r}; use 'full' or one of {', '.join('no-' + a for a in ABLATIONS)}"
        )
    return f"no-{ablation}"


def recipe(name: str) -> Recipe:
    canonical = normalize_recipe(name)
    if canonical == "full":
        return Recipe("full")
    return Recipe(canonical, ABLATIONS[canonical[len("no-") :]])


def ablation_recipes(ablations: list[str]) -> list[Recipe]:
    return [recipe(f"no-{a}") for a in normalize_ablations(ablations)]
