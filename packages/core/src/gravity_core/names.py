"""The project's shared names, written once: generation methods, pair datasets and recipes, facets, ablations.

Methods are the rows of the paper's Table 2 (the original description, five prompt baselines, UserSFT,
PrefAlign and GRAVITY), GRAVITY (SFT) of §4.4 and the Table 5 ablations (GRAVITY trained with one group of
pairs removed). Facets are the parts of a profile a pair teaches (§3.3). Every package imports these constants
instead of writing a name; a test fails on a name literal anywhere else in ``packages/*/src``.

On the wire a method is the ``gravity.v1.Method`` enum plus a ``method_variant`` string, set only for an
ablation (the pair recipe, ``"no-values"``) and for a caller's own method (``METHOD_CUSTOM``, judged when
listed in ``judge.extra_methods``). :func:`method_fields` and :func:`method_name` convert at the boundary;
inside a process a method is its name. A facet is ``gravity.v1.Facet`` in a message, its name in a Parquet
column or a map key. Dataset ids (``<cohort>/<dataset>``) stay strings: they are ids and artifact-store paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from gravity.v1 import common_pb2, pairs_pb2
from gravity_core.errors import InvalidInput
from gravity_core.prompts import TRAIT_NAMES

# ---------------------------------------------------------------------------------------------- methods
ORIGINAL = "original"
BASE_REWRITE = "base-rewrite"
DEMO_BASED = "demo-based"
USER_SUMMARY = "user-summary"
LAMP = "lamp"
TRI_AGENT = "tri-agent"
USER_SFT = "user-sft"
PREF_ALIGN = "pref-align"
GRAVITY = "gravity"
GRAVITY_SFT = "gravity-sft"

# ------------------------------------------------------------------------------ trainer recipes (defaults)
GRAVITY_DPO_RECIPE = "gravity-dpo"
GRAVITY_SFT_RECIPE = GRAVITY_SFT
USER_SFT_RECIPE = USER_SFT
PREF_ALIGN_RECIPE = PREF_ALIGN

# ------------------------------------------------------------------------------------------------ facets
CATEGORY = "category"
SUMMARY = "summary"
VALUES = "values"
PERSONALITY = "personality"
PREF_ALIGN_FACET = "pref_align"
USER_SFT_FACET = "user_sft"
GRAVITY_FACETS = (CATEGORY, SUMMARY, VALUES, PERSONALITY)
# The `facet` column of every pair dataset: the four GRAVITY facets, then the baselines' rows.
FACETS = (*GRAVITY_FACETS, PREF_ALIGN_FACET, USER_SFT_FACET)
_FACET_WIRE = {
    CATEGORY: pairs_pb2.FACET_CATEGORY,
    SUMMARY: pairs_pb2.FACET_SUMMARY,
    VALUES: pairs_pb2.FACET_VALUES,
    PERSONALITY: pairs_pb2.FACET_PERSONALITY,
    PREF_ALIGN_FACET: pairs_pb2.FACET_PREF_ALIGN,
    USER_SFT_FACET: pairs_pb2.FACET_USER_SFT,
}

# --------------------------------------------------------------------------------- ablations (Table 5)
INTERESTS = "interests"  # category and summary together: the paper's "User Interests"
# The Big Five traits in OCEAN order, as pair rows name them (the `trait` column).
TRAITS = tuple(name.lower() for name in TRAIT_NAMES.values())
# What an ablation can remove: the interests, one facet, or one trait's personality rows.
ABLATIONS = (INTERESTS, *GRAVITY_FACETS, *TRAITS)
ABLATION_DISPLAY = {
    INTERESTS: "User Interests",
    CATEGORY: "Category",
    SUMMARY: "Summary",
    VALUES: "Values & Beliefs",
    PERSONALITY: "Personality",
    **{name.lower(): name for name in TRAIT_NAMES.values()},
}
# Pair recipes: the facets a GRAVITY dataset keeps. "full" keeps all; "no-<ablation>" removes one group.
FULL_RECIPE = "full"
ABLATION_RECIPE_PREFIX = "no-"
ABLATION_PREFIX = f"{GRAVITY}-{ABLATION_RECIPE_PREFIX}"

# How a method's text is made: the book's own description, a prompt to the writer, or the writer with an adapter.
Kind = Literal["original", "prompt", "adapter"]
# Where the judge reports it: the reference, a Table 2 row (ranked together), or a variant of GRAVITY (§4.4 and
# Table 5, compared with GRAVITY).
Role = Literal["original", "main", "ablation"]


@dataclass(frozen=True)
class MethodSpec:
    """One method: its wire value, Table 2 name, how it is made and reported, and what trains its adapter."""

    name: str
    wire: common_pb2.Method
    display: str
    kind: Kind
    role: Role
    description: str
    # Adapter methods: the trainer recipe that trains the adapter by default (on the dataset of the same name).
    recipe: str = ""

    @property
    def dataset(self) -> str:
        """The pair dataset the adapter trains on: named like the method (empty for methods without one)."""
        return self.name if self.kind == "adapter" else ""


# Table 2 order, the original first and GRAVITY (SFT) last.
METHODS: dict[str, MethodSpec] = {
    s.name: s
    for s in (
        MethodSpec(
            ORIGINAL,
            common_pb2.METHOD_ORIGINAL,
            "Original",
            "original",
            "original",
            "The book's own description, unchanged (no model call).",
        ),
        MethodSpec(
            BASE_REWRITE,
            common_pb2.METHOD_BASE_REWRITE,
            "BaseRewrite",
            "prompt",
            "main",
            "BaseRewrite: rewrite the description to be more engaging, without personalization.",
        ),
        MethodSpec(
            DEMO_BASED,
            common_pb2.METHOD_DEMO_BASED,
            "DemoBased",
            "prompt",
            "main",
            "DemoBased: the rewrite request prefixed with the reader's age group, gender and country.",
        ),
        MethodSpec(
            USER_SUMMARY,
            common_pb2.METHOD_USER_SUMMARY,
            "UserSummary",
            "prompt",
            "main",
            "UserSummary: the rewrite request conditioned on a summary of the reader's reviews.",
        ),
        MethodSpec(
            LAMP,
            common_pb2.METHOD_LAMP,
            "LaMP",
            "prompt",
            "main",
            "LaMP: the reader's reviews of the 5 most similar books they read (MiniLM + FAISS) prepended.",
        ),
        MethodSpec(
            TRI_AGENT,
            common_pb2.METHOD_TRI_AGENT,
            "TriAgent",
            "prompt",
            "main",
            "TriAgent: rewrite, then edit suggestions from the user summary (author), then a final rewrite.",
        ),
        MethodSpec(
            USER_SFT,
            common_pb2.METHOD_USER_SFT,
            "UserSFT",
            "adapter",
            "main",
            "UserSFT: the writer with the adapter fine-tuned on (description -> the reader's review).",
            USER_SFT_RECIPE,
        ),
        MethodSpec(
            PREF_ALIGN,
            common_pb2.METHOD_PREF_ALIGN,
            "PrefAlign",
            "adapter",
            "main",
            "PrefAlign: the writer with the DPO adapter on demographics-only aligned descriptions.",
            PREF_ALIGN_RECIPE,
        ),
        MethodSpec(
            GRAVITY,
            common_pb2.METHOD_GRAVITY,
            "GRAVITY",
            "adapter",
            "main",
            "GRAVITY: the writer with the DPO adapter on profile-grounded synthetic preferences.",
            GRAVITY_DPO_RECIPE,
        ),
        MethodSpec(
            GRAVITY_SFT,
            common_pb2.METHOD_GRAVITY_SFT,
            "GRAVITY (SFT)",
            "adapter",
            "ablation",
            "GRAVITY (SFT): the writer fine-tuned on the chosen side of GRAVITY's pairs (paper §4.4).",
            GRAVITY_SFT_RECIPE,
        ),
    )
}
# The paper's Table 2 rows after the original, in its order.
TABLE2 = tuple(name for name, s in METHODS.items() if s.role == "main")
# Methods made without an adapter (the original makes no model call at all), in Table 2 order.
WITHOUT_ADAPTER = tuple(name for name, s in METHODS.items() if s.kind != "adapter")
# The datasets pairgen can build besides ablations; each trains the adapter method of the same name.
DATASETS = (GRAVITY, GRAVITY_SFT, USER_SFT, PREF_ALIGN)
# Which trainer recipe consumes which dataset by default (ablation datasets take GRAVITY's).
RECIPE_FOR_DATASET = {name: METHODS[name].recipe for name in DATASETS}
_BY_WIRE: dict[int, MethodSpec] = {s.wire: s for s in METHODS.values()}
_WIRE_NAME = common_pb2.Method.Name


def spec(name: str) -> MethodSpec | None:
    """The named method's spec; None for ablations and methods outside the list."""
    return METHODS.get(name)


def role_of(name: str) -> Role | None:
    """Where the judge reports ``name``; None for a method outside the list (a caller's own)."""
    if name in METHODS:
        return METHODS[name].role
    return "ablation" if is_ablation(name) else None


# ---------------------------------------------------------------------------------------------- ablations
def ablation_method(removed: str, field: str = "ablation") -> str:
    """``"values"`` -> ``"gravity-no-values"`` (also the name of the dataset it trains on)."""
    _check_ablation(removed, field)
    return f"{ABLATION_PREFIX}{removed}"


def ablation_recipe(removed: str) -> str:
    """``"values"`` -> ``"no-values"``: the pair recipe, and the ablation's method_variant on the wire."""
    _check_ablation(removed, "ablation")
    return f"{ABLATION_RECIPE_PREFIX}{removed}"


def dataset_for_recipe(recipe: str) -> str:
    """The GRAVITY dataset a pair recipe writes: ``"full"`` -> ``"gravity"``, ``"no-values"`` ->
    ``"gravity-no-values"``."""
    if recipe == FULL_RECIPE:
        return GRAVITY
    if not recipe.startswith(ABLATION_RECIPE_PREFIX):
        raise InvalidInput("recipe", f"unknown recipe {recipe!r}: {FULL_RECIPE!r} or 'no-<ablation>'")
    return ablation_method(recipe[len(ABLATION_RECIPE_PREFIX) :], "recipe")


def ablation_removed(name: str, field: str = "method") -> str | None:
    """What an ablation (``gravity-no-values``, a method and dataset name) removes; None for other names. A
    name of that form removing something unknown raises InvalidInput naming ``field``."""
    if not name.startswith(ABLATION_PREFIX):
        return None
    removed = name[len(ABLATION_PREFIX) :]
    _check_ablation(removed, field, name)
    return removed


def is_ablation(name: str) -> bool:
    return name.startswith(ABLATION_PREFIX) and name[len(ABLATION_PREFIX) :] in ABLATIONS


def _check_ablation(removed: str, field: str, name: str | None = None) -> None:
    if removed not in ABLATIONS:
        raise InvalidInput(
            field,
            f"unknown ablation {name or removed!r}: an ablation removes one of {', '.join(ABLATIONS)}",
        )


# --------------------------------------------------------------------------------------------- names
def display_name(name: str) -> str:
    """Table 2 / Table 5 name: ``"gravity"`` -> ``"GRAVITY"``, ``"gravity-no-values"`` -> ``"GRAVITY − Values &
    Beliefs"``; a caller's own method keeps its name."""
    if name in METHODS:
        return METHODS[name].display
    if is_ablation(name):
        return f"{METHODS[GRAVITY].display} − {ABLATION_DISPLAY[name[len(ABLATION_PREFIX) :]]}"
    return name


def parse_method(name: str, field: str = "method") -> str:
    """``name`` when it is a named method or a known ablation; otherwise InvalidInput naming ``field``."""
    key = name.strip()
    if key in METHODS or is_ablation(key):
        return key
    if not key:
        raise InvalidInput(field, "is required")
    ablation_removed(key, field)  # a malformed ablation says what it may remove
    raise InvalidInput(
        field,
        f"unknown method {key!r}; choose from {', '.join(METHODS)} or {ABLATION_PREFIX}<{'|'.join(ABLATIONS)}>",
    )


# ----------------------------------------------------------------------------------------------- the wire
def method_to_wire(name: str | int, field: str = "method") -> tuple[common_pb2.Method, str]:
    """(enum value, method_variant) for a method name, or for an enum value given directly.

    A name that is neither a method nor an ablation becomes METHOD_CUSTOM with the name as its variant: the
    receiver decides whether it knows it (the generator answers NOT_FOUND, the judge consults
    judge.extra_methods). An empty name is METHOD_UNSPECIFIED, which receivers refuse as missing.
    """
    if isinstance(name, int):
        if name not in common_pb2.Method.values():
            raise InvalidInput(field, f"{name} is not a gravity.v1.Method value")
        if name in (common_pb2.METHOD_GRAVITY_ABLATION, common_pb2.METHOD_CUSTOM):
            raise InvalidInput(field, f"{_WIRE_NAME(name)} needs a name: give the method's name instead")
        return cast("common_pb2.Method", name), ""
    key = name.strip()
    if not key:
        return common_pb2.METHOD_UNSPECIFIED, ""
    if key in METHODS:
        return METHODS[key].wire, ""
    removed = ablation_removed(key, field)
    if removed is not None:
        return common_pb2.METHOD_GRAVITY_ABLATION, f"{ABLATION_RECIPE_PREFIX}{removed}"
    return common_pb2.METHOD_CUSTOM, key


def method_from_wire(value: int, variant: str = "", field: str = "method", required: bool = True) -> str:
    """The method's name from (enum value, method_variant); InvalidInput naming the field when they do not
    make one. METHOD_UNSPECIFIED is "" when not ``required``."""
    variant_field = f"{field}_variant"
    variant = variant.strip()
    if value == common_pb2.METHOD_UNSPECIFIED:
        if required:
            raise InvalidInput(field, "is required")
        return ""
    if value in _BY_WIRE:
        if variant:
            raise InvalidInput(variant_field, f"must be empty for {_WIRE_NAME(value)}, got {variant!r}")
        return _BY_WIRE[value].name
    if value == common_pb2.METHOD_GRAVITY_ABLATION:
        if not variant.startswith(ABLATION_RECIPE_PREFIX):
            raise InvalidInput(
                variant_field,
                f"METHOD_GRAVITY_ABLATION needs the pair recipe, e.g. 'no-values'; got {variant!r}",
            )
        removed = variant[len(ABLATION_RECIPE_PREFIX) :]
        _check_ablation(removed, variant_field, variant)
        return f"{ABLATION_PREFIX}{removed}"
    if value == common_pb2.METHOD_CUSTOM:
        if not variant:
            raise InvalidInput(variant_field, "METHOD_CUSTOM needs the method's name")
        if variant in METHODS or variant.startswith(ABLATION_PREFIX):
            raise InvalidInput(
                variant_field, f"{variant!r} is a named method or an ablation, not METHOD_CUSTOM"
            )
        return variant
    raise InvalidInput(field, f"{value} is not a gravity.v1.Method value")


def method_fields(name: str | int, field: str = "method") -> dict[str, Any]:
    """Keyword arguments setting a message's ``method`` and ``method_variant``:
    ``judge_pb2.Generation(user_id=..., **method_fields("gravity-no-values"))``."""
    value, variant = method_to_wire(name, field)
    return {"method": value, "method_variant": variant}


def method_name(message: Any, field: str = "method", required: bool = True) -> str:
    """The method a message (PersonalizeRequest/Response, MethodInfo, Generation, AdapterRef) carries."""
    return method_from_wire(message.method, message.method_variant, field, required)


# ------------------------------------------------------------------------------------------------- facets
def facet_to_wire(name: str, field: str = "facet") -> pairs_pb2.Facet:
    if name not in _FACET_WIRE:
        raise InvalidInput(field, f"unknown facet {name!r}; choose from {', '.join(FACETS)}")
    return _FACET_WIRE[name]


def facet_from_wire(value: int, field: str = "facet") -> str:
    for name, wire in _FACET_WIRE.items():
        if wire == value:
            return name
    raise InvalidInput(
        field, f"{value} is not a known gravity.v1.Facet (UNSPECIFIED or newer than this code)"
    )
