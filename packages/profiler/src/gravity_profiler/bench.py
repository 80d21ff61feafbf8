"""`gravity bench profiler`: stance inference, per-statement (the paper's) versus shared-prefix.

For a few sample users, the same 150 stance prompts are answered twice on the embedded annotator with
the response cache off: once one request per statement with the whole history re-encoded every time
(the naive baseline, prefix reuse disabled), once with the history encoded once. Reported: prompt
tokens the model processed and wall time per user, and how many stances agree.
Goals: >= 20x fewer prompt tokens, >= 95% identical stances.
"""

from __future__ import annotations

import time

import click

from gravity_core.cli.common import CliContext, pass_cli, summary_table


@click.command()
@click.option("--users", "n_users", default=2, show_default=True, help="Sample users to profile.")
@click.option(
    "--statements", "n_statements", default=150, show_default=True, help="Seed statements per user (first N)."
)
@pass_cli
def run(cli: CliContext, n_users: int, n_statements: int) -> None:
    """Prompt tokens, time per user and agreement: per-statement vs shared-prefix stance inference."""
    import tempfile

    from gravity_core.amazon import iter_reviews, read_demographics
    from gravity_core.catalog import Catalog
    from gravity_core.llm import make_llm
    from gravity_core.sample import export_sample
    from gravity_core.skips import SkipLog
    from gravity_core.values import load_seed_statements
    from gravity_profiler import prompts
    from gravity_profiler.settings import profiler_settings
    from gravity_profiler.spool import ReviewSpool
    from gravity_profiler.stances import infer_stances, outcome

    if n_users < 1 or n_statements < 1:
        raise click.BadParameter("--users and --statements must be at least 1")
    settings = cli.settings
    config = profiler_settings(settings)
    endpoint = settings.llm.role("annotator").model_copy(update={"backend": "embedded"})
    llm = make_llm(endpoint, cache=None)
    statements = load_seed_statements(config.statements_path or None)[:n_statements]

    skips = SkipLog()
    with tempfile.TemporaryDirectory() as tmp, ReviewSpool(tmp) as spool:
        files = export_sample(tmp)
        catalog = Catalog.open(files["meta_Books.jsonl"], skips)
        demographics = read_demographics(files["demographics.csv"], skips)
        for number, review in iter_reviews(files["Books.jsonl"], skips):
            spool.add(review, "Books.jsonl", number)
        users = spool.finalize(catalog, skips, config.min_reviews).qualifying[:n_users]
        inputs = list(spool.iter_inputs(users, catalog, demographics.get))

    llm.score_choices([{"role": "user", "content": "Warm-up. Answer yes or no."}], ["yes", "no"])
    rows = []
    totals = {"per-statement": [0, 0.0], "shared-prefix": [0, 0.0]}
    agree = compared = 0
    for user in inputs:
        context = prompts.review_context(
            user.reviews, user.books, config.prompt_review_chars, config.max_review_chars
        )
        d = user.demographics
        demo = (
            prompts.demographics_text(d.age_group, d.gender, d.country)
            if d
            else prompts.demographics_text("", "", "")
        )
        stance_context = prompts.stance_context(context, demo)
        results = {}
        for protocol in ("per-statement", "shared-prefix"):
            # The baseline pays for the full history on every request, as without any prefix cache.
            reuse_before = getattr(llm, "reuse_prefix", None)
            if reuse_before is not None:
                llm.reuse_prefix = protocol == "shared-prefix"
            tokens_before = llm.usage.prompt_tokens
            started = time.perf_counter()
            scores = infer_stances(llm, stance_context, statements, protocol, config)
            seconds = time.perf_counter() - started
            if reuse_before is not None:
                llm.reuse_prefix = reuse_before
            tokens = llm.usage.prompt_tokens - tokens_before
            totals[protocol][0] += tokens
            totals[protocol][1] += seconds
            results[protocol] = [outcome(s, sc).stance for s, sc in zip(statements, scores, strict=True)]
            rows.append((user.user_id[:12], protocol, tokens, round(seconds, 2)))
        same = sum(a == b for a, b in zip(results["per-statement"], results["shared-prefix"], strict=True))
        agree += same
        compared += len(statements)

    n = max(1, len(inputs))
    click.echo(
        summary_table(
            f"gravity bench profiler — stance inference, {len(inputs)} user(s) x {len(statements)} statements, "
            f"{endpoint.model} (embedded, no response cache)",
            rows,
            headers=("user", "protocol", "prompt tokens", "seconds"),
        )
    )
    per, shared = totals["per-statement"], totals["shared-prefix"]
    token_ratio = per[0] / max(1, shared[0])
    click.echo(
        f"per user: per-statement {per[0] / n:.0f} tokens, {per[1] / n:.1f}s; "
        f"shared-prefix {shared[0] / n:.0f} tokens, {shared[1] / n:.1f}s"
    )
    click.echo(
        f"shared-prefix processes {token_ratio:.1f}x fewer prompt tokens (goal >= 20x), "
        f"runs {per[1] / max(1e-9, shared[1]):.1f}x faster; stances identical: {agree}/{compared} "
        f"({100.0 * agree / max(1, compared):.1f}%, goal >= 95%)"
    )
