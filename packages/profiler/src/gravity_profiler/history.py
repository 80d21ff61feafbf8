"""The whole review history as prompts read it (paper §3.2: "the user's full set of product reviews").

Every review is read by default. The reviews (most recent first, each cut at ``max_review_chars``) are
packed greedily into chunks, each small enough that the longest prompt built on it (a stance, Mini-IPIP,
demographics or summary prompt, with its question and answer room) fits the model's context. A history
that fits one prompt is one chunk. ``prompt_review_chars`` optionally caps the history's characters (most
recent first); it is off (0) by default. One split serves every stage, so a profile's evidence names one
number of chunks; the chunks' answers are combined by :mod:`gravity_profiler.pooling`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gravity_core.amazon import BookRecord, ReviewRecord
from gravity_core.errors import ConfigError
from gravity_profiler import prompts

# Share of the context kept free: token counts of pieces do not add up exactly once joined, and an
# endpoint without a tokenizer is estimated (4 characters per token).
HEADROOM = 0.08
# A chunk smaller than this would hold hardly a review: the context is too small for the prompts.
MIN_CHUNK_TOKENS = 128

CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class ReviewHistory:
    """The review text prompts read: context-sized chunks, most recent reviews first."""

    # Each chunk is a numbered review list (numbering restarts per chunk: each is a prompt of its own).
    chunks: tuple[str, ...]
    # Reviews in the chunks, and in the user's history.
    read: int
    total: int
    # The optional character cap that was applied (0 = none).
    cap_chars: int = 0

    @property
    def capped(self) -> bool:
        return self.read < self.total

    @property
    def text(self) -> str:
        """Every chunk's reviews as one list (for estimators that read plain text)."""
        return "\n".join(self.chunks)


def review_lines(
    reviews: Sequence[ReviewRecord],
    books: dict[str, BookRecord],
    max_review_chars: int,
    cap_chars: int = 0,
) -> list[str]:
    """One line per review (most recent first, as given), within the optional character cap."""
    lines: list[str] = []
    used = 0
    for review in reviews:
        text = _cut(" ".join(review.text.split()), max_review_chars)
        book = books.get(review.parent_asin)
        line = prompts.review_line(book.title if book is not None else "", review.rating, text)
        if cap_chars and lines and used + len(line) + 1 > cap_chars:
            break
        lines.append(line)
        used += len(line) + 1
    return lines


def split_history(
    lines: Sequence[str], total: int, budget_tokens: int, count_tokens: CountTokens, cap_chars: int = 0
) -> ReviewHistory:
    """Pack ``lines`` in order into chunks of at most ``budget_tokens`` tokens (numbering included).

    A single review longer than a whole chunk is cut to fit it (it is still read, in part).
    """
    chunks: list[list[str]] = []
    current: list[str] = []
    used = 0
    for line in lines:
        # "NN. " and the newline: a few tokens per line beyond the line itself.
        cost = count_tokens(line) + 4
        if cost > budget_tokens:
            line = _fit_line(line, budget_tokens - 4, count_tokens)
            cost = budget_tokens
        if current and used + cost > budget_tokens:
            chunks.append(current)
            current, used = [], 0
        current.append(line)
        used += cost
    if current:
        chunks.append(current)
    return ReviewHistory(tuple(prompts.numbered(c) for c in chunks), len(lines), total, cap_chars)


def chunk_budget(context_tokens: int, prompt_overheads: Sequence[int]) -> int:
    """Tokens of reviews one chunk may hold: the context, less headroom, less the largest prompt overhead
    (a prompt's text without reviews, plus its question and answer room)."""
    budget = int(context_tokens * (1.0 - HEADROOM)) - max(prompt_overheads)
    if budget < MIN_CHUNK_TOKENS:
        raise ConfigError(
            f"a {context_tokens}-token context leaves {budget} tokens for reviews after the prompts' own text "
            f"(needs at least {MIN_CHUNK_TOKENS}); raise profiler.context_tokens or use a model with a larger "
            "context"
        )
    return budget


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 3].rsplit(" ", 1)[0] + "..."


def _fit_line(line: str, budget_tokens: int, count_tokens: CountTokens) -> str:
    """Shorten ``line`` (from its end, at a word) until it is at most ``budget_tokens`` tokens."""
    while count_tokens(line) > budget_tokens and len(line) > 8:
        ratio = budget_tokens / count_tokens(line)
        line = _cut(line, max(8, int(len(line) * ratio * 0.95)))
    return line
