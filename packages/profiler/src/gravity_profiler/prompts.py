"""The profiler's prompts (paper appendix B and Table 12), and the review context they share.

Every scoring prompt is one user turn laid out as ``context + question``: the context (instructions, the
review history, demographics) comes first and the per-item question last, so the long part is a prefix
many questions can share (KV-cache reuse). The paper's stance prompt names the statement before the
reviews; we keep its wording but move the statement after them, and both protocols use the identical
text, so they differ only in how much work the model does, not in what it is asked.

Change PROMPT_VERSION whenever a prompt's wording changes: it is part of every profile's revision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gravity_core.amazon import BookRecord, ReviewRecord

PROMPT_VERSION = "profiler-prompts-2"

# Appendix B's labels, in the order they are offered. Each is scored by its first token ("no" stands
# for "no support"), as the OpenAI backend does from first-token log-probabilities; the option list in
# the prompt makes the rest of the label follow.
STANCE_LABELS = ("support", "no support", "neutral")
STANCE_CHOICES = ("support", "no", "neutral")

STANCE_INTRO = (
    "You will be provided with a set of reviews a user has written as well as demographic attributes "
    "including age, gender, and country."
)
STANCE_QUESTION = (
    "For the following statement, please select ONE of {'support', 'no support', 'neutral'} based on how "
    "well the statement reflects the user's beliefs."
)

IPIP_INTRO = "You will be provided with a set of reviews a user has written."
IPIP_QUESTION = (
    "Based on these reviews, how accurately does the following phrase describe the user? Please select ONE "
    "of 1 (very inaccurate), 2 (moderately inaccurate), 3 (neither), 4 (moderately accurate), "
    "5 (very accurate)."
)
IPIP_CHOICES = ("1", "2", "3", "4", "5")

DEMOGRAPHIC_INTRO = "You will be provided with a set of reviews a user has written."


@dataclass(frozen=True)
class ReviewContext:
    """The reviews as they appear in prompts: the most recent that fit the character budget."""

    text: str
    included: int
    total: int

    @property
    def truncated(self) -> bool:
        return self.included < self.total


def review_context(
    reviews: Sequence[ReviewRecord],
    books: dict[str, BookRecord],
    max_chars: int,
    max_review_chars: int,
) -> ReviewContext:
    """Number the reviews (most recent first, as given) with their book title and rating, within budget."""
    lines: list[str] = []
    used = 0
    for review in reviews:
        text = " ".join(review.text.split())
        if len(text) > max_review_chars:
            text = text[: max_review_chars - 3].rsplit(" ", 1)[0] + "..."
        book = books.get(review.parent_asin)
        title = f' on "{book.title}"' if book is not None and book.title else ""
        line = f"{len(lines) + 1}. Review{title} (rated {review.rating:g}/5): {text}"
        if lines and used + len(line) + 1 > max_chars:
            break
        lines.append(line)
        used += len(line) + 1
    return ReviewContext("\n".join(lines), len(lines), len(reviews))


def demographics_text(age_group: str, gender: str, country: str) -> str:
    return (
        f"age group: {age_group or 'unknown'}, gender: {gender or 'unknown'}, country: {country or 'unknown'}"
    )


def stance_context(reviews: ReviewContext, demographics: str, question: str = STANCE_QUESTION) -> str:
    """Appendix B's stance prompt up to the statement (the part every statement shares)."""
    return (
        f"{STANCE_INTRO}\nHere are the list of reviews:\n{reviews.text}\n"
        f"and demographic information: {demographics}.\n{question}\n"
    )


def stance_question(statement: str) -> str:
    # Just the statement: everything constant sits in the shared context, so each statement's own row
    # is as short as it can be (the question above names "the following statement").
    return statement


def stance_batch_question() -> str:
    """The several-statements-per-call variant for endpoints without prefix reuse (OpenAI)."""
    return (
        "For each of the following statements, please select ONE of {'support', 'no support', 'neutral'} "
        "based on how well the statement reflects the user's beliefs. Answer with exactly one line per "
        "statement, in the form '<number>: <label>', and nothing else."
    )


def numbered_statements(statements: Sequence[str]) -> str:
    return "\n".join(f"{i}. {s}" for i, s in enumerate(statements, start=1))


def ipip_context(reviews: ReviewContext) -> str:
    return f"{IPIP_INTRO}\nHere are the list of reviews:\n{reviews.text}\n{IPIP_QUESTION}\n"


def ipip_question(item: str) -> str:
    # Mini-IPIP items are first-person fragments ("Am the life of the party.") read as describing the user.
    return item


def demographic_context(reviews: ReviewContext) -> str:
    return f"{DEMOGRAPHIC_INTRO}\nHere are the list of reviews:\n{reviews.text}\n"


def demographic_question(field: str, options: Sequence[str]) -> str:
    listed = ", ".join(f"'{o}'" for o in options)
    what = {"age_group": "age group", "gender": "gender", "country": "country"}[field]
    return f"What is the user's most likely {what}? Please select ONE of {{{listed}}}."


def user_summary_prompt(reviews: ReviewContext) -> str:
    """Table 12, UserSummary: the user-summary generation prompt."""
    return (
        f"Please generate a summary of the user based on their historical reviews:\n{reviews.text}\n"
        "Now write the summary of the user in 3-5 sentences of your own words; do not copy the reviews."
    )


def value_summary_prompt(supported: Sequence[str], opposed: Sequence[str], max_sentences: int) -> str:
    """Table 12, GRAVITY "User Value Survey", given the user's supported and opposed statements."""
    parts = ["The user's values and beliefs:"]
    if supported:
        parts.append("The user supports these statements:\n" + "\n".join(f"- {s}" for s in supported))
    if opposed:
        parts.append("The user does not support these statements:\n" + "\n".join(f"- {s}" for s in opposed))
    if not supported and not opposed:
        parts.append("The user is neutral towards every statement we asked about.")
    parts.append(
        "Given the user's set of values and beliefs, please construct a short paragraph "
        f"(max. {max_sentences} sentences), summarizing the user's values on culture, ethics, society, "
        "politics, morals, and religion."
    )
    return "\n".join(parts)
