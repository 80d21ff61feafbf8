"""The optional ``--author-llm`` pass: the author LLM writes each planted review's talk about the book.

Only the book talk (the opening and closing sentences, which say nothing about the reader) is rewritten, so
the recorded truth stays exact: every stance sentence, trait marker and demographic cue is kept verbatim.
A rewrite is refused, and the templated sentences kept, when it is empty, too long, or names a seed
statement (it would express something the truth does not record); refusals are counted in plant.json.
"""

from __future__ import annotations

import re

from gravity_core.llm import GenerationParams, LLMClient
from gravity_core.values import load_seed_statements
from gravity_fidelity.phrasing import statement_core
from gravity_fidelity.plant import Draft

MAX_CHARS = 260
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def book_talk_prompt(draft: Draft) -> str:
    return (
        f"Write two short sentences for a {draft.rating:.0f}-star customer review of the book "
        f'"{draft.book.title}"{f" by {draft.book.author}" if draft.book.author else ""}. Talk only about the book '
        f"itself (story, writing, pacing), not about yourself or your opinions on society. "
        f"The book's description: {draft.book.description[:600]}"
    )


def usable_book_talk(text: str, cores: list[str]) -> list[str] | None:
    """The first two sentences of ``text``, or None when they are unusable (see the module docstring)."""
    sentences = [s.strip() for s in _SENTENCE.split(" ".join(text.split())) if s.strip()][:2]
    joined = " ".join(sentences)
    if not sentences or joined[-1] not in ".!?" or len(joined) > MAX_CHARS or "<" in joined or ">" in joined:
        return None
    lowered = joined.lower()
    if any(core in lowered for core in cores):
        return None
    return sentences


def rewrite_book_talk(llm: LLMClient, drafts: list[Draft], max_tokens: int = 80) -> tuple[int, int]:
    """Rewrite the drafts' book talk in place; returns (rewritten, refused)."""
    if not drafts:
        return 0, 0
    cores = [statement_core(s.text).lower() for s in load_seed_statements()]
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
    completions = llm.chat_batch([[{"role": "user", "content": book_talk_prompt(d)}] for d in drafts], params)
    rewritten = refused = 0
    for draft, completion in zip(drafts, completions, strict=True):
        sentences = usable_book_talk(completion.text, cores)
        if sentences is None:
            refused += 1
            continue
        draft.opener = sentences[0]
        draft.closer = sentences[1] if len(sentences) > 1 else ""
        draft.filler = ""
        draft.rewritten = True
        rewritten += 1
    return rewritten, refused
