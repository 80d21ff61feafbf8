"""Judge test helpers: hand-made profiles and generations, and a scripted judge model for fast logic tests.

The scripted model is a real LLMClient whose answers are a pure function of the prompt, so tests can set
up a judge that prefers a description's content (position-free) or one that always answers "A"
(maximally position-biased) and check what the metrics make of it. Real-model tests use the session
``embedded_llm`` fixture instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from gravity.v1 import judge_pb2, profile_pb2
from gravity_core.llm import (
    ChoiceScores,
    Completion,
    GenerationParams,
    LLMClient,
    ModelInfo,
    StreamEvent,
    Usage,
)
from gravity_core.names import method_fields

VIVID = "VIVID"  # the scripted judge's favourite word

USERS = {
    "U_USA": ("senior", "female", "USA", "A retired teacher who loves cozy mysteries."),
    "U_BRA": ("young", "male", "Brazil", "A surfer who reads thrillers for fun."),
    "U_IND": ("middle-aged", "female", "India", "An engineer who reads about entrepreneurs."),
    "U_JPN": ("young", "male", "Japan", "A student who draws fan art of epic fantasy worlds."),
}


def profile(user_id: str, age: str, gender: str, country: str, summary: str) -> profile_pb2.UserProfile:
    p = profile_pb2.UserProfile(user_id=user_id, user_summary=summary, built_at_ms=1)
    p.demographics.age_group.value = age
    p.demographics.gender.value = gender
    p.demographics.country.value = country
    return p


def generation(
    user_id: str, asin: str, method: str, text: str, genre_group: str = "Literature & Fiction"
) -> judge_pb2.Generation:
    return judge_pb2.Generation(
        user_id=user_id,
        parent_asin=asin,
        **method_fields(method),
        text=text,
        book_title=f"Book {asin}",
        genre="Cozy Mysteries",
        genre_group=genre_group,
        model="test",
    )


def unit_rows(
    user_id: str, asin: str, methods: dict[str, str], genre_group: str = "Literature & Fiction"
) -> list[judge_pb2.Generation]:
    return [generation(user_id, asin, method, text, genre_group) for method, text in methods.items()]


ORIGINAL = "A quiet story about a lighthouse keeper and the letters she never sent."
METHOD_TEXTS = {
    "original": ORIGINAL,
    "base-rewrite": "A story about a lighthouse keeper, her letters, and the sea around her island.",
    "lamp": f"A {VIVID} tale of a lighthouse keeper whose unsent letters hold a village's secrets.",
    "gravity": f"A {VIVID}, warm story of courage: a lighthouse keeper finally sends her letters home.",
    "gravity-no-values": "A lighthouse keeper writes letters; a plain retelling of her year on the island.",
}


_DESCRIPTION = re.compile(r'<description id="([A-Z])">\n(.*?)\n</description>', re.DOTALL)


def described(prompt: str) -> dict[str, str]:
    """Label -> description text as shown in a judge prompt."""
    return {m.group(1): m.group(2) for m in _DESCRIPTION.finditer(prompt)}


def _rated_text(prompt: str) -> str:
    return described(prompt).get("X", "")


def _ranking(prompt: str, mode: str) -> list[str]:
    """The scripted judge's full ranking: VIVID descriptions first (content) or the shown order (position)."""
    shown = described(prompt)
    if mode == "position":
        return list(shown)
    return sorted(shown, key=lambda label: (VIVID not in shown[label], label))


class ScriptedJudge(LLMClient):
    """Answers from the prompt: a description containing VIVID is preferred and rated 5 (content mode), the
    first slot always wins (position mode), or the content preference is multiplied by a planted prior over
    slots (prior mode: P(slot j) ∝ prior[j] · (3 if VIVID else 1)). ``text_answer`` scripts free-text
    answers instead. ``backend="embedded"`` makes the judge read rankings by constrained decoding."""

    def __init__(
        self,
        mode: str = "content",
        confidence: float = 0.9,
        text_answer: Callable[[str], str] | None = None,
        backend: str = "scripted",
        prior: Sequence[float] = (),
    ) -> None:
        self.mode = mode
        self.confidence = confidence
        self.text_answer = text_answer
        self.backend = backend
        self.prior = tuple(prior)
        self.usage = Usage()
        self.prompts: list[str] = []
        self.prefills: list[str] = []

    @property
    def info(self) -> ModelInfo:
        return ModelInfo("scripted-judge", self.backend, 8192)

    def _distribution(self, prompt: str, choices: Sequence[str], prefill: str = "") -> list[float]:
        labels = [c.strip() for c in choices]
        if labels[0] == "1":  # Likert
            best = 4 if VIVID in _rated_text(prompt) else 1
            return [self.confidence if i == best else (1 - self.confidence) / 4 for i in range(5)]
        shown = described(prompt)
        if self.mode == "prior":
            slots = list(shown)
            weights = [
                self.prior[slots.index(label)] * (3.0 if VIVID in shown.get(label, "") else 1.0)
                for label in labels
            ]
            return [w / sum(weights) for w in weights]
        if prefill.startswith("Ranking:"):  # constrained ranking: the best label not yet ranked
            favourite = next(label for label in _ranking(prompt, self.mode) if label in labels)
        elif self.mode == "position":
            favourite = labels[0]
        else:
            vivid = [label for label in labels if VIVID in shown.get(label, "")]
            favourite = vivid[0] if vivid else labels[-1]
        if len(labels) == 1:
            return [1.0]
        rest = (1 - self.confidence) / (len(labels) - 1)
        return [self.confidence if label == favourite else rest for label in labels]

    def score_choices(self, messages, choices, adapter=None, prefill=""):  # type: ignore[no-untyped-def]
        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        self.prefills.append(prefill)
        self.usage.add(len(prompt) // 4)
        return ChoiceScores(
            tuple(choices), tuple(self._distribution(prompt, choices, prefill)), "logprobs", len(prompt) // 4
        )

    def chat(self, messages, params=None, adapter=None):  # type: ignore[no-untyped-def]
        return self.chat_batch([messages], params)[0]

    def chat_batch(
        self, conversations, params: GenerationParams | None = None, adapters=None
    ) -> list[Completion]:  # type: ignore[no-untyped-def]
        out = []
        for convo in conversations:
            prompt = convo[-1]["content"]
            self.prompts.append(prompt)
            if self.text_answer is not None:
                text = self.text_answer(prompt)
            elif "from 1 to 5 only" in prompt:
                text = "5" if VIVID in _rated_text(prompt) else "2"
            elif "Rank all" in prompt:
                text = "Ranking: " + " > ".join(_ranking(prompt, self.mode))
            else:
                labels = list(described(prompt))
                vivid = [k for k, v in described(prompt).items() if VIVID in v]
                text = f"Description {vivid[0] if vivid else labels[-1]}"
            self.usage.add(len(prompt) // 4, 2)
            out.append(Completion(text, len(prompt) // 4, 2, "scripted-judge"))
        return out

    def stream_chat(self, messages, params=None, adapter=None) -> Iterator[StreamEvent]:  # type: ignore[no-untyped-def]
        yield StreamEvent(final=self.chat(messages, params))
