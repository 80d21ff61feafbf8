"""Recovery: does the profiler read planted readers correctly? (paper §3.2 measured against a known truth)

The real profiler (its batch path, :func:`gravity_profiler.batch.build_profiles`) profiles the planted
reviews once per annotator — the embedded default, and the configured ``[llm.annotator]`` when it is another
model — and each set of profiles is scored against the truth:

* stances on the **expressed** statements against their true stance, and on the **unexpressed** ones against
  neutral (nothing in the reviews speaks to them), each with majority-class and uniform-random baselines on
  the same items; unreadable answers count as wrong and are shown apart;
* Big Five levels of the expressed traits (UNKNOWN counts as wrong, shown apart), with both baselines;
* genres: precision and recall of the profile's interests against the planted favourite genres;
* demographics the profiler had to estimate (left out of demographics.csv), per field and pooled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gravity.v1 import profile_pb2
from gravity_core.amazon import AGE_GROUPS
from gravity_core.config import LLMEndpoint, Settings
from gravity_core.errors import NotFound
from gravity_core.proto_io import read_jsonl
from gravity_core.skips import SkipLog
from gravity_fidelity.metrics import Comparison, SetRecovery, compare, set_recovery
from gravity_fidelity.phrasing import DEMOGRAPHIC_FIELDS, STANCES
from gravity_fidelity.plant import DEMOGRAPHICS_FILE, GENDERS, REVIEWS_FILE
from gravity_fidelity.truth import TRAITS, ReaderTruth, read_manifest
from gravity_profiler.settings import ProfilerSettings, profiler_settings

STANCE_LABEL = {
    profile_pb2.STANCE_SUPPORT: "support",
    profile_pb2.STANCE_OPPOSE: "oppose",
    profile_pb2.STANCE_NEUTRAL: "neutral",
    profile_pb2.STANCE_UNREADABLE: "unreadable",
}
LEVEL_LABEL = {profile_pb2.TRAIT_LEVEL_HIGH: "high", profile_pb2.TRAIT_LEVEL_LOW: "low"}
TRAIT_OF_NAME = {
    "openness": profile_pb2.TRAIT_OPENNESS,
    "conscientiousness": profile_pb2.TRAIT_CONSCIENTIOUSNESS,
    "extraversion": profile_pb2.TRAIT_EXTRAVERSION,
    "agreeableness": profile_pb2.TRAIT_AGREEABLENESS,
    "neuroticism": profile_pb2.TRAIT_NEUROTICISM,
}
LEVELS = ("high", "low")


@dataclass
class Recovery:
    """One annotator's profiles of the planted readers, scored against the truth."""

    model: str
    readers: int
    stances_expressed: Comparison
    stances_unexpressed: Comparison
    traits: Comparison
    genres: SetRecovery
    demographics: dict[str, Comparison]
    unreadable_stances: int = 0
    unknown_traits: int = 0
    unreadable_items: int = 0
    missing_profiles: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def demographics_pooled(self) -> dict[str, float | int | None]:
        """Accuracy over every withheld field, beside the baselines' (each field's own labels)."""
        n = sum(c.model.n for c in self.demographics.values())
        if not n:
            return {"n": 0, "accuracy": None, "majority": None, "random": None}

        def pooled(pick: Callable[[Comparison], float | None]) -> float:
            return round(sum((pick(c) or 0.0) * c.model.n for c in self.demographics.values()) / n, 4)

        return {
            "n": n,
            "accuracy": pooled(lambda c: c.model.accuracy),
            "majority": pooled(lambda c: c.majority.accuracy),
            "random": pooled(lambda c: c.random.accuracy),
            "unknown": sum(c.model.invalid for c in self.demographics.values()),
        }

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "readers": self.readers,
            "missing_profiles": self.missing_profiles,
            "stances_expressed": self.stances_expressed.to_dict(),
            "stances_unexpressed": self.stances_unexpressed.to_dict(),
            "unreadable_stances": self.unreadable_stances,
            "traits": self.traits.to_dict(),
            "unknown_traits": self.unknown_traits,
            "unreadable_items": self.unreadable_items,
            "genres": self.genres.to_dict(),
            "demographics": {f: c.to_dict() for f, c in self.demographics.items()},
            "demographics_pooled": self.demographics_pooled,
            "seconds": round(self.seconds, 1),
        }


def score_profiles(
    model: str,
    truths: Sequence[ReaderTruth],
    profiles: Iterable[profile_pb2.UserProfile],
    countries: Sequence[str],
    seed: int = 0,
) -> Recovery:
    """Score ``profiles`` against ``truths`` (a reader without a profile is listed, not scored)."""
    by_user = {p.user_id: p for p in profiles}
    present = [t for t in truths if t.user_id in by_user]
    exp_truth: list[str] = []
    exp_pred: list[str] = []
    unexp_pred: list[str] = []
    trait_truth: list[str] = []
    trait_pred: list[str] = []
    demo: dict[str, tuple[list[str], list[str]]] = {f: ([], []) for f in DEMOGRAPHIC_FIELDS}
    unreadable = unknown = unreadable_items = 0
    for truth in present:
        profile = by_user[truth.user_id]
        predicted = {v.statement_id: STANCE_LABEL.get(v.stance, "missing") for v in profile.values}
        expressed = set(truth.expressed.statements)
        for sid in truth.stances:
            label = predicted.get(sid, "missing")
            unreadable += label == "unreadable"
            if sid in expressed:
                exp_truth.append(truth.stances[sid])
                exp_pred.append(label)
            else:
                unexp_pred.append(label)
        levels = {t.trait: t.level for t in profile.personality.traits}
        for trait in TRAITS:
            if not truth.expressed.traits.get(trait):
                continue
            level = levels.get(TRAIT_OF_NAME[trait], profile_pb2.TRAIT_LEVEL_UNSPECIFIED)
            unknown += level == profile_pb2.TRAIT_LEVEL_UNKNOWN
            trait_truth.append(truth.traits[trait])
            trait_pred.append(LEVEL_LABEL.get(level, "unknown"))
        unreadable_items += profile.evidence.unreadable_items
        for f in truth.withheld:
            value = getattr(profile.demographics, f).value.strip()
            demo[f][0].append(truth.demographics.value(f))
            demo[f][1].append(value or "unknown")
    labels = {"age_group": list(AGE_GROUPS), "gender": list(GENDERS), "country": list(countries)}
    return Recovery(
        model=model,
        readers=len(present),
        stances_expressed=compare(exp_truth, exp_pred, STANCES, seed),
        stances_unexpressed=compare(["neutral"] * len(unexp_pred), unexp_pred, STANCES, seed),
        traits=compare(trait_truth, trait_pred, LEVELS, seed),
        genres=set_recovery(
            [set(t.genres) for t in present],
            [{i.genre for i in by_user[t.user_id].interests} for t in present],
        ),
        demographics={
            f: compare(truth_values, pred, labels[f], seed)
            for f, (truth_values, pred) in demo.items()
            if truth_values
        },
        unreadable_stances=unreadable,
        unknown_traits=unknown,
        unreadable_items=unreadable_items,
        missing_profiles=[t.user_id for t in truths if t.user_id not in by_user],
    )


# ------------------------------------------------------------------ running the profiler
EMBEDDED = LLMEndpoint()


def endpoint_label(endpoint: LLMEndpoint) -> str:
    return f"{endpoint.backend}:{endpoint.model}"


def role_variants(settings: Settings, roles: Sequence[str]) -> list[tuple[str, Settings]]:
    """The settings to run a stage with: the embedded default for ``roles``, then the configured endpoint of
    ``roles[0]`` when it is another model (all of ``roles`` then use it, as configured)."""
    configured = settings.llm.role(roles[0])
    embedded = settings.model_copy(
        update={"llm": settings.llm.model_copy(update=dict.fromkeys(roles, _embedded_like(configured)))}
    )
    out = [(endpoint_label(EMBEDDED), embedded)]
    if (configured.backend, configured.model) != (EMBEDDED.backend, EMBEDDED.model):
        out.append((endpoint_label(configured), settings))
    return out


def _embedded_like(configured: LLMEndpoint) -> LLMEndpoint:
    """The embedded default; when the configured role is embedded already, exactly it (same device, batch)."""
    if configured.backend == EMBEDDED.backend and configured.model == EMBEDDED.model:
        return configured
    return LLMEndpoint()


SUMMARY_TOKENS = 32


def profiler_config(settings: Settings, summary_tokens: int | None = SUMMARY_TOKENS) -> ProfilerSettings:
    """The configured profiler, asked to profile every planted reader (they are few by design). Recovery
    scores no summary, so by default their generation budget is cut to ``summary_tokens`` (the embedded
    model spends most of a profile's time writing them); None keeps the configured budget."""
    update: dict[str, object] = {"min_reviews": 1}
    if summary_tokens is not None:
        update["summary_max_tokens"] = summary_tokens
    return ProfilerSettings.model_validate({**profiler_settings(settings).model_dump(), **update})


def run_profiler(
    settings: Settings,
    truth_dir: Path,
    out: Path,
    progress: Callable[[Iterable, int | None, str], Iterable] | None = None,
    summary_tokens: int | None = SUMMARY_TOKENS,
) -> tuple[list[profile_pb2.UserProfile], float, object]:
    """Profile the planted readers with the real batch path; returns (profiles, seconds, batch report)."""
    from gravity_profiler.batch import build_profiles
    from gravity_profiler.builder import ProfileBuilder

    meta = meta_file(truth_dir)
    config = profiler_config(settings, summary_tokens)
    builder = ProfileBuilder(settings, config)
    started = time.perf_counter()
    report = build_profiles(
        builder,
        truth_dir / REVIEWS_FILE,
        meta,
        out,
        truth_dir / DEMOGRAPHICS_FILE,
        min_reviews=config.min_reviews,
        cohort_id=f"fidelity-{read_manifest(truth_dir).seed}",
        progress=progress or (lambda items, _total, _desc: items),
    )
    seconds = time.perf_counter() - started
    profiles = [p for _, p in read_jsonl(out, profile_pb2.UserProfile, SkipLog())]
    return profiles, seconds, report


def meta_file(truth_dir: Path) -> Path:
    """The catalog a planted directory's reviews refer to."""
    for name in ("meta_Books.jsonl", "meta_Books.jsonl.gz"):
        if (truth_dir / name).is_file():
            return truth_dir / name
    raise NotFound(
        "--truth", f"{truth_dir} has no meta_Books.jsonl (plant readers first: gravity fidelity plant)"
    )
