"""`gravity bench profiler`: stance inference over whole histories, per-statement (the paper's) versus
shared-prefix, at several history lengths in one run.

Readers of 20, 50 and 200 reviews are synthesised deterministically from the bundled sample (its readers
have 20-26 reviews; see :func:`synthetic_reader`). Each history is read whole, split into context-sized
chunks exactly as a profile build splits it, and every statement is asked on every chunk on the embedded
annotator with the response cache off:

* shared-prefix — the whole bank against each chunk encoded once (answers pooled over the chunks);
* per-statement — one request per statement and chunk, each re-encoding the chunk (prefix reuse off: the
  naive baseline), over an evenly spread subset of statements whose cost is projected linearly to the bank,
  since every per-statement request is independent.

Reported per reader and length: chunks, prompt tokens processed and seconds, for both protocols, and the
share of identical pooled stances on the measured subset.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

import click

from gravity_core.cli.common import CliContext, pass_cli, summary_table
from gravity_profiler.inputs import UserInput

DEFAULT_SIZES = "20,50,200"


def synthetic_reader(inputs: Mapping[str, UserInput], n: int, anchor: str | None = None) -> UserInput:
    """A reader with ``n`` reviews built deterministically from sample readers.

    The anchor reader's own reviews come first (most recent first); older ones follow, taken round-robin
    from the other readers in user-id order, re-attributed to the synthetic reader with strictly older
    timestamps. Books may repeat past the catalog's size (a benchmark of prompt cost, not of taste).
    """
    readers = sorted(inputs.values(), key=lambda u: (-len(u.reviews), u.user_id))
    first = inputs[anchor] if anchor else readers[0]
    others = [u for u in sorted(inputs.values(), key=lambda u: u.user_id) if u.user_id != first.user_id]
    pool = list(first.reviews)
    depth = 0
    while len(pool) < n and any(depth < len(u.reviews) for u in others):
        pool += [u.reviews[depth] for u in others if depth < len(u.reviews)]
        depth += 1
    if len(pool) < n:
        raise click.UsageError(f"the sample holds only {len(pool)} reviews; cannot build a {n}-review reader")
    user_id = f"SYNTH-{first.user_id[:8]}-{n}"
    newest = first.reviews[0].timestamp_ms if first.reviews else 1_700_000_000_000
    day = 86_400_000
    reviews = [replace(r, user_id=user_id, timestamp_ms=newest - k * day) for k, r in enumerate(pool[:n])]
    books = {b: book for u in inputs.values() for b, book in u.books.items()}
    demographics = replace(first.demographics, user_id=user_id) if first.demographics else None
    return UserInput(user_id, reviews, books, demographics)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter("must be comma-separated review counts, e.g. 20,50,200") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("must name at least one review count, each at least 1")
    return sizes


@click.command()
@click.option(
    "--sizes",
    default=DEFAULT_SIZES,
    show_default=True,
    help="History lengths (reviews) to measure, comma-separated.",
)
@click.option(
    "--users", "n_users", default=1, show_default=True, help="Sample readers to anchor histories on."
)
@click.option(
    "--baseline-statements",
    "n_baseline",
    default=4,
    show_default=True,
    help="Statements the per-statement baseline answers (spread over the bank); its full-bank cost is "
    "projected from them, since every per-statement request is independent. 150 measures it all.",
)
@pass_cli
def run(cli: CliContext, sizes: str, n_users: int, n_baseline: int) -> None:
    """Prompt tokens and seconds per reader at 20, 50 and 200 reviews: per-statement vs shared-prefix."""
    import tempfile

    from gravity_core.amazon import iter_reviews, read_demographics
    from gravity_core.catalog import Catalog
    from gravity_core.llm import make_llm
    from gravity_core.sample import export_sample
    from gravity_core.skips import SkipLog
    from gravity_profiler import prompts
    from gravity_profiler.builder import ProfileBuilder
    from gravity_profiler.settings import profiler_settings
    from gravity_profiler.spool import ReviewSpool
    from gravity_profiler.stances import infer_stances, outcome

    lengths = _sizes(sizes)
    if n_users < 1 or n_baseline < 1:
        raise click.BadParameter("--users and --baseline-statements must be at least 1")
    settings = cli.settings
    config = profiler_settings(settings)
    endpoint = settings.llm.role("annotator").model_copy(update={"backend": "embedded"})
    llm = make_llm(endpoint, cache=None)
    builder = ProfileBuilder(settings, config, annotator=llm, author=llm)
    statements = list(builder.statements)
    step = max(1, len(statements) // min(n_baseline, len(statements)))
    baseline = list(range(0, len(statements), step))[:n_baseline]
    subset = [statements[i] for i in baseline]

    skips = SkipLog()
    with tempfile.TemporaryDirectory() as tmp, ReviewSpool(tmp) as spool:
        files = export_sample(tmp)
        catalog = Catalog.open(files["meta_Books.jsonl"], skips)
        demographics = read_demographics(files["demographics.csv"], skips)
        for number, review in iter_reviews(files["Books.jsonl"], skips):
            spool.add(review, "Books.jsonl", number)
        qualifying = spool.finalize(catalog, skips, 1).qualifying
        inputs = {u.user_id: u for u in spool.iter_inputs(qualifying, catalog, demographics.get)}
        catalog.close()
    anchors = sorted(inputs.values(), key=lambda u: (-len(u.reviews), u.user_id))[:n_users]

    llm.score_choices([{"role": "user", "content": "Warm-up. Answer yes or no."}], ["yes", "no"])
    rows = []
    totals: dict[int, list[float]] = {n: [0.0, 0.0, 0.0, 0.0, 0.0] for n in lengths}
    agree = compared = 0
    for anchor in anchors:
        for n in lengths:
            reader = synthetic_reader(inputs, n, anchor.user_id)
            history = builder.history(reader)
            d = reader.demographics
            demo = prompts.demographics_text(d.age_group, d.gender, d.country) if d else ""
            demo = demo or prompts.demographics_text("", "", "")
            contexts = [prompts.stance_context(chunk, demo) for chunk in history.chunks]

            click.echo(
                f"[{anchor.user_id[:12]}] {n} reviews in {len(history.chunks)} chunk(s): shared-prefix, "
                f"{len(statements)} statements ...",
                err=True,
            )
            before, started = llm.usage.prompt_tokens, time.perf_counter()
            shared = infer_stances(llm, contexts, statements, "shared-prefix", config)
            s_seconds, s_tokens = time.perf_counter() - started, llm.usage.prompt_tokens - before

            # per-statement: every request pays for its whole chunk, as without any prefix cache (this also
            # empties the one-entry prefix cache, so the next history starts cold)
            click.echo(
                f"[{anchor.user_id[:12]}] {n} reviews: shared-prefix {s_seconds:.1f}s; per-statement, "
                f"{len(subset)} statements ...",
                err=True,
            )
            llm.reuse_prefix = False  # type: ignore[attr-defined]
            try:
                before, started = llm.usage.prompt_tokens, time.perf_counter()
                per = infer_stances(llm, contexts, subset, "per-statement", config)
                p_seconds, p_tokens = time.perf_counter() - started, llm.usage.prompt_tokens - before
            finally:
                llm.reuse_prefix = True  # type: ignore[attr-defined]
            scale = len(statements) / len(subset)
            for i, scores in zip(baseline, per, strict=True):
                agree += outcome(statements[i], scores).stance == outcome(statements[i], shared[i]).stance
                compared += 1
            t = totals[n]
            t[0] += len(history.chunks)
            t[1] += s_tokens
            t[2] += s_seconds
            t[3] += p_tokens * scale
            t[4] += p_seconds * scale
            rows.append(
                (
                    anchor.user_id[:12],
                    n,
                    len(history.chunks),
                    f"{s_tokens:,}",
                    f"{s_seconds:.1f}",
                    f"{p_tokens * scale:,.0f}",
                    f"{p_seconds * scale:.1f}",
                    f"{(p_tokens * scale) / max(1, s_tokens):.1f}x",
                )
            )

    projected = (
        "" if len(subset) == len(statements) else f" (projected from {len(subset)} measured statements)"
    )
    click.echo(
        summary_table(
            f"gravity bench profiler — stance inference, all {len(statements)} statements, whole histories, "
            f"on {endpoint.model} (embedded, {builder.context_tokens}-token context, no response cache)",
            rows,
            headers=(
                "reader",
                "reviews",
                "chunks",
                "shared-prefix tokens",
                "shared-prefix s",
                f"per-statement tokens{'*' if projected else ''}",
                f"per-statement s{'*' if projected else ''}",
                "token ratio",
            ),
        )
    )
    if projected:
        click.echo(f"* per-statement{projected}: each request is independent, so its cost is linear.")
    for n in lengths:
        chunks, s_tok, s_sec, p_tok, p_sec = (v / len(anchors) for v in totals[n])
        click.echo(
            f"{n} reviews, per reader: {chunks:.0f} chunk(s); shared-prefix {s_tok:,.0f} tokens in {s_sec:.1f}s; "
            f"per-statement {p_tok:,.0f} tokens in {p_sec:.1f}s ({p_tok / max(1.0, s_tok):.1f}x tokens, "
            f"{p_sec / max(1e-9, s_sec):.1f}x time)"
        )
    click.echo(
        f"identical pooled stances on the measured statements: {agree}/{compared} "
        f"({100.0 * agree / max(1, compared):.1f}%)"
    )
