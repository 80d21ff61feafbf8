"""The four GRAVITY facets of one user as preference pairs (paper §3.3, appendix B, Table 12).

Every prompt is the shared GRAVITY preamble (demographics, interests, value summary, traits) followed by
the facet's preference prompt; ``chosen`` is what this user prefers and ``rejected`` the alternative.
"""

from __future__ import annotations

from collections.abc import Sequence

from gravity.v1 import profile_pb2
from gravity_core.names import CATEGORY, PERSONALITY, SUMMARY, VALUES
from gravity_core.prompts import TRAIT_NAMES
from gravity_core.values import SeedStatement
from gravity_pairgen.banks import PersonalityBank, user_rng
from gravity_pairgen.interests import BookRanker
from gravity_pairgen.prompts import CATEGORY_PROMPT, SUMMARY_PROMPT, book_text, values_prompt
from gravity_pairgen.rows import Omissions, Pair, make_pair
from gravity_pairgen.scenarios import ScenarioPool

TRAIT_KEYS = {t: name.lower() for t, name in TRAIT_NAMES.items()}


def user_genres(profile: profile_pb2.UserProfile, limit: int) -> list[str]:
    """The user's genres, largest share first (the first is their top genre)."""
    ordered = sorted(profile.interests, key=lambda i: (-i.share, i.genre))
    return list(dict.fromkeys(i.genre for i in ordered if i.genre))[:limit]


def category_pairs(user_id: str, preamble: str, genres: Sequence[str], distinct: Sequence[str]) -> list[Pair]:
    prompt = f"{preamble} {CATEGORY_PROMPT}"
    return [
        make_pair(user_id, CATEGORY, prompt, g, d, (f"genre:{g}", f"genre:{d}"))
        for g in genres
        for d in distinct
    ]


def summary_pairs(
    user_id: str,
    preamble: str,
    genres: Sequence[str],
    distinct: Sequence[str],
    ranker: BookRanker,
    reviewed: set[str],
    books_per_genre: int,
    max_chars: int,
    omissions: Omissions,
) -> list[Pair]:
    def books(of: Sequence[str]) -> list[tuple[str, str]]:
        out = []
        for genre in of:
            found = ranker.top(genre, books_per_genre, exclude=reviewed)
            omissions.add("genre_short_of_books", books_per_genre - len(found))
            out += [(b.parent_asin, book_text(b.title, b.description, max_chars)) for b in found]
        return out

    prompt = f"{preamble} {SUMMARY_PROMPT}"
    liked, other = books(genres), books(distinct)
    return [
        make_pair(user_id, SUMMARY, prompt, chosen, rejected, (f"asin:{a}", f"asin:{b}"))
        for a, chosen in liked
        for b, rejected in other
    ]


def values_pairs(
    profile: profile_pb2.UserProfile,
    preamble: str,
    pool: ScenarioPool,
    statements: dict[str, SeedStatement],
    per_statement: int,
    omissions: Omissions,
) -> list[Pair]:
    """support -> the illustrating scenario is chosen; oppose -> the contradicting one; neutral -> none;
    unreadable (the profiler could not read the answer) -> none, counted apart from neutral."""
    out: list[Pair] = []
    for stance in profile.values:
        if stance.stance == profile_pb2.STANCE_UNREADABLE:
            omissions.add("unreadable_statement")
            continue
        if stance.stance not in (profile_pb2.STANCE_SUPPORT, profile_pb2.STANCE_OPPOSE):
            omissions.add("neutral_statement")
            continue
        scenarios = pool.pairs(stance.statement_id, per_statement)
        if not scenarios:
            omissions.add("statement_without_scenarios")
            continue
        seed = statements.get(stance.statement_id)
        prompt = (
            f"{preamble} {values_prompt(stance.statement or (seed.text if seed else stance.statement_id))}"
        )
        supports = stance.stance == profile_pb2.STANCE_SUPPORT
        for sc in scenarios:
            chosen, rejected = (
                (sc.illustrates, sc.contradicts) if supports else (sc.contradicts, sc.illustrates)
            )
            out.append(
                make_pair(
                    profile.user_id,
                    VALUES,
                    prompt,
                    chosen,
                    rejected,
                    (f"statement:{stance.statement_id}", f"scenario:{sc.id}"),
                )
            )
    return out


def personality_pairs(
    profile: profile_pb2.UserProfile,
    preamble: str,
    bank: PersonalityBank,
    items_per_trait: int,
    seed: int,
    omissions: Omissions,
) -> list[Pair]:
    """``items_per_trait`` items per trait; the answer matching the user's level is chosen. A trait without
    a level, or whose level the profiler could not read (UNKNOWN), gets no pairs: it is counted, never
    guessed (before, anything but HIGH was taken as LOW)."""
    levels = {
        TRAIT_KEYS[t.trait]: t.level
        for t in profile.personality.traits
        if t.trait in TRAIT_KEYS and t.level != profile_pb2.TRAIT_LEVEL_UNSPECIFIED
    }
    out: list[Pair] = []
    for trait in TRAIT_KEYS.values():
        level = levels.get(trait)
        if level is None:
            omissions.add("trait_level_unknown")
            continue
        if level not in (profile_pb2.TRAIT_LEVEL_HIGH, profile_pb2.TRAIT_LEVEL_LOW):
            omissions.add("trait_unreadable")
            continue
        rng = user_rng(seed, profile.user_id, f"personality:{trait}")
        items = bank.sample(trait, items_per_trait, rng)
        omissions.add("bank_short_of_items", items_per_trait - len(items))
        for item in items:
            # TRAIT has two answers per level: one of each is drawn per user (paper footnote 6).
            high = item.high[0] if len(item.high) == 1 else rng.choice(item.high)
            low = item.low[0] if len(item.low) == 1 else rng.choice(item.low)
            chosen, rejected = (high, low) if level == profile_pb2.TRAIT_LEVEL_HIGH else (low, high)
            out.append(
                make_pair(
                    profile.user_id,
                    PERSONALITY,
                    f"{preamble} {item.question}",
                    chosen,
                    rejected,
                    (f"{item.source}:{item.id}",),
                    trait=trait,
                )
            )
    return out
