"""Fit a prompt into the writer's context window by shortening its longest variable fields.

Cutting whole prompts from the middle (the backend's last resort) can remove the instruction itself; here
the description, reviews or summary are shortened from their end, so the request always survives, and
each cut is reported as a warning in the response.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gravity_core.errors import InvalidInput
from gravity_generator.methods import PromptSpec

ELLIPSIS = " [...]"
# Room for the chat template's role markers around the user message.
TEMPLATE_OVERHEAD_TOKENS = 32
_MIN_KEEP_TOKENS = 16


@dataclass
class FittedPrompt:
    text: str
    warnings: list[str] = field(default_factory=list)


def fit_prompt(
    spec: PromptSpec, budget_tokens: int, count_tokens: Callable[[str], int], context_window: int
) -> FittedPrompt:
    """Render ``spec`` within ``budget_tokens``; InvalidInput when even the fixed text does not fit."""
    values = dict(spec.fields)
    original: dict[str, int] = {}
    for _ in range(16):
        text = spec.render(values)
        over = count_tokens(text) - budget_tokens
        if over <= 0:
            warnings = [
                f"input truncated to fit the writer's {context_window}-token context: "
                f"{spec.labels.get(name, name)} shortened from {before} to {count_tokens(values[name])} tokens"
                for name, before in original.items()
            ]
            return FittedPrompt(text, warnings)
        candidates = [f for f in spec.shrinkable if count_tokens(values[f]) > _MIN_KEEP_TOKENS]
        if not candidates:
            break
        name = max(candidates, key=lambda f: count_tokens(values[f]))
        current = count_tokens(values[name])
        original.setdefault(name, current)
        keep = max(_MIN_KEEP_TOKENS, current - over - 8)
        values[name] = _shorten(values[name], keep / current)
    raise InvalidInput(
        "sampling.max_new_tokens",
        f"the prompt does not fit the writer's {context_window}-token context even with its inputs shortened; "
        "ask for fewer new tokens",
    )


def _shorten(text: str, ratio: float) -> str:
    """Keep about ``ratio`` of ``text``, cut at a word boundary."""
    text = text.removesuffix(ELLIPSIS)
    chars = max(1, int(len(text) * ratio))
    head = text[:chars]
    if " " in head[chars // 2 :]:
        head = head.rsplit(" ", 1)[0]
    return head.rstrip() + ELLIPSIS
