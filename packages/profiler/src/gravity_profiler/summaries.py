"""The author LLM's two summaries (Table 12), generated in batches across users.

* user summary — "Please generate a summary of the user based on their historical reviews" (UserSummary
  and TriAgent baselines, the judge's persona);
* value summary — the "User Value Survey": a paragraph of at most six sentences on the user's values,
  from the statements they support or oppose. The sentence cap is enforced on the output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gravity_core.llm import Completion, GenerationParams, LLMClient

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_ENDINGS = (".", "!", "?", '"', "'", "”")
_LIST_MARKER = re.compile(r"^(?:[-*•]|\d+[.)])\s+")
_LEADING_LABEL = re.compile(r"^\s*(?:\*\*)?(?:user )?(?:value )?summary(?:\*\*)?\s*:\s*", re.IGNORECASE)


def sentences(text: str) -> list[str]:
    """Split prose into sentences at ., ! or ? followed by whitespace, and at list items."""
    out = []
    for line in text.splitlines():
        flat = _LIST_MARKER.sub("", " ".join(line.split()))
        out += [s.strip() for s in _SENTENCE_END.split(flat) if s.strip()]
    return out


def clean_summary(text: str, max_sentences: int | None = None, cut_off: bool = False) -> str:
    """One paragraph, without a leading "Summary:" label, at most ``max_sentences`` sentences.

    ``cut_off`` (the generation hit its token limit) drops a trailing unfinished sentence when at least
    one complete sentence precedes it.
    """
    parts = []
    for sentence in sentences(_LEADING_LABEL.sub("", text.strip())):
        # small models loop; a repeated sentence adds nothing
        if sentence not in parts:
            parts.append(sentence)
    if cut_off and len(parts) > 1 and not parts[-1].endswith(_ENDINGS):
        parts = parts[:-1]
    # list items and headings read as sentences of the paragraph
    parts = [p if p.endswith(_ENDINGS) else p.rstrip(":;,- ") + "." for p in parts]
    if max_sentences is not None:
        parts = parts[:max_sentences]
    return " ".join(parts)


def generate(llm: LLMClient, prompts: Sequence[str], max_tokens: int) -> list[Completion]:
    """Greedy completions of single-turn prompts, batched (the backend splits into its batch size)."""
    if not prompts:
        return []
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
    return llm.chat_batch([[{"role": "user", "content": p}] for p in prompts], params)


def fallback_value_summary(supported: Sequence[str], opposed: Sequence[str], max_sentences: int) -> str:
    """A plain statement of the strongest stances, when the author returned nothing usable."""
    parts = [f'The user supports the view that "{s.rstrip(".")}".' for s in supported[:3]]
    parts += [f'The user rejects the view that "{s.rstrip(".")}".' for s in opposed[:3]]
    if not parts:
        parts.append("The user's reviews reveal no clear position on questions of values and beliefs.")
    return " ".join(parts[:max_sentences])
