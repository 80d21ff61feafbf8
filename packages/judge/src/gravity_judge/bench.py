"""`gravity bench judge`: judgments/s on the embedded model for the debiased top pick, the paper protocol's
full ranking, pairwise and Likert questions, and the judge's position bias under both protocols.

Three ways to read the judge's answers, measured in the same run on the same questions:
  log-probs, shared prefix   the judge's default: one call per reader and question kind, persona encoded once
                              (the paper ranking: letter-constrained greedy decoding over the cached prompt)
  log-probs, one per question the naive scoring baseline: every question encoded on its own
  free text, parsed           generate a short answer and parse it (what works without log-probabilities)
Unusable answers are counted for each. Personas and descriptions come from the bundled sample. The
response cache is off, so every judgment does real work. From the default mode's judgments the bench also
reports, in the same run: how often the paper ranking put first the description shown first, and how
often the debiased top pick and pairs followed the slot before and after the slot-prior correction.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import click

from gravity_core.cli.common import CliContext, pass_cli, summary_table


@dataclass
class _Unit:
    persona: Any
    texts: list[str]


def _inputs(units: int, candidates: int) -> list[_Unit]:
    """One reader per unit (sample demographics, genres they review most), ``candidates`` descriptions each."""
    from gravity_core.amazon import age_group, iter_books, iter_reviews, read_demographics
    from gravity_core.sample import sample_dir
    from gravity_core.skips import SkipLog
    from gravity_judge.persona import Persona

    skips = SkipLog()
    src = sample_dir()
    books = {b.parent_asin: b for _, b in iter_books(src / "meta_Books.jsonl", skips)}
    genres: dict[str, Counter[str]] = {}
    for _, review in iter_reviews(src / "Books.jsonl", skips):
        book = books.get(review.parent_asin)
        if book is not None and book.genre:
            genres.setdefault(review.user_id, Counter())[book.genre] += 1
    demographics = read_demographics(src / "demographics.csv", skips)
    readers = sorted(genres, key=lambda u: -sum(genres[u].values()))[:units]
    descriptions = [b.description for b in books.values() if b.description]
    out = []
    for k, user_id in enumerate(readers):
        d = demographics.get(user_id)
        top = ", ".join(g for g, _ in genres[user_id].most_common(3))
        persona = Persona(
            user_id,
            (d.age_group or (age_group(d.age) if d.age else "")) if d else "",
            d.gender if d else "",
            d.country if d else "",
            f"This reader mostly reviews {top} and writes about what moves them in a story.",
        )
        start = k * candidates
        out.append(_Unit(persona, [descriptions[(start + i) % len(descriptions)] for i in range(candidates)]))
    return out


@click.command()
@click.option("--units", default=3, show_default=True, help="Readers (one unit of questions each).")
@click.option("--candidates", default=9, show_default=True, help="Descriptions per unit (9 = Table 2).")
@click.option(
    "--orders",
    default=3,
    show_default=True,
    help="Balanced top-pick orders per ranking (0 = one per description).",
)
@pass_cli
def run(cli: CliContext, units: int, candidates: int, orders: int) -> None:
    """Ranking, pairwise and Likert judgments/s: log-prob scoring (shared prefix / per question) vs free text."""
    from gravity_core.config import LLMEndpoint
    from gravity_core.llm import make_llm
    from gravity_judge.judging import Candidate, Judge
    from gravity_judge.settings import JudgeSettings

    role = cli.settings.llm.role("judge")
    # The embedded model the judge role names, or the default one when the role points at an endpoint.
    endpoint = role if role.backend == "embedded" else LLMEndpoint()
    llm = make_llm(endpoint, cache=None)
    data = _inputs(units, candidates)
    modes = [
        ("log-probs, shared prefix", "auto", True),
        ("log-probs, one per question", "auto", False),
        ("free text, parsed", "text", True),
    ]
    llm.score_choices([{"role": "user", "content": "Warm-up: answer A or B."}], ["A", "B"])  # load kernels
    rows = []
    rates: dict[tuple[str, str], float] = {}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    click.echo(
        f"load average at start: {load:.1f} on {os.cpu_count()} CPUs (timings are noisy under load)", err=True
    )
    # the default mode's judgments, for the position-bias figures
    collected: dict[str, list[Any]] = {"ranking": [], "paper ranking": [], "pairwise": []}
    for label, mode, share in modes:
        judge = Judge(llm, JudgeSettings(answer_mode=mode, orders=orders), share_prefix=share)
        for kind in ("ranking", "paper ranking", "pairwise", "likert"):
            if kind == "paper ranking" and not share:
                continue  # constrained decoding always reuses the encoded prompt: no naive variant
            judgments = unusable = 0
            tokens_before = llm.usage.prompt_tokens
            started = time.perf_counter()
            for unit in data:
                cands = [Candidate(f"m{i}", t) for i, t in enumerate(unit.texts)]
                results: list[Any]
                if kind == "ranking":
                    results = [judge.rank(unit.persona, cands, key="bench")]
                elif kind == "paper ranking":
                    results = [judge.rank_paper(unit.persona, cands, key="bench")]
                elif kind == "pairwise":
                    results = judge.compare(unit.persona, cands[0], cands[1:])
                else:
                    results = judge.rate(unit.persona, cands)
                if label == modes[0][0] and kind in collected:
                    collected[kind] += results
                judgments += len(results)
                unusable += sum(1 for r in results if not r.usable)
            seconds = time.perf_counter() - started
            rate = judgments / seconds if seconds > 0 else 0.0
            rates[(label, kind)] = rate
            rows.append(
                (
                    label,
                    kind,
                    judgments,
                    round(seconds, 2),
                    round(rate, 3),
                    unusable,
                    llm.usage.prompt_tokens - tokens_before,
                )
            )
            click.echo(
                f"  {label} / {kind}: {judgments} judgments in {seconds:.1f}s, {unusable} unusable", err=True
            )
    click.echo(
        summary_table(
            f"gravity bench judge — {endpoint.model} (embedded), {units} units x {candidates} descriptions, "
            f"{orders} ranking orders",
            rows,
            headers=("answers", "kind", "judgments", "seconds", "judgments/s", "unusable", "prompt tokens"),
        )
    )
    for kind in ("ranking", "paper ranking", "pairwise", "likert"):
        if kind == "paper ranking":
            text = rates[("free text, parsed", kind)]
            best = rates[("log-probs, shared prefix", kind)]
            click.echo(
                f"{kind}: constrained-greedy {best / text:.2f}x free-text parsing"
                if text
                else f"{kind}: no timing"
            )
            continue
        best = rates[("log-probs, shared prefix", kind)]
        naive = rates[("log-probs, one per question", kind)]
        text = rates[("free text, parsed", kind)]
        click.echo(
            f"{kind}: shared-prefix log-probs {best / naive:.2f}x one-per-question, "
            f"{best / text:.2f}x free-text parsing"
            if naive and text
            else f"{kind}: no timing"
        )
    for line in _bias_lines(collected["paper ranking"], collected["ranking"], collected["pairwise"]):
        click.echo(line)


def _share(flags: list[bool]) -> str:
    return f"{100.0 * sum(flags) / len(flags):.1f}%" if flags else "–"


def _bias_lines(papers: list[Any], ranks: list[Any], pairs: list[Any]) -> list[str]:
    """Position bias under both protocols, from the default mode's judgments of this run."""
    from gravity_judge.judging import correct_judgments

    fixed_ranks, fixed_pairs, priors = correct_judgments(ranks, pairs)
    usable_papers = [p for p in papers if p.usable]
    n = len(ranks[0].candidates) if ranks else 0
    prior = priors.ranking.get(n)
    lines = [
        f"position bias, paper protocol: first place shown first in {_share([p.top_slot == 0 for p in usable_papers])} "
        f"of {len(usable_papers)} ranking(s) (chance {100.0 / n if n else 0:.1f}%); "
        f"{len(papers) - len(usable_papers)} unusable",
        "position bias, debiased protocol: top pick in slot A "
        f"{_share([p == 0 for r in ranks if r.usable for p in r.raw_picks])} before, "
        f"{_share([p == 0 for r in fixed_ranks if r.usable for p in r.picks])} after the correction; pairs with "
        f"the same slot in both orders {_share([p.raw_position_biased for p in fixed_pairs if p.usable])} before, "
        f"{_share([p.position_biased for p in fixed_pairs if p.usable])} after",
    ]
    if prior is not None:
        lines.append(
            "estimated slot prior (top pick): "
            + ", ".join(f"{chr(65 + i)} {100 * q:.1f}%" for i, q in enumerate(prior.probabilities))
        )
    return lines
