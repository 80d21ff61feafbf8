"""The preference prompts of each facet (the ``{preference_prompt}`` slot of the Table 12 DPO prompt).

The full prompt of a GRAVITY row is ``gravity_core.prompts.gravity_preamble(profile) + " " + preference
prompt``; the preamble is shared with the generator so training and inference condition on the same text.
"""

from __future__ import annotations

import re

from gravity_core.values import SeedStatement

CATEGORY_PROMPT = "Which kind of book would you rather read next?"
SUMMARY_PROMPT = "Which book description is more engaging and interesting to you?"
# Appendix B scenario generation prompt, verbatim.
SCENARIO_GENERATION_PROMPT = (
    "For the following statement: {statement}, please generate 3 pairs of role-playing scenarios, where the "
    "first scenario illustrates the statement and the second contradicts it. Please limit each scenario to "
    "2-3 sentences and do not repeat scenarios."
)

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def values_prompt(statement: str) -> str:
    return f'Describe a situation that reflects your view on this statement: "{statement.strip()}"'


def scenario_generation_prompt(statement: SeedStatement) -> str:
    return SCENARIO_GENERATION_PROMPT.format(statement=statement.text)


def book_text(title: str, description: str, max_chars: int) -> str:
    """'{title}: {description}' with the description cut to ``max_chars``."""
    return f"{title.strip()}: {clip(description, max_chars)}"


def clip(text: str, max_chars: int) -> str:
    """``text`` cut at the last sentence end before ``max_chars`` (at a word boundary if none); 0 = no limit."""
    text = text.strip()
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    head = text[:max_chars]
    ends = [m.end() for m in _SENTENCE_END.finditer(head + " ")]
    if ends and ends[-1] > max_chars // 3:
        return head[: ends[-1]].rstrip()
    cut = head.rsplit(None, 1)[0] if len(head.split(None, 1)) > 1 else head
    return cut.rstrip(",;:") + "…"
