"""`gravity generate` (batch evaluation generations) and `gravity personalize` (a gRPC client)."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from gravity_core import names
from gravity_core.cli.common import CliContext, pass_cli, summary_table
from gravity_core.cli.settings_options import settings_options
from gravity_core.errors import GravityError, InvalidInput
from gravity_core.options import apply_options, split_list
from gravity_generator.settings import GeneratorSettings


@click.command()
@click.option(
    "--profiles",
    "profiles_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="profiles.jsonl (gravity.v1.UserProfile per line).",
)
@click.option(
    "--meta",
    "meta_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="meta_Books.jsonl[.gz] (default: generator.meta_path, else the bundled sample).",
)
@click.option(
    "--adapters",
    "adapters_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Directory of trained adapters (gravity_adapter.json + PEFT files).",
)
@click.option(
    "--method",
    "methods",
    multiple=True,
    default=("all",),
    show_default=True,
    help="Methods, comma-separated or repeated; 'all' = every method that can run.",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output generations.jsonl (gravity.v1.Generation per line).",
)
@click.option(
    "--pairs",
    "pairs_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="The pairs directory the adapters were trained on: its manifest names each reader's held-out "
    "evaluation books, and exactly those are used. Without it the same selection is computed from the "
    "catalog and [evaluation].",
)
@click.option(
    "--books-per-user",
    type=click.IntRange(min=1),
    default=None,
    help="Evaluation books per user (default: evaluation.books_per_user = 5).",
)
@click.option("--users", multiple=True, help="Only these user ids (comma-separated or repeated).")
@settings_options(GeneratorSettings, "generator", "max_new_tokens", "temperature", "seed")
@pass_cli
def generate(
    cli: CliContext,
    profiles_path: str,
    meta_path: str | None,
    adapters_dir: str | None,
    methods: tuple[str, ...],
    out_path: str,
    pairs_dir: str | None,
    books_per_user: int | None,
    users: tuple[str, ...],
    overrides: dict[str, Any],
) -> None:
    """Write one generation per (user, evaluation book, method), `original` included (paper §3.4, §4.1)."""
    from gravity_core.cli.common import progress
    from gravity_core.datasets import load_manifest
    from gravity_core.llm import GenerationParams
    from gravity_core.proto_io import write_jsonl
    from gravity_generator.app import GeneratorApp, check_paths, load_config
    from gravity_generator.batch import choose_methods, generate_batch, precheck_methods, select_jobs

    settings = cli.settings
    cfg = apply_options(
        load_config(settings),
        profiles_path=profiles_path,
        follow_topics=False,
        meta_path=meta_path,
        adapters_dir=adapters_dir,
        **overrides,
    )
    check_paths(cfg)
    precheck_methods(cfg, split_list(methods))
    held_out = load_manifest(pairs_dir).held_out if pairs_dir else None
    if held_out is not None:
        click.echo(
            f"evaluation books: the held-out books of {pairs_dir}/manifest.json ({len(held_out)} readers)"
        )
    else:
        click.echo(
            "evaluation books: computed from the catalog and [evaluation] (pass --pairs to use a manifest's)"
        )
    started = time.perf_counter()
    app = GeneratorApp(settings, cfg, micro_batch=False)
    try:
        app.load()
        chosen = choose_methods(app, split_list(methods))
        pairs = select_jobs(
            app, split_list(users) or None, books_per_user or settings.evaluation.books_per_user, held_out
        )
        params = GenerationParams(
            temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens, seed=cfg.seed
        )
        chunk = cfg.max_batch * 4
        total = len(pairs) * len(chosen)
        bar = iter(progress(range(total), total=total, desc="generating", unit="desc"))

        def advance(_method: str, n: int) -> None:
            for _ in range(n):
                next(bar, None)

        report = generate_batch(app, chosen, pairs, params, chunk, on_chunk=advance)
        for _ in bar:  # closes the progress bar
            pass
        write_jsonl(report.generations, out_path)
    finally:
        app.close()
    rows = [
        (s.method, s.rows, s.failed, s.prompt_tokens, s.completion_tokens, round(s.seconds, 1))
        for s in report.methods
    ]
    click.echo(
        summary_table(
            f"generated {len(report.generations)} rows ({report.users} users, {report.books} user-book pairs, "
            f"{len(chosen)} methods) -> {out_path}",
            rows,
            ["method", "rows", "failed", "prompt_tokens", "completion_tokens", "seconds"],
        )
    )
    for line in app.skips.summary_lines():
        click.echo(line)
    click.echo(f"done in {time.perf_counter() - started:.1f}s")
    if not report.generations:
        raise GravityError("no generations were written (see the skipped lines above)")


@click.command()
@click.option(
    "--target",
    default=None,
    help="Generator address HOST:PORT (default: grpc.targets.generator or grpc host:port).",
)
@click.option("--user", "user_id", default=None, help="User id of a profile the generator knows.")
@click.option("--book", "parent_asin", default=None, help="parent_asin of a catalog book.")
@click.option("--title", default=None, help="Inline book title (with --description, instead of --book).")
@click.option("--description", default=None, help="Inline book description.")
@click.option(
    "--method", default=names.GRAVITY, show_default=True, help="Generation method (see --list-methods)."
)
@click.option("--stream", is_flag=True, help="Print the description as it is generated.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=None)
@click.option("--temperature", type=click.FloatRange(0.0, 2.0), default=None, help="0 = greedy.")
@click.option("--seed", type=int, default=None)
@click.option(
    "--adapter", default="", help="Serve with this loaded adapter instead of the method's current one."
)
@click.option(
    "--timeout", "timeout_s", type=float, default=600.0, show_default=True, help="Seconds before giving up."
)
@click.option("--list-methods", is_flag=True, help="List the methods the generator serves and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole response as JSON.")
@pass_cli
def personalize(
    cli: CliContext,
    target: str | None,
    user_id: str | None,
    parent_asin: str | None,
    title: str | None,
    description: str | None,
    method: str,
    stream: bool,
    max_new_tokens: int | None,
    temperature: float | None,
    seed: int | None,
    adapter: str,
    timeout_s: float,
    list_methods: bool,
    as_json: bool,
) -> None:
    """Ask a running generator for a personalized description of a book for a user."""
    from gravity_core.clients import GeneratorClient, Sampling
    from gravity_core.proto_io import to_json

    settings = cli.settings
    with GeneratorClient(target or settings.grpc.target("generator"), settings.grpc, timeout_s) as client:
        if list_methods:
            rows = [
                (names.method_name(m), "yes" if m.available else "no", m.adapter or "-", m.description)
                for m in client.list_methods()
            ]
            click.echo(summary_table("methods", rows, ["method", "available", "adapter", "description"]))
            return
        if not user_id:
            raise InvalidInput("--user", "is required")
        if parent_asin is None and (not title or not description):
            raise InvalidInput("--book", "give --book ASIN, or --title and --description")
        sampling = None
        if max_new_tokens is not None or temperature is not None:
            sampling = Sampling(temperature=temperature or 0.0, max_new_tokens=max_new_tokens or 0)
        request = {
            "user_id": user_id,
            "parent_asin": parent_asin,
            "title": title,
            "description": description,
            "method": method,
            "sampling": sampling,
            "seed": seed,
            "adapter": adapter,
        }
        if stream:
            final = None
            for piece in client.stream(**request):
                if isinstance(piece, str):
                    if not as_json:
                        click.echo(piece, nl=False)
                        sys.stdout.flush()
                else:
                    final = piece
            if final is None:
                raise GravityError("the stream ended without a final response")
            if not as_json:
                click.echo()
            reply = final
        else:
            reply = client.personalize(**request)
            if not as_json:
                click.echo(reply.text)
    if as_json:
        click.echo(to_json(reply))
        return
    for warning in reply.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"[{names.method_name(reply)} | model {reply.model or '-'} | adapter {reply.adapter or '-'} | "
        f"{reply.prompt_tokens}+{reply.completion_tokens} tokens | {reply.latency_ms:.0f} ms]",
        err=True,
    )
