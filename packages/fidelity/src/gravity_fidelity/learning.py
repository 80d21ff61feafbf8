"""Learning: does training on GRAVITY pairs make the model follow the profile? (paper §3.3–3.4 measured)

1. The planted **true** profiles become GRAVITY pairs with the pair generator's own library (catalog,
   category index, scenario pool, situational-judgment bank, evaluation books held out as in production).
2. Pairs are split by unit (split.py): held-out statements, books, genres and items make the test pairs.
3. Two adapters are trained with the trainer's ``train`` on the same training pairs: **GRAVITY** (each
   pair with its reader's preamble) and a **control** whose preambles are deranged across readers
   (profile-blind: the labels no longer match the profile shown).
4. Held-out preference accuracy per facet — the share of test pairs where the model's log-probability of
   ``chosen`` exceeds that of ``rejected`` given the prompt — for the base model (no adapter), GRAVITY and
   the control, all on the same test pairs with each reader's own preamble. The GRAVITY − control gap, with
   a paired bootstrap interval, is the evidence that the model uses the profile.

A GRAVITY preamble names at most six statements (the value summary), so most values pairs cannot be
answered from the profile at all; values pairs whose statement the preamble names are reported apart.
"""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gravity_core import names
from gravity_core.adapters import read_adapter_ref
from gravity_core.artifacts import ArtifactStore
from gravity_core.config import Settings
from gravity_core.datasets import MANIFEST, DatasetEntry, DatasetManifest, manifest_bytes, manifest_sha256
from gravity_core.errors import InvalidInput
from gravity_core.prompts import gravity_preamble
from gravity_core.skips import RecordError, SkipLog
from gravity_fidelity.split import (
    choose_hold_out,
    derangement,
    seeded_rng,
    split_pairs,
    swap_preamble,
)
from gravity_fidelity.truth import ReaderTruth, truth_digest, truth_profile
from gravity_judge.stats import estimate, resample_indices
from gravity_pairgen.rows import Pair

FACET_GROUP = {
    names.CATEGORY: names.INTERESTS,
    names.SUMMARY: names.INTERESTS,
    names.VALUES: names.VALUES,
    names.PERSONALITY: names.PERSONALITY,
}
FACETS = (names.INTERESTS, names.VALUES, names.PERSONALITY)
NAMED = "values (stance named in the profile)"
# The groups held-out pairs are sampled and reported by.
GROUPS = (names.INTERESTS, names.VALUES, NAMED, names.PERSONALITY)
CONTROL = "control"
MODELS = ("base", names.GRAVITY, CONTROL)
VARIANTS = (names.GRAVITY, CONTROL)
BOOTSTRAP = 1000


@dataclass(frozen=True)
class LearningOptions:
    steps: int = 40
    batch_size: int = 4
    learning_rate: float = 2e-4
    max_length: int = 384
    lora_r: int = 8
    hold_out: float = 0.25
    # Test pairs scored per facet (a seeded sample, spread over readers); values pairs whose statement the
    # preamble names are all scored besides.
    eval_pairs: int = 48
    items_per_trait: int = 60
    seed: int = 13
    # Recipe overrides (--set key=value, dotted keys): they win over the small defaults above.
    overrides: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.steps < 1:
            raise InvalidInput("--steps", "must be at least 1")
        if self.batch_size < 1:
            raise InvalidInput("--batch-size", "must be at least 1")
        if not 0.0 < self.hold_out < 1.0:
            raise InvalidInput("--hold-out", "must be between 0 and 1")
        if self.eval_pairs < 1:
            raise InvalidInput("--eval-pairs", "must be at least 1")

    def recipe_overrides(self) -> dict[str, Any]:
        """Small CPU settings for the two runs; ``overrides`` (--set) win."""
        return {
            "max_steps": self.steps,
            "per_device_train_batch_size": self.batch_size,
            "gradient_accumulation_steps": 1,
            "learning_rate": self.learning_rate,
            "max_length": self.max_length,
            "lora.r": self.lora_r,
            "lora.alpha": 2 * self.lora_r,
            "evaluations": 1,
            "max_eval_rows": 8,
            "seed": self.seed,
            **self.overrides,
        }


@dataclass(frozen=True)
class EvalPair:
    user_id: str
    facet: str  # interests | values | personality
    pair: Pair
    # values pairs: the statement is one the reader's value summary (and so the preamble) names
    named: bool = False


@dataclass
class FacetAccuracy:
    """One facet's held-out pairs under the three models.

    ``margins[model]`` is log P(chosen) − log P(rejected) per pair (NaN when the backend gave no
    log-probabilities or the pair was unusable): **accuracy** is the share with a positive margin. The
    **implicit-reward accuracy** of an adapter is the share where it moved the margin up from the base
    model's — DPO's own reward, β·(margin_adapter − margin_base) > 0 — which shows learning before the
    absolute preference flips."""

    facet: str
    n: int
    margins: dict[str, np.ndarray]

    def correct(self, model: str) -> np.ndarray:
        m = self.margins[model]
        return np.where(np.isnan(m), np.nan, (m > 0).astype(float))

    def rewarded(self, model: str) -> np.ndarray:
        d = self.margins[model] - self.margins["base"]
        return np.where(np.isnan(d), np.nan, (d > 0).astype(float))

    def accuracy(self, model: str) -> float | None:
        return _mean(self.correct(model))

    def _gap(self, a: np.ndarray, b: np.ndarray, seed: int) -> dict[str, float | None]:
        diff = a - b
        est = estimate(diff, resample_indices(diff.size, BOOTSTRAP, seed))
        return {"value": _r(est.value), "ci_low": _r(est.low), "ci_high": _r(est.high)}

    def to_dict(self, seed: int) -> dict[str, object]:
        return {
            "n": self.n,
            "unscored": int(np.isnan(self.margins["base"]).sum()),
            **{m: _r(self.accuracy(m)) for m in MODELS},
            "gap": self._gap(self.correct(names.GRAVITY), self.correct(CONTROL), seed),
            "mean_margin": {m: _r(_mean(self.margins[m])) for m in MODELS},
            "implicit_reward_accuracy": {
                **{v: _r(_mean(self.rewarded(v))) for v in VARIANTS},
                "gap": self._gap(self.rewarded(names.GRAVITY), self.rewarded(CONTROL), seed),
            },
        }


def _mean(values: np.ndarray) -> float | None:
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else None


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


@dataclass
class LearningReport:
    base_model: str
    readers: int
    pairs: dict[str, dict[str, int]]
    hold_out: dict[str, int]
    training: dict[str, dict[str, object]]
    accuracy: list[FacetAccuracy]
    derangement: dict[str, str]
    options: dict[str, Any]
    seed: int
    seconds: dict[str, float] = field(default_factory=dict)
    # Every scored test pair: who, which facet, and its margin under each model (for audits and re-analysis).
    scored: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "base_model": self.base_model,
            "readers": self.readers,
            "pairs": self.pairs,
            "hold_out": self.hold_out,
            "training": self.training,
            "accuracy": {a.facet: a.to_dict(self.seed) for a in self.accuracy},
            "control_derangement": self.derangement,
            "options": self.options,
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
            "scored": self.scored,
        }


# ------------------------------------------------------------------ pairs
def build_truth_pairs(
    settings: Settings,
    truths: Sequence[ReaderTruth],
    meta: Path,
    items_per_trait: int,
    seed: int,
    cohort_id: str,
) -> tuple[dict[str, list[Pair]], dict[str, list[str]], dict[str, str]]:
    """(rows per reader, evaluation books per reader, preamble per reader) from the true profiles, built by the
    pair generator's library exactly as its batch command builds the ``gravity`` dataset."""
    from gravity_pairgen.builder import PairBuilder, plan_datasets
    from gravity_pairgen.resources import load_resources
    from gravity_pairgen.settings import PairGenSettings

    cfg = PairGenSettings(
        datasets=[names.GRAVITY], meta=str(meta), items_per_trait=items_per_trait, seed=seed
    )
    plans = plan_datasets(cfg)
    skips = SkipLog()
    resources = load_resources(settings, cfg, plans, skips)
    builder = PairBuilder(resources, cfg, plans)
    rows: dict[str, list[Pair]] = {}
    held: dict[str, list[str]] = {}
    preambles: dict[str, str] = {}
    for truth in truths:
        profile = truth_profile(truth, cohort_id)
        try:
            build = builder.finish(builder.build(profile))
        except RecordError as exc:
            raise InvalidInput(
                "--truth", f"reader {truth.user_id}: no GRAVITY pairs ({exc.reason}: {exc.detail})"
            ) from None
        rows[truth.user_id] = build.rows.get(names.GRAVITY, [])
        held[truth.user_id] = list(build.held_out)
        preambles[truth.user_id] = gravity_preamble(profile)
    resources.catalog.close()
    return rows, held, preambles


def write_pairs_dir(
    out: Path,
    rows: dict[str, list[Pair]],
    held_out_books: dict[str, list[str]],
    settings: Settings,
    cohort_id: str,
    seed: int,
) -> str:
    """A pairs directory the trainer reads (manifest + one ``gravity`` shard per reader); returns the
    manifest's checksum."""
    from gravity_pairgen.shards import write_shard

    if out.exists():
        shutil.rmtree(out)
    store = ArtifactStore(out)
    entry = DatasetEntry(kind="dpo")
    for user in sorted(rows):
        if rows[user]:
            shard, _ = write_shard(
                store,
                "",
                names.GRAVITY,
                user,
                "dpo",
                rows[user],
                {f"{names.GRAVITY}.seed": str(seed)},
                durable=False,
            )
            entry.shards.append(shard)
    manifest = DatasetManifest(
        cohort_id=cohort_id,
        cohort_size=len(rows),
        seed=seed,
        base_model=settings.llm.role("writer").model,
        datasets={names.GRAVITY: entry},
        evaluation=settings.evaluation,
        held_out={u: list(b) for u, b in sorted(held_out_books.items())},
    )
    store.write_bytes(MANIFEST, manifest_bytes(manifest))
    return manifest_sha256(manifest)


def fits(prompts: Sequence[str], count_tokens: Callable[[str], int], max_length: int) -> list[bool]:
    """Whether each prompt leaves room for an answer within ``max_length`` (48 tokens for the chat template
    and the start of the answer): a pair either adapter's trainer would skip is dropped from both."""
    return [count_tokens(p) + 48 < max_length for p in prompts]


# ------------------------------------------------------------------ evaluation
def sample_eval_pairs(
    test: Sequence[Pair], owners: dict[str, str], named: dict[str, set[str]], per_facet: int, seed: int
) -> list[EvalPair]:
    """Up to ``per_facet`` test pairs of each group — interests, values whose statement the preamble does
    not name, values whose statement it names, personality — taken round-robin over readers in a seeded
    order."""
    rng = seeded_rng(seed, "eval-sample")

    def group(pair: Pair) -> str:
        facet = FACET_GROUP[pair.facet]
        user = owners[pair.pair_id]
        if facet == names.VALUES and any(
            p.removeprefix("statement:") in named[user] for p in pair.provenance
        ):
            return NAMED
        return facet

    by_group: dict[str, dict[str, list[Pair]]] = defaultdict(lambda: defaultdict(list))
    for pair in test:
        by_group[group(pair)][owners[pair.pair_id]].append(pair)
    chosen: list[EvalPair] = []
    for name in GROUPS:
        queues = {u: rng.sample(ps, len(ps)) for u, ps in sorted(by_group.get(name, {}).items())}
        taken = 0
        while taken < per_facet and any(queues.values()):
            for user in sorted(queues):
                if queues[user] and taken < per_facet:
                    facet = names.VALUES if name == NAMED else name
                    chosen.append(EvalPair(user, facet, queues[user].pop(), name == NAMED))
                    taken += 1
    return chosen


Progress = Callable[[Iterable, int | None, str], Iterable]


def _no_progress(items: Iterable, total: int | None, desc: str) -> Iterable:
    return items


def preference_margins(
    llm: Any,
    pairs: Sequence[EvalPair],
    adapter: str | None,
    progress: Progress = _no_progress,
    desc: str = "scoring",
) -> np.ndarray:
    """log P(chosen | prompt) − log P(rejected | prompt) per pair under the model (with ``adapter``); NaN
    where the scores are unusable or carry no log-probabilities.

    Both answers are scored as the assistant turn after the chat-formatted prompt (the trainer's format)."""
    out = np.full(len(pairs), np.nan)
    for k, ep in enumerate(progress(pairs, len(pairs), desc)):
        scores = llm.score_choices_shared_prefix(
            [{"role": "user", "content": ep.pair.prompt}],
            [""],
            [ep.pair.chosen, ep.pair.rejected],
            adapter=adapter,
        )[0]
        if scores.usable and len(scores.logprobs) == 2:
            out[k] = scores.logprobs[0] - scores.logprobs[1]
    return out


def scored_records(pairs: Sequence[EvalPair], margins: dict[str, np.ndarray]) -> list[dict[str, object]]:
    return [
        {
            "pair_id": e.pair.pair_id,
            "user_id": e.user_id,
            "facet": e.facet,
            "named": e.named,
            "margin": {
                m: None if np.isnan(margins[m][k]) else round(float(margins[m][k]), 4) for m in MODELS
            },
        }
        for k, e in enumerate(pairs)
    ]


def facet_accuracies(pairs: Sequence[EvalPair], margins: dict[str, np.ndarray]) -> list[FacetAccuracy]:
    groups: list[tuple[str, Callable[[EvalPair], bool]]] = [
        (names.INTERESTS, lambda e: e.facet == names.INTERESTS),
        (names.VALUES, lambda e: e.facet == names.VALUES and not e.named),
        (NAMED, lambda e: e.facet == names.VALUES and e.named),
        (names.PERSONALITY, lambda e: e.facet == names.PERSONALITY),
    ]
    out = []
    for name, keep in groups:
        mask = np.array([keep(e) for e in pairs], dtype=bool)
        out.append(FacetAccuracy(name, int(mask.sum()), {m: margins[m][mask] for m in MODELS}))
    return out


# ------------------------------------------------------------------ the whole step
def run_learning(
    settings: Settings,
    truths: Sequence[ReaderTruth],
    meta: Path,
    out: Path,
    options: LearningOptions,
    echo: Callable[[str], None],
    progress: Progress = _no_progress,
) -> LearningReport:
    """Pairs from the truth, the held-out split, two adapters, and preference accuracy of three models."""
    options.check()
    if len(truths) < 2:
        raise InvalidInput("--truth", "the profile-blind control needs at least two planted readers")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    cohort = f"fidelity-{truth_digest(truths)}"
    echo(f"building GRAVITY pairs from {len(truths)} true profiles (pair generator library)")
    rows, eval_books, preambles = build_truth_pairs(
        settings, truths, meta, options.items_per_trait, options.seed, cohort
    )
    all_pairs = [p for user in sorted(rows) for p in rows[user]]
    owners = {p.pair_id: user for user in rows for p in rows[user]}
    hold = choose_hold_out(all_pairs, options.hold_out, options.seed)
    partner = derangement(list(rows), options.seed)

    from gravity_core.llm import make_llm

    # Uncached: held-out scoring is the measurement, and the margins need each choice's log-probability,
    # which response-cache entries written before ChoiceScores carried them do not have.
    llm = make_llm(settings.llm.role("writer"))
    train_rows: dict[str, dict[str, list[Pair]]] = {v: {} for v in VARIANTS}
    test: list[Pair] = []
    dropped = 0
    for user in sorted(rows):
        train, held = split_pairs(rows[user], hold)
        test += held
        control = [swap_preamble(p, preambles[user], preambles[partner[user]]) for p in train]
        keep = [
            a and b
            for a, b in zip(
                fits([p.prompt for p in train], llm.count_tokens, options.max_length),
                fits([p.prompt for p in control], llm.count_tokens, options.max_length),
                strict=True,
            )
        ]
        dropped += keep.count(False)
        train_rows[names.GRAVITY][user] = [p for p, k in zip(train, keep, strict=True) if k]
        train_rows[CONTROL][user] = [p for p, k in zip(control, keep, strict=True) if k]
    seconds["pairs"] = time.perf_counter() - started

    named = {t.user_id: set(t.summary_statements) for t in truths}
    eval_pairs = sample_eval_pairs(test, owners, named, options.eval_pairs, options.seed)
    pair_counts = _pair_counts(
        all_pairs, [p for u in train_rows[names.GRAVITY].values() for p in u], test, eval_pairs, dropped
    )
    echo(
        f"pairs: {len(all_pairs)} in all, {pair_counts['train']['all']} train, {len(test)} test "
        f"(held out: {hold.count('statement:')} statements, {hold.count('asin:')} books, {hold.count('genre:')} genres, "
        f"{hold.items} items); scoring {len(eval_pairs)} test pairs"
    )

    training: dict[str, dict[str, object]] = {}
    adapters: dict[str, Path] = {}
    for variant in VARIANTS:
        t0 = time.perf_counter()
        pairs_dir = out / "pairs" / variant
        sha = write_pairs_dir(
            pairs_dir, train_rows[variant], eval_books, settings, f"{cohort}-{variant}", options.seed
        )
        adapter_dir = adapter_path(out, variant)
        _clear_stale_adapter(adapter_dir, sha)
        echo(f"training the {variant} adapter ({options.steps} steps of {options.batch_size} pairs)")
        outcome = _train(settings, pairs_dir, adapter_dir, options, echo)
        adapters[variant] = adapter_dir
        seconds[f"train {variant}"] = time.perf_counter() - t0
        training[variant] = {
            "adapter": outcome.ref.adapter_id,
            "steps": outcome.ref.steps,
            "train_rows": outcome.ref.train_rows,
            "eval_rows": outcome.ref.eval_rows,
            "metrics": {k: round(v, 4) for k, v in sorted(outcome.ref.metrics.items())},
            "reused": outcome.already_done,
            "seconds": round(seconds[f"train {variant}"], 1),
        }

    t0 = time.perf_counter()
    margins: dict[str, np.ndarray] = {}
    loaded = {v: f"fidelity-{v}" for v in VARIANTS}
    for variant, path in adapters.items():
        llm.load_adapter(loaded[variant], str(path))
    try:
        for model in MODELS:
            margins[model] = preference_margins(
                llm, eval_pairs, loaded.get(model), progress, f"scoring ({model})"
            )
            echo(f"scored {len(eval_pairs)} test pairs with the {model} model")
    finally:
        for name in loaded.values():
            llm.unload_adapter(name)
    seconds["scoring"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started
    return LearningReport(
        base_model=settings.llm.role("writer").model,
        readers=len(truths),
        pairs=pair_counts,
        hold_out={
            "fraction": options.hold_out,  # type: ignore[dict-item]
            "statements": hold.count("statement:"),
            "books": hold.count("asin:"),
            "genres": hold.count("genre:"),
            "items": hold.items,
        },
        training=training,
        accuracy=facet_accuracies(eval_pairs, margins),
        derangement=partner,
        options={k: v for k, v in options.__dict__.items()},
        seed=options.seed,
        seconds=seconds,
        scored=scored_records(eval_pairs, margins),
    )


def _pair_counts(
    all_pairs: Sequence[Pair],
    train: Sequence[Pair],
    test: Sequence[Pair],
    scored: Sequence[EvalPair],
    dropped: int,
) -> dict[str, dict[str, int]]:
    def by_facet(pairs: Sequence[Pair]) -> dict[str, int]:
        counts: dict[str, int] = {"all": len(pairs)}
        for p in pairs:
            counts[FACET_GROUP[p.facet]] = counts.get(FACET_GROUP[p.facet], 0) + 1
        return counts

    scored_counts: dict[str, int] = {"all": len(scored)}
    for e in scored:
        scored_counts[e.facet] = scored_counts.get(e.facet, 0) + 1
    return {
        "built": by_facet(all_pairs),
        "train": by_facet(train),
        "test": by_facet(test),
        "scored": scored_counts,
        "dropped_too_long": {"all": dropped},
    }


def adapter_path(learning_dir: Path, variant: str) -> Path:
    """Where :func:`run_learning` writing into ``learning_dir`` puts the ``variant`` adapter."""
    return learning_dir / "adapters" / variant


def _clear_stale_adapter(adapter_dir: Path, manifest_sha: str) -> None:
    """An adapter left by a run on other pairs is ours to replace (a rerun on the same pairs reuses it)."""
    if not adapter_dir.exists():
        return
    try:
        same = read_adapter_ref(adapter_dir).dataset_manifest_sha256 == manifest_sha
    except Exception:
        same = False
    if not same:
        shutil.rmtree(adapter_dir)


def _train(
    settings: Settings, pairs_dir: Path, out: Path, options: LearningOptions, echo: Callable[[str], None]
) -> Any:
    from gravity_trainer.progress import Reporter
    from gravity_trainer.run import TrainRequest, train

    request = TrainRequest(
        pairs=pairs_dir,
        recipe=names.GRAVITY_DPO_RECIPE,
        out=out,
        base_model=settings.llm.role("writer").model,
        dataset=names.GRAVITY,
        overrides=options.recipe_overrides(),
    )
    return train(request, Reporter([lambda e: echo("      " + e.line())]))
