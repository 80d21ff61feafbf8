"""`gravity bench judge`: judgments/s on the embedded model for ranking, pairwise and Likert questions.

Three ways to read the judge's answers, measured in the same run on the same questions:
  log-probs, shared prefix   the judge's default: one call per reader and question kind, persona encoded once
  log-probs, one per question the naive scoring baseline: every question encoded on its own
  free text, parsed           generate a short answer and parse it (what works without log-probabilities)
Unusable answers are counted for each. Personas and descriptions come from the bundled sample. The
response cache is off, so every judgment does real work.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass

import click

from gravity_core.cli.common import CliContext, pass_cli, summary_table


@dataclass
class _Unit:
    persona: object
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
@click.option("--orders", default=3, show_default=True, help="Shuffled orders per ranking.")
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
    for label, mode, share in modes:
        judge = Judge(llm, JudgeSettings(answer_mode=mode, orders=orders), share_prefix=share)
        for kind in ("ranking", "pairwise", "likert"):
            judgments = unusable = 0
            tokens_before = llm.usage.prompt_tokens
            started = time.perf_counter()
            for unit in data:
                cands = [Candidate(f"m{i}", t) for i, t in enumerate(unit.texts)]
                if kind == "ranking":
                    results = [judge.rank(unit.persona, cands, key="bench")]  # type: ignore[arg-type]
                elif kind == "pairwise":
                    results = judge.compare(unit.persona, cands[0], cands[1:])  # type: ignore[arg-type,assignment]
                else:
                    results = judge.rate(unit.persona, cands)  # type: ignore[arg-type,assignment]
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
                    round(rate, 2),
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
    for kind in ("ranking", "pairwise", "likert"):
        best = rates[("log-probs, shared prefix", kind)]
        naive = rates[("log-probs, one per question", kind)]
        text = rates[("free text, parsed", kind)]
        click.echo(
            f"{kind}: shared-prefix log-probs {best / naive:.2f}x one-per-question, "
            f"{best / text:.2f}x free-text parsing"
            if naive and text
            else f"{kind}: no timing"
        )
