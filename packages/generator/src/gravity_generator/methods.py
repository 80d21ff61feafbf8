"""The generation methods and their prompts (paper Table 12, appendix C and D.2).

Every prompt is a :class:`PromptSpec`: a template plus named fields, so an over-long input can be shortened
field by field (the description, the reviews, the summary) instead of cutting the instruction out of the
middle of the prompt. Shared pieces (persona, GRAVITY preamble, the description request) come from
``gravity_core.prompts`` so inference prompts match the training prompts word for word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gravity.v1 import profile_pb2
from gravity_core import names, prompts

# Methods served without an adapter (the original makes no model call at all), in Table 2 order.
PROMPT_METHODS = names.WITHOUT_ADAPTER
# Adapter methods always listed (Table 2's); any other loaded adapter (GRAVITY (SFT), an ablation) is listed once
# loaded and uses the GRAVITY prompt.
ADAPTER_METHODS = tuple(name for name in names.TABLE2 if name not in names.WITHOUT_ADAPTER)
ABLATION_DESCRIPTION = "{display}: adapter {method!r} (e.g. an ablation) with the GRAVITY prompt."


def describe_method(name: str) -> str:
    spec = names.spec(name)
    if spec is not None:
        return spec.description
    return ABLATION_DESCRIPTION.format(display=names.display_name(name), method=name)


@dataclass(frozen=True)
class BookInput:
    """The book a description is written for: from the catalog or given inline."""

    parent_asin: str
    title: str
    description: str
    genre: str = ""
    genre_group: str = ""


@dataclass
class PromptSpec:
    """``template`` with ``{name}`` slots; ``shrinkable`` fields may be shortened to fit the context."""

    template: str
    fields: dict[str, str]
    shrinkable: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    def render(self, values: dict[str, str] | None = None) -> str:
        # format_map substitutes the template's slots only; braces inside field values stay literal.
        return self.template.format_map(values if values is not None else self.fields)


def _with_length(request: str) -> str:
    return f"{request} {prompts.DESCRIPTION_SENTENCES}"


def _describe_spec(preamble: str, book: BookInput) -> PromptSpec:
    # core's description_prompt itself, so the text is exactly the one adapters and their cards name
    template = prompts.description_prompt("{preamble}" if preamble else "", "{title}", "{description}")
    fields = {"title": book.title, "description": book.description.strip()}
    if preamble:
        fields["preamble"] = preamble
    return PromptSpec(template, fields, ("description",))


def base_rewrite(book: BookInput) -> PromptSpec:
    """Table 12 BaseRewrite (also TriAgent's first generation)."""
    return _describe_spec("", book)


def demo_based(profile: profile_pb2.UserProfile, book: BookInput) -> PromptSpec:
    """Table 12 DemoBased: 'You are a {age} {gender} from {country}. Please generate ...'."""
    return _describe_spec(prompts.persona(profile), book)


def user_summary(profile: profile_pb2.UserProfile, book: BookInput) -> PromptSpec:
    """Table 12 UserSummary personalization prompt."""
    template = _with_length(
        "Based on this user summary ({user_summary}), please generate a more engaging and interesting description "
        "for this book ({title}) based on the following description: {description}."
    )
    fields = {
        "user_summary": profile.user_summary.strip(),
        "title": book.title,
        "description": book.description.strip(),
    }
    return PromptSpec(template, fields, ("description", "user_summary"))


def lamp(book: BookInput, reviews: Sequence[str]) -> PromptSpec:
    """Table 12 LaMP: the retrieved reviews as a numbered list, most similar book first.

    The reviews are the user's own text, so they sit between <reviews> and </reviews> (in the template, so
    shortening the field never cuts a delimiter) after a note that they are data, not instructions.
    """
    template = _with_length(
        f"{prompts.REVIEWS_NOTE}\nBased on these user reviews: {prompts.delimited('{reviews}')}, please generate "
        "a more engaging and interesting description for this book ({title}) based on the following "
        "description: {description}."
    )
    fields = {
        "reviews": prompts.join_reviews(reviews),
        "title": book.title,
        "description": book.description.strip(),
    }
    return PromptSpec(template, fields, ("reviews", "description"))


def tri_agent_edits(profile: profile_pb2.UserProfile, personalized: str) -> PromptSpec:
    """Table 12 TriAgent edit instructions (the author role)."""
    template = (
        "Based on this user summary {user_summary} and this personalized book description: "
        "{personalized_description}, please generate a set of suggested edits to make the description more "
        "engaging and interesting for the user."
    )
    fields = {"user_summary": profile.user_summary.strip(), "personalized_description": personalized.strip()}
    return PromptSpec(template, fields, ("personalized_description", "user_summary"))


def tri_agent_final(
    profile: profile_pb2.UserProfile, book: BookInput, edits: str, personalized: str
) -> PromptSpec:
    """Table 12 TriAgent final generation: the first rewrite revised with the suggested edits."""
    template = _with_length(
        "Based on this user summary {user_summary} and these suggested edits: {edits}, please generate a more "
        "engaging and interesting description for this book: {title} with this description: "
        "{personalized_description}."
    )
    fields = {
        "user_summary": profile.user_summary.strip(),
        "edits": edits.strip(),
        "title": book.title,
        "personalized_description": personalized.strip(),
    }
    return PromptSpec(template, fields, ("edits", "personalized_description", "user_summary"))


def adapter_prompt(method: str, profile: profile_pb2.UserProfile, book: BookInput) -> PromptSpec:
    """The final generation prompt of an adapter method.

    UserSFT and PrefAlign condition on demographics only, as in their training prompts (Table 12 gives
    PrefAlign's final prompt; for UserSFT only the training prompt, whose persona we reuse). GRAVITY and
    every other adapter (ablations) get the GRAVITY preamble the preference pairs were trained with.
    """
    return _describe_spec(prompts.adapter_preamble(method, profile), book)
