"""Values and beliefs (paper §3.2, appendix B): the user's stance on every seed statement.

Two protocols over the same prompt text:

* ``per-statement`` — the paper's: one call per statement, each re-reading the whole review history.
* ``shared-prefix`` — the history is encoded once and every statement is scored against it. On the
  embedded backend that is ``score_choices_shared_prefix`` (one KV cache); on an OpenAI-compatible
  endpoint either one request per statement with the history first (``prefix-cache``: vLLM's automatic
  prefix caching does the reuse) or several statements per call with a numbered answer format
  (``batched``, for OpenAI), falling back to single-statement scoring for lines it cannot parse.

A history read in several chunks is asked every statement once per chunk, and the chunks' answers are
pooled (:mod:`gravity_profiler.pooling`). Each result is a :class:`ChoiceScores` over ``STANCE_CHOICES``.
An answer no chunk could read becomes ``STANCE_UNREADABLE`` (never a value; the caller reports it). The
confidence is the chosen label's probability where the backend returned log-probabilities, and absent
where the label was parsed from text (the ``batched`` strategy, or an endpoint without log-probabilities).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gravity.v1 import profile_pb2
from gravity_core.llm import ChoiceRequest, ChoiceScores, GenerationParams, LLMClient, parse_choice
from gravity_core.values import SeedStatement
from gravity_profiler import prompts
from gravity_profiler.pooling import pool_chunks
from gravity_profiler.settings import ProfilerSettings

STANCE_OF_LABEL = {
    "support": profile_pb2.STANCE_SUPPORT,
    "no support": profile_pb2.STANCE_OPPOSE,
    "neutral": profile_pb2.STANCE_NEUTRAL,
}
LABEL_OF_CHOICE = dict(zip(prompts.STANCE_CHOICES, prompts.STANCE_LABELS, strict=True))
_ANSWER_LINE = re.compile(r"^\s*(?:statement\s*)?(\d+)\s*[:.)\-]\s*(.+?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class StanceOutcome:
    statement: SeedStatement
    stance: int  # profile_pb2.Stance
    # The chosen label's probability; None where the answer was parsed from text (no probabilities).
    confidence: float | None
    usable: bool
    raw_text: str | None = None

    def to_proto(self) -> profile_pb2.ValueStance:
        message = profile_pb2.ValueStance(
            statement_id=self.statement.id,
            stance=self.stance,  # type: ignore[arg-type]
            statement=self.statement.text,
            framework=self.statement.framework,
            topic=self.statement.topic,
        )
        if self.confidence is not None:
            message.confidence = self.confidence
        return message


def outcome(statement: SeedStatement, scores: ChoiceScores) -> StanceOutcome:
    """Map scores over STANCE_CHOICES to a stance; an unreadable answer is STANCE_UNREADABLE."""
    best = scores.best
    if best is None:
        return StanceOutcome(statement, profile_pb2.STANCE_UNREADABLE, None, False, scores.raw_text)
    confidence = float(scores.best_probability) if scores.method == "logprobs" else None
    return StanceOutcome(statement, STANCE_OF_LABEL[LABEL_OF_CHOICE[best]], confidence, True)


def infer_stances(
    llm: LLMClient,
    contexts: Sequence[str],
    statements: Sequence[SeedStatement],
    protocol: str,
    settings: ProfilerSettings,
    batched_contexts: Sequence[str] | None = None,
) -> list[ChoiceScores]:
    """Scores over STANCE_CHOICES for each statement, in order, pooled over the history's chunks.

    ``contexts`` holds the shared stance prompt (chunk, demographics, single-statement question) of each
    chunk; ``batched_contexts`` the same with the several-statements question (the ``batched`` strategy).
    """
    if not contexts:
        raise ValueError("at least one chunk context is required")
    per_chunk = [
        infer_chunk_stances(
            llm,
            context,
            statements,
            protocol,
            settings,
            batched_contexts[c] if batched_contexts is not None else None,
        )
        for c, context in enumerate(contexts)
    ]
    return pool_chunks(per_chunk)


def infer_chunk_stances(
    llm: LLMClient,
    context: str,
    statements: Sequence[SeedStatement],
    protocol: str,
    settings: ProfilerSettings,
    batched_context: str | None = None,
) -> list[ChoiceScores]:
    """Scores over STANCE_CHOICES for each statement against one chunk's stance prompt."""
    if not statements:
        return []
    questions = [prompts.stance_question(s.text) for s in statements]
    if protocol == "per-statement":
        return per_statement(llm, context, questions)
    if llm.info.backend != "embedded" and settings.remote_strategy == "batched":
        return _batched_remote(
            llm, batched_context or context, context, statements, settings.remote_batch_size
        )
    return llm.score_choices_shared_prefix(_user(context), questions, prompts.STANCE_CHOICES)


def per_statement(llm: LLMClient, context: str, questions: Sequence[str]) -> list[ChoiceScores]:
    """The paper's protocol: every statement is a separate request carrying the full history."""
    return llm.score_choices_batch(
        [ChoiceRequest(_user(context + q), prompts.STANCE_CHOICES) for q in questions]
    )


def _batched_remote(
    llm: LLMClient,
    batched_context: str,
    single_context: str,
    statements: Sequence[SeedStatement],
    batch_size: int,
) -> list[ChoiceScores]:
    groups = [statements[i : i + batch_size] for i in range(0, len(statements), batch_size)]
    conversations = [
        _user(batched_context + prompts.numbered_statements([s.text for s in group])) for group in groups
    ]
    # Each answer line is ~4 tokens; leave room for a little chatter around them.
    params = GenerationParams(max_tokens=8 * batch_size + 16, temperature=0.0)
    completions = llm.chat_batch(conversations, params)
    results: list[ChoiceScores | None] = []
    for group, completion in zip(groups, completions, strict=True):
        answers = parse_numbered_answers(completion.text, len(group))
        for k in range(len(group)):
            label = answers.get(k + 1)
            if label is None:
                results.append(None)
                continue
            choice = prompts.STANCE_CHOICES[prompts.STANCE_LABELS.index(label)]
            results.append(
                ChoiceScores(
                    prompts.STANCE_CHOICES,
                    tuple(1.0 if c == choice else 0.0 for c in prompts.STANCE_CHOICES),
                    "parsed",
                    completion.prompt_tokens // max(1, len(group)),
                    True,
                    label,
                )
            )
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        retried = per_statement(
            llm, single_context, [prompts.stance_question(statements[i].text) for i in missing]
        )
        for i, scores in zip(missing, retried, strict=True):
            results[i] = scores
    return [r for r in results if r is not None]


def parse_numbered_answers(text: str, n: int) -> dict[int, str]:
    """{statement number: label} from lines like '3: no support'; numbers outside 1..n are ignored."""
    out: dict[int, str] = {}
    for line in text.splitlines():
        match = _ANSWER_LINE.match(line)
        if not match:
            continue
        number = int(match.group(1))
        label = parse_choice(match.group(2), prompts.STANCE_LABELS)
        if 1 <= number <= n and label is not None and number not in out:
            out[number] = label
    return out


def _user(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]
