"""`gravity bench profiler`: stance inference, per-statement (the paper's) versus shared-prefix.

For a few sample users the stance prompts are answered on the embedded annotator, response cache off:
shared-prefix over the whole bank (history encoded once), and per-statement (one request per statement,
the history re-encoded every time: the naive baseline, prefix reuse disabled) over an evenly spread subset
whose cost is projected to the whole bank — each per-statement request is independent, so its cost is
linear in the number of statements. Reported: prompt tokens processed and wall time per user, and the
share of identical stances on the measured subset. Goals: >= 20x fewer prompt tokens, >= 95% identical.
"""

from __future__ import annotations

import time

import click

from gravity_core.cli.common import CliContext, pass_cli, summary_table


@click.command()
@click.option("--users", "n_users", default=2, show_default=True, help="Sample users to profile.")
@click.option(
    "--baseline-statements",
    "n_baseline",
    default=30,
    show_default=True,
    help="Statements the per-statement baseline answers (spread over the bank); its full-bank cost is "
    "projected from them, since every per-statement request is independent. Use 150 to measure it all.",
)
@pass_cli
def run(cli: CliContext, n_users: int, n_baseline: int) -> None:
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

    if n_users < 1 or n_baseline < 1:
        raise click.BadParameter("--users and --baseline-statements must be at least 1")
    settings = cli.settings
    config = profiler_settings(settings)
    endpoint = settings.llm.role("annotator").model_copy(update={"backend": "embedded"})
    llm = make_llm(endpoint, cache=None)
    statements = load_seed_statements(config.statements_path or None)
    step = max(1, len(statements) // min(n_baseline, len(statements)))
    baseline = list(range(0, len(statements), step))[:n_baseline]

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
    reuse = getattr(llm, "reuse_prefix", None)
    rows = []
    shared_tokens = shared_seconds = per_tokens = per_seconds = 0.0
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

        # shared-prefix: the whole bank, the history encoded once
        before, started = llm.usage.prompt_tokens, time.perf_counter()
        shared = infer_stances(llm, stance_context, statements, "shared-prefix", config)
        s_seconds, s_tokens = time.perf_counter() - started, llm.usage.prompt_tokens - before

        # per-statement: every request pays for the full history, as without any prefix cache
        subset = [statements[i] for i in baseline]
        if reuse is not None:
            llm.reuse_prefix = False
        try:
            before, started = llm.usage.prompt_tokens, time.perf_counter()
            per = infer_stances(llm, stance_context, subset, "per-statement", config)
            p_seconds, p_tokens = time.perf_counter() - started, llm.usage.prompt_tokens - before
        finally:
            if reuse is not None:
                llm.reuse_prefix = reuse
        scale = len(statements) / len(subset)
        shared_tokens += s_tokens
        shared_seconds += s_seconds
        per_tokens += p_tokens * scale
        per_seconds += p_seconds * scale
        for i, scores in zip(baseline, per, strict=True):
            agree += outcome(statements[i], scores).stance == outcome(statements[i], shared[i]).stance
            compared += 1
        rows.append((user.user_id[:14], "shared-prefix", len(statements), s_tokens, round(s_seconds, 1)))
        rows.append((user.user_id[:14], "per-statement", len(subset), p_tokens, round(p_seconds, 1)))

    n = max(1, len(inputs))
    click.echo(
        summary_table(
            f"gravity bench profiler — stance inference on {endpoint.model} (embedded, no response cache), "
            f"{len(inputs)} sample user(s), {context.included}-review prompts",
            rows,
            headers=("user", "protocol", "statements", "prompt tokens", "seconds"),
        )
    )
    click.echo(
        f"per user, all {len(statements)} statements: shared-prefix {shared_tokens / n:.0f} tokens in "
        f"{shared_seconds / n:.1f}s; per-statement {per_tokens / n:.0f} tokens in {per_seconds / n:.1f}s"
        + (
            ""
            if len(baseline) == len(statements)
            else f" (projected from {len(baseline)} measured statements)"
        )
    )
    click.echo(
        f"shared-prefix processes {per_tokens / max(1.0, shared_tokens):.1f}x fewer prompt tokens (goal >= 20x) "
        f"and runs {per_seconds / max(1e-9, shared_seconds):.1f}x faster; identical stances: {agree}/{compared} "
        f"({100.0 * agree / max(1, compared):.1f}%, goal >= 95%)"
    )
