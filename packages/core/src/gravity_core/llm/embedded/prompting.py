"""Chat messages to model text: the chat template, token counts, and shortening a prompt to fit the context."""

from __future__ import annotations

from typing import Any

from gravity_core.errors import InvalidInput
from gravity_core.llm.types import Conversation
from gravity_core.logging import get_logger

log = get_logger(__name__)
TRUNCATION_MARK = " [...] "


class Prompter:
    def __init__(self, tokenizer: Any, context_window: int, model_name: str) -> None:
        self.tokenizer = tokenizer
        self.context_window = context_window
        self.model_name = model_name

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def render(self, messages: Conversation, add_generation_prompt: bool = True) -> str:
        return str(
            self.tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
            )
        )

    def fit_messages(self, messages: Conversation, budget: int) -> tuple[list[dict[str, str]], bool]:
        """Shorten the longest non-system message (from its middle) until the prompt fits ``budget`` tokens."""
        msgs = [dict(m) for m in messages]
        for attempt in range(8):
            overflow = self.count_tokens(self.render(msgs)) - budget
            if overflow <= 0:
                return msgs, attempt != 0
            candidates = [i for i, m in enumerate(msgs) if m["role"] != "system"] or list(range(len(msgs)))
            i = max(candidates, key=lambda k: len(msgs[k]["content"]))
            ids = self.tokenizer(msgs[i]["content"], add_special_tokens=False)["input_ids"]
            cut = min(len(ids) - 2, overflow + 8)
            if cut <= 0:
                break
            keep_head = (len(ids) - cut) // 2
            keep_tail = len(ids) - cut - keep_head
            msgs[i]["content"] = (
                self.tokenizer.decode(ids[:keep_head])
                + TRUNCATION_MARK
                + self.tokenizer.decode(ids[len(ids) - keep_tail :])
            )
        raise InvalidInput(
            "messages", f"prompt cannot be shortened to fit the {self.context_window}-token context"
        )

    def prompt(self, messages: Conversation, max_new_tokens: int) -> tuple[str, bool]:
        """The rendered prompt that leaves room for ``max_new_tokens``, and whether it had to be shortened."""
        msgs, truncated = self.fit_messages(messages, self.context_window - max_new_tokens)
        if truncated:
            log.warning("prompt_truncated", model=self.model_name, context_window=self.context_window)
        return self.render(msgs), truncated
