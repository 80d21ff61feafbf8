"""Baseline datasets (paper §4.1, D.2, Table 12): UserSFT examples and PrefAlign pairs.

* UserSFT: one example per reviewed book with a known description — the persona prompt with the book's
  title and description, completed by the user's own review.
* PrefAlign: for each reviewed book (topped up to ``pref_align_min_books`` with highly rated unreviewed
  books of the user's genres), the author LLM writes an aligned and a misaligned description from the
  demographics alone; the DPO prompt is the Table 12 PrefAlign prompt. Generation is batched across
  books and users with ``chat_batch``; greedy calls hit the response cache on re-runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gravity.v1 import profile_pb2
from gravity_core.amazon import BookRecord
from gravity_core.llm import GenerationParams, LLMClient
from gravity_core.names import PREF_ALIGN_FACET, USER_SFT_FACET
from gravity_core.prompts import (
    DESCRIPTION_SENTENCES,
    describe_request,
    less_engaging_request,
    persona,
    pref_align_prompt,
    user_sft_prompt,
)
from gravity_pairgen.interests import BookRanker
from gravity_pairgen.prompts import clip
from gravity_pairgen.rows import Omissions, Pair, make_pair

# Conversations per chat_batch call: big enough to keep the backend's batches full (embedded
# max_batch_size, OpenAI concurrency), small enough for the progress bar to move.
_SLICE = 64


def reviewed_asins(profile: profile_pb2.UserProfile) -> list[str]:
    """Every book the user reviewed: the kept reviews (most recent first), then the uncapped id list."""
    return list(
        dict.fromkeys(
            [r.parent_asin for r in profile.reviews if r.parent_asin] + list(profile.reviewed_asins)
        )
    )


def user_sft_rows(
    profile: profile_pb2.UserProfile, books: dict[str, BookRecord], max_chars: int, omissions: Omissions
) -> list[Pair]:
    out = []
    for review in profile.reviews:
        book = books.get(review.parent_asin)
        text = review.text.strip()
        if book is None:
            omissions.add("review_book_not_in_catalog")
        elif not book.description.strip():
            omissions.add("review_book_without_description")
        elif not text:
            omissions.add("empty_review")
        else:
            prompt = user_sft_prompt(profile, book.title, clip(book.description, max_chars))
            out.append(
                make_pair(profile.user_id, USER_SFT_FACET, prompt, text, "", (f"asin:{book.parent_asin}",))
            )
    return out


def pref_align_books(
    profile: profile_pb2.UserProfile,
    books: dict[str, BookRecord],
    ranker: BookRanker,
    genres: Sequence[str],
    min_books: int,
    max_books: int,
) -> list[BookRecord]:
    """Reviewed books with a description, topped up to ``min_books`` from the user's genres, capped."""
    reviewed = reviewed_asins(profile)
    chosen = [books[a] for a in reviewed if a in books and books[a].description.strip()]
    if len(chosen) < min_books and genres:
        seen = set(reviewed)
        chosen += ranker.top_across(genres, min_books - len(chosen), exclude=seen)
    return chosen[:max_books] if max_books else chosen


@dataclass
class PrefAlignJob:
    """The books of one user awaiting their aligned/misaligned descriptions."""

    profile: profile_pb2.UserProfile
    books: list[BookRecord]
    pairs: list[Pair] = field(default_factory=list)


class PrefAlignGenerator:
    def __init__(
        self, llm: LLMClient, max_tokens: int, max_chars: int, temperature: float = 0.0, seed: int = 13
    ) -> None:
        self.llm = llm
        self.max_chars = max_chars
        # Greedy by default, so results are deterministic and cached; a sampled run passes its seed.
        self.params = GenerationParams(
            temperature=temperature, max_tokens=max_tokens, seed=seed if temperature > 0 else None
        )
        # Descriptions generated ahead by :meth:`prefetch`, by conversation; :meth:`run` takes them out.
        self._ahead: dict[str, str] = {}

    def conversations(self, job: PrefAlignJob) -> list[list[dict[str, str]]]:
        who = persona(job.profile)
        out = []
        for book in job.books:
            description = clip(book.description, self.max_chars)
            for request in (describe_request, less_engaging_request):
                content = f"{who} {request(book.title, description)} {DESCRIPTION_SENTENCES}"
                out.append([{"role": "user", "content": content}])
        return out

    def prefetch(self, jobs: Sequence[PrefAlignJob]) -> int:
        """Generate the descriptions of ``jobs`` now, in one batch, for later :meth:`run` calls that each hold
        one of them (the service handles one profile at a time). What an earlier prefetch left unused is
        dropped. Returns the descriptions generated."""
        convos = [c for job in jobs for c in self.conversations(job)]
        self._ahead = dict(zip(map(_key, convos), self._generate(convos), strict=True))
        return len(convos)

    def run(
        self,
        jobs: Sequence[PrefAlignJob],
        omissions: Omissions,
        progress: Callable[[Iterable[int], int], Iterable[int]] | None = None,
    ) -> None:
        """Fill every job's pairs, generating all their descriptions in batched LLM calls (or taking those
        :meth:`prefetch` generated)."""
        convos = [c for job in jobs for c in self.conversations(job)]
        keys = [_key(c) for c in convos]
        ahead = {k: text for k in keys if (text := self._ahead.pop(k, None)) is not None}
        generated = iter(
            self._generate([c for c, k in zip(convos, keys, strict=True) if k not in ahead], progress)
        )
        completions = iter([ahead[k] if k in ahead else next(generated) for k in keys])
        for job in jobs:
            prompt = pref_align_prompt(job.profile)
            for book in job.books:
                aligned, misaligned = next(completions), next(completions)
                if not aligned or not misaligned or aligned == misaligned:
                    omissions.add("degenerate_generation")
                    continue
                job.pairs.append(
                    make_pair(
                        job.profile.user_id,
                        PREF_ALIGN_FACET,
                        prompt,
                        aligned,
                        misaligned,
                        (f"asin:{book.parent_asin}",),
                    )
                )

    def _generate(
        self,
        convos: list[list[dict[str, str]]],
        progress: Callable[[Iterable[int], int], Iterable[int]] | None = None,
    ) -> list[str]:
        starts: Iterable[int] = range(0, len(convos), _SLICE)
        if progress is not None and convos:
            starts = progress(starts, -(-len(convos) // _SLICE))
        texts: list[str] = []
        for start in starts:
            texts += [
                c.text.strip() for c in self.llm.chat_batch(convos[start : start + _SLICE], self.params)
            ]
        return texts


def _key(conversation: list[dict[str, str]]) -> str:
    return json.dumps(conversation, sort_keys=True)
