"""The annotator LLM infers a participant's stance on the seed statements they did not answer (paper D.4):

    "Given a user's value system: {annotated seed statements}, would the user agree, disagree, or be neutral
    to this statement: {additional seed statement}?"

The annotated statements form one shared prefix and every other statement is scored against it
(``score_choices_shared_prefix``: one KV cache on the embedded backend, prefix caching on vLLM), reading the
answer from the log-probabilities of agree / disagree / neutral where the backend has them. An answer that
cannot be read is recorded as unreadable (``STANCE_UNREADABLE`` in the profile), never as a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gravity_core.llm import ChoiceScores, LLMClient
from gravity_core.values import SeedStatement
from gravity_study.instruments import STANCE_LABELS, UNREADABLE, Inferred

PROMPT_HEAD = "Given a user's value system: "
PROMPT_QUESTION = ", would the user agree, disagree, or be neutral to this statement: "
ANSWER_INSTRUCTION = "\nAnswer with one word: agree, disagree or neutral."
PREFILL = "Answer:"


def value_system(annotated: Sequence[tuple[SeedStatement, str]]) -> str:
    """The participant's own answers as the prompt lists them: one '"statement" -> label' per line."""
    return "\n" + "\n".join(f'- "{st.text}" -> {label}' for st, label in annotated) + "\n"


def prompt_prefix(annotated: Sequence[tuple[SeedStatement, str]]) -> str:
    """Everything before the additional statement: the part all 140 questions share."""
    return PROMPT_HEAD + value_system(annotated) + PROMPT_QUESTION.removeprefix(",").lstrip()


def question(statement: SeedStatement, embedded: bool) -> str:
    # The embedded model's answer is read right after the prefilled "Answer:", so its rows carry only the
    # statement (each row is encoded per statement: the shorter, the cheaper); a chat endpoint is told to
    # answer with the bare word so its first token is the label.
    return f'"{statement.text}"?' + ("" if embedded else ANSWER_INSTRUCTION)


def infer_stances(
    llm: LLMClient,
    annotated: Mapping[str, str],
    bank: Mapping[str, SeedStatement],
) -> dict[str, Inferred]:
    """Statement id -> inferred stance for every statement of ``bank`` not in ``annotated``."""
    given = [(bank[sid], label) for sid, label in annotated.items()]
    targets = [st for sid, st in bank.items() if sid not in annotated]
    if not targets:
        return {}
    embedded = llm.info.backend == "embedded"
    # The embedded model continues "Answer:" so its next token is the label (a leading space keeps each
    # label one word-token); chat endpoints answer with the bare word, read from first-token log-probs.
    choices = tuple(f" {label}" for label in STANCE_LABELS) if embedded else STANCE_LABELS
    context = [{"role": "user", "content": prompt_prefix(given)}]
    scores = llm.score_choices_shared_prefix(
        context, [question(st, embedded) for st in targets], choices, prefill=PREFILL if embedded else ""
    )
    return {st.id: read(sc) for st, sc in zip(targets, scores, strict=True)}


def read(scores: ChoiceScores) -> Inferred:
    best = scores.best
    if best is None:
        return Inferred(UNREADABLE, None, scores.method)
    label = best.strip()
    confidence = float(scores.best_probability) if scores.method == "logprobs" else None
    return Inferred(label, confidence, scores.method)
