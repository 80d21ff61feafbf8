"""`gravity bench llm`: embedded-backend throughput on this machine.

Generates the same 8 prompts one at a time and then as one batch (the naive baseline and the batched path
in the same run), and times choice scoring. Caching is off so every call does real work.
"""

from __future__ import annotations

import time

import click

from gravity_core.cli.common import CliContext, pass_cli, summary_table

PROMPTS = [
    "Describe a mystery novel set in Osaka in two sentences.",
    "Write a short blurb for a book about the history of coffee.",
    "Summarize why people enjoy epic fantasy.",
    "Give a one-paragraph pitch for a memoir by a retired nurse.",
    "Describe a romance novel set in Recife.",
    "Explain what makes a thriller page-turning.",
    "Write two sentences recommending a poetry collection.",
    "Pitch a self-help book about slow mornings.",
]


@click.command()
@click.option("--max-tokens", default=48, show_default=True, help="Tokens generated per prompt.")
@click.option("--scoring-calls", default=16, show_default=True, help="Choice-scoring calls to time.")
@pass_cli
def run(cli: CliContext, max_tokens: int, scoring_calls: int) -> None:
    """Tokens/s one-at-a-time vs batched (8 prompts), and choice-scoring calls/s, on the embedded model."""
    from gravity_core.llm import GenerationParams, make_llm

    endpoint = cli.settings.llm.role("writer").model_copy(
        update={"backend": "embedded", "max_batch_size": len(PROMPTS)}
    )
    llm = make_llm(endpoint, cache=None)
    params = GenerationParams(max_tokens=max_tokens)
    convos = [[{"role": "user", "content": p}] for p in PROMPTS]
    llm.chat(convos[0], GenerationParams(max_tokens=4))  # warm-up

    started = time.perf_counter()
    single = [llm.chat(c, params) for c in convos]
    t_single = time.perf_counter() - started
    started = time.perf_counter()
    batched = llm.chat_batch(convos, params)
    t_batched = time.perf_counter() - started

    tok_single = sum(c.completion_tokens for c in single)
    tok_batched = sum(c.completion_tokens for c in batched)
    question = [
        {"role": "user", "content": "Is this review positive? 'I loved every page of it.' Answer yes or no."}
    ]
    started = time.perf_counter()
    for _ in range(scoring_calls):
        llm.score_choices(question, ["yes", "no"])
    t_score = time.perf_counter() - started

    rate_single = tok_single / t_single
    rate_batched = tok_batched / t_batched
    click.echo(
        summary_table(
            f"gravity bench llm — {endpoint.model} on {getattr(llm, 'device', '?')}, {len(PROMPTS)} prompts x {max_tokens} tokens",
            [
                ("one at a time", tok_single, round(t_single, 2), round(rate_single, 1)),
                ("batched", tok_batched, round(t_batched, 2), round(rate_batched, 1)),
            ],
            headers=("mode", "tokens", "seconds", "tokens/s"),
        )
    )
    click.echo(f"batched / one-at-a-time: {rate_batched / rate_single:.2f}x")
    click.echo(
        f"choice scoring: {scoring_calls / t_score:.1f} calls/s ({scoring_calls} calls, {t_score:.2f}s)"
    )
