"""`gravity profile ...`: build profiles from Amazon-format files; fetch one from a running service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gravity_core.cli.common import CliContext, pass_cli, progress, summary_table
from gravity_core.cli.settings_options import settings_options
from gravity_core.options import apply_options
from gravity_profiler.settings import ProfilerSettings


@click.group()
def profile() -> None:
    """Reader profiles: demographics, interests, values and beliefs, Big Five (paper §3.2)."""


@profile.command("build")
@click.option(
    "--reviews",
    "reviews",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Reviews file (Books.jsonl[.gz]).",
)
@click.option(
    "--meta",
    "meta",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Item metadata (meta_Books.jsonl[.gz]).",
)
@click.option(
    "--demographics",
    "demographics",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV with user_id and any of age, gender, country.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output profiles.jsonl (one UserProfile per line).",
)
@click.option(
    "--cohort-id", default="", help="Cohort name for every profile (default: derived from the inputs)."
)
@click.option("--user", "users", multiple=True, help="Profile only this user (repeatable).")
@click.option(
    "--max-users",
    type=int,
    default=None,
    help="Profile at most this many qualifying users (in user-id order).",
)
@settings_options(ProfilerSettings, "profiler", "min_reviews", "protocol", "prompt_review_chars")
@pass_cli
def build(
    cli: CliContext,
    reviews: Path,
    meta: Path,
    demographics: Path | None,
    out: Path,
    cohort_id: str,
    users: tuple[str, ...],
    max_users: int | None,
    overrides: dict[str, Any],
) -> None:
    """Profile every reader with enough reviews; write profiles.jsonl and a summary of what was skipped."""
    from gravity_core.identifiers import RULE, is_segment
    from gravity_profiler.batch import build_profiles
    from gravity_profiler.builder import ProfileBuilder
    from gravity_profiler.settings import profiler_settings

    settings = cli.settings
    config = profiler_settings(settings)
    config = apply_options(config, **overrides)
    if cohort_id and not is_segment(cohort_id):
        raise click.BadParameter(f"must be {RULE}", param_hint="--cohort-id")
    if max_users is not None and max_users < 1:
        raise click.BadParameter("must be at least 1", param_hint="--max-users")
    builder = ProfileBuilder(settings, config)

    def bar(items, total, desc):
        return progress(items, total=total, desc=desc, unit="user" if desc == "profiling" else "line")

    report = build_profiles(
        builder,
        reviews,
        meta,
        out,
        demographics,
        min_reviews=config.min_reviews,
        protocol=config.protocol,
        cohort_id=cohort_id,
        users=set(users) if users else None,
        max_users=max_users,
        progress=bar,
    )
    s = report.stats
    per_user = report.seconds.get("profiling", 0.0) / max(1, report.users_built)
    rows = [
        ("profiles written", report.users_built),
        ("output", report.out),
        ("cohort", report.cohort_id),
        ("reviews read / used", f"{report.reviews_read} / {report.reviews_used}"),
        ("users below min_reviews", report.users_below_threshold),
        ("reviews read by prompts / in histories", f"{s.reviews_read} / {s.reviews_total}"),
        ("histories capped (prompt_review_chars)", s.capped_users),
        ("histories read in several chunks", f"{s.chunked_users} ({s.chunks} chunks in all)"),
        (
            "unreadable answers",
            f"{s.unreadable_stances} stances, {s.unreadable_items} Mini-IPIP items "
            f"({s.unknown_traits} traits UNKNOWN)",
        ),
        (
            "demographics estimated",
            ", ".join(f"{k}={v}" for k, v in sorted(s.estimated_fields.items())) or "none",
        ),
        ("tokens processed", ", ".join(f"{k} {v}" for k, v in s.tokens.items()) or "none"),
        (
            "seconds: metadata, reading, profiling",
            ", ".join(f"{report.seconds.get(k, 0.0):.1f}" for k in ("metadata", "reading", "profiling")),
        ),
        ("seconds per user", f"{per_user:.1f} ({', '.join(f'{k} {v:.1f}' for k, v in s.seconds.items())})"),
    ]
    click.echo(summary_table("gravity profile build", rows))
    click.echo("input: " + "\n".join(report.input_skips.summary_lines()))
    if report.answer_skips.total:
        click.echo(
            "LLM answers recorded as unreadable or replaced by fallbacks: "
            + "\n".join(report.answer_skips.summary_lines())
        )


@profile.command("get")
@click.argument("user_id")
@click.option("--target", default=None, help="Profiler address host:port (default: grpc.targets/ports).")
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True)
@pass_cli
def get(cli: CliContext, user_id: str, target: str | None, timeout_s: float) -> None:
    """Print the latest stored profile of USER_ID from a running profiler (JSON)."""
    import grpc

    from gravity.v1 import profile_pb2, profile_pb2_grpc
    from gravity_core.errors import NotFound, Unavailable
    from gravity_core.grpc import make_channel
    from gravity_core.proto_io import to_json

    settings = cli.settings
    address = target or settings.grpc.target("profiler")
    with make_channel(address, settings.grpc) as channel:
        try:
            resp = profile_pb2_grpc.ProfilerServiceStub(channel).GetProfile(
                profile_pb2.GetProfileRequest(user_id=user_id), timeout=timeout_s
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound("user_id", exc.details() or user_id) from None
            raise Unavailable(f"profiler at {address}: {exc.code().name}: {exc.details()}") from None
    click.echo(to_json(resp.profile))
