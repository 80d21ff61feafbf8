"""What was judged, for a person to check (issue 13, drill-down).

``judgments.jsonl`` holds one record per question the judge answered: the unit (reader and book), the
method(s), the protocol, the presentation order (candidate ids from slot A on), the raw answer text or the
answer probabilities (before and, for the debiased protocol, after the slot-prior correction) and whether
the answer could be used. ``examples`` picks a few readers and lists every description judged for them, for
the report.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from gravity_judge import methods as m
from gravity_judge import protocols as proto
from gravity_judge.evaluate import EvaluationRun, UnitResult
from gravity_judge.judging import corrected_probabilities
from gravity_judge.scoring import Answer

JUDGMENTS_FILE = "judgments.jsonl"
EXAMPLE_CHARS = 600


def _r(values: Sequence[float]) -> list[float]:
    return [round(float(v), 6) for v in values]


def _unit(r: UnitResult) -> dict[str, str]:
    return {"user_id": r.unit.user_id, "parent_asin": r.unit.parent_asin}


def _answer(answer: Answer, prior: Any = None, corrected: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": "ok" if answer.usable else answer.reason,
        "read_by": answer.method if answer.usable else None,
        "labels": list(answer.labels),
        "probabilities": _r(answer.probabilities) if answer.usable else None,
        "raw_text": answer.raw_text,
    }
    if corrected and answer.usable:
        out["corrected_probabilities"] = _r(corrected_probabilities(answer, prior))
    return out


def records(run: EvaluationRun) -> Iterator[dict[str, Any]]:
    """Every judgment of the run, unit by unit."""
    likert_protocol = "both" if len(run.protocols) > 1 else run.protocols[0]
    for r in run.results:
        unit = _unit(r)
        if r.paper is not None:
            p = r.paper
            yield {
                **unit,
                "protocol": proto.PAPER,
                "question": "ranking",
                "methods": p.candidates,
                "order": p.shown,
                "status": "ok" if p.usable else p.reason,
                "read_by": p.method,
                "ranking": p.ranking or None,
                "raw_text": p.raw_text,
                "steps": [{k: round(v, 6) for k, v in step.items()} for step in p.steps],
            }
        rank = r.ranking
        if rank is not None:
            for k, (perm, answer) in enumerate(zip(rank.orders, rank.answers, strict=True)):
                yield {
                    **unit,
                    "protocol": proto.DEBIASED,
                    "question": "top-pick",
                    "methods": rank.candidates,
                    "order": [rank.candidates[i] for i in perm],
                    "order_index": k,
                    **_answer(answer, rank.prior, corrected=True),
                }
        for method, pair in r.pairs.items():
            for k, answer in enumerate(pair.answers):
                yield {
                    **unit,
                    "protocol": proto.DEBIASED,
                    "question": "pairwise",
                    "methods": [pair.a, method],
                    "order": [pair.a, pair.b] if k == 0 else [pair.b, pair.a],
                    "order_index": k,
                    **_answer(answer, pair.prior, corrected=True),
                }
        for method, rating in r.likert.items():
            yield {
                **unit,
                "protocol": likert_protocol,
                "question": "likert",
                "methods": [method],
                "order": [method],
                "status": "ok" if rating.usable else rating.reason,
                "read_by": rating.answer_method or None,
                "labels": ["1", "2", "3", "4", "5"],
                "probabilities": _r(rating.distribution) if rating.usable else None,
                "answered": rating.answered if rating.usable else None,
                "expected": round(rating.score, 6) if rating.usable else None,
                "raw_text": rating.raw_answer,
            }


def judgments_jsonl(items: Sequence[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(x, ensure_ascii=False, allow_nan=False) + "\n" for x in items).encode("utf-8")


def _cut(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXAMPLE_CHARS else flat[:EXAMPLE_CHARS].rsplit(" ", 1)[0] + " …"


def examples(run: EvaluationRun, readers: int) -> list[dict[str, Any]]:
    """One unit for each of the first ``readers`` readers (by user id): every description judged, with
    what each protocol made of it."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for r in sorted(run.results, key=lambda x: (x.unit.user_id, x.unit.parent_asin)):
        if len(out) >= readers:
            break
        if r.unit.user_id in seen:
            continue
        seen.add(r.unit.user_id)
        u = r.unit
        rows = []
        for method in [m.ORIGINAL, *[k for k in run.evalset.methods if k in u.outputs]]:
            text = u.original if method == m.ORIGINAL else u.outputs[method]
            pair = r.pairs.get(method)
            paper_rank = r.paper.position(method) if r.paper is not None else None
            first = r.ranking.first_place.get(method) if r.ranking is not None and r.ranking.usable else None
            rows.append(
                {
                    "method": method,
                    "display": m.display_name(method),
                    "text": _cut(text),
                    "paper_rank": None if paper_rank is None else paper_rank + 1,
                    "debiased_first_place": None if first is None else round(first * 100.0, 2),
                    "debiased_preferred_over_original": None
                    if pair is None or not pair.usable
                    else round((1.0 - pair.probability_a) * 100.0, 2),
                }
            )
        out.append(
            {
                "user_id": u.user_id,
                "parent_asin": u.parent_asin,
                "book_title": u.book_title,
                "genre_cluster": u.genre_cluster,
                "persona": u.persona.text(),
                "descriptions": rows,
            }
        )
    return out
