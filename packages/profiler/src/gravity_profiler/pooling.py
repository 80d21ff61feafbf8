"""Pooling one question's answers over the chunks of a long review history (paper §3.2, whole histories).

Each chunk of the history is asked the same question; its answer is a distribution over the allowed labels.

Rule (``sum-logprob``): the chunks' log-probabilities are summed per label and renormalised (a softmax), i.e.
the product of the per-chunk distributions. Read as evidence, each chunk is an independent observation of the
same user, and with a uniform prior the posterior over labels is proportional to the product of the chunks'
likelihoods. It is the rule that lets the part of a history that speaks to a question decide it: a chunk with
nothing to say answers near-uniformly and leaves the product unchanged, where averaging probabilities would
dilute a clear answer from one chunk with every indifferent one (with 10 chunks, a 0.9 answer averaged with
nine uniform ones drops to ~0.39). The price is confidence that grows with agreeing chunks; the confidence is
the pooled distribution's, and it is reported as such.

Answers parsed from text (no probabilities) cannot be multiplied: they are pooled by majority vote over the
chunks, ties going to the most recent chunk (the first), and the pooled answer carries no probability.
A chunk whose answer is unreadable is left out; an answer no chunk could read stays unreadable.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from gravity_core.llm import ChoiceScores

SUM_LOGPROB = "sum-logprob"
VOTE = "vote"
SINGLE_CHUNK = "none"
# Floor for a zero probability (a label outside an endpoint's top log-probs): finite, and still decisive.
_FLOOR = 1e-9


def pool(per_chunk: Sequence[ChoiceScores]) -> ChoiceScores:
    """One answer from the same question's answers on every chunk (see the module docstring)."""
    if not per_chunk:
        raise ValueError("nothing to pool")
    choices = per_chunk[0].choices
    tokens = sum(s.prompt_tokens for s in per_chunk)
    readable = [s for s in per_chunk if s.usable]
    if not readable:
        raw = " | ".join(s.raw_text for s in per_chunk if s.raw_text) or None
        return ChoiceScores.unusable(choices, raw, tokens)
    if len(readable) == 1:
        only = readable[0]
        return ChoiceScores(choices, only.probabilities, only.method, tokens, True, only.raw_text)
    if all(s.method == "logprobs" for s in readable):
        sums = [sum(math.log(max(s.probabilities[j], _FLOOR)) for s in readable) for j in range(len(choices))]
        top = max(sums)
        weights = [math.exp(v - top) for v in sums]
        total = sum(weights)
        return ChoiceScores(choices, tuple(w / total for w in weights), "logprobs", tokens)
    votes = Counter(s.best for s in readable)
    most = max(votes.values())
    winner = next(s.best for s in readable if votes[s.best] == most)  # the most recent chunk breaks ties
    return ChoiceScores(
        choices, tuple(1.0 if c == winner else 0.0 for c in choices), "parsed", tokens, True, winner
    )


def pool_chunks(per_chunk: Sequence[Sequence[ChoiceScores]]) -> list[ChoiceScores]:
    """``per_chunk[c][i]`` is question i's answer on chunk c; returns one pooled answer per question."""
    if not per_chunk:
        return []
    return [pool([chunk[i] for chunk in per_chunk]) for i in range(len(per_chunk[0]))]


def pooling_rule(chunks: int, pooled: Sequence[ChoiceScores]) -> str:
    """What a profile's evidence says about pooling: none for one chunk, else the rules actually used."""
    if chunks <= 1:
        return SINGLE_CHUNK
    methods = {s.method for s in pooled if s.usable}
    rules = [r for m, r in (("logprobs", SUM_LOGPROB), ("parsed", VOTE)) if m in methods]
    return "+".join(rules) or SUM_LOGPROB
