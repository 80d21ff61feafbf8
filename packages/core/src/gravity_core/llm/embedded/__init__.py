"""The embedded (in-process transformers + peft) LLM backend; see client.py for how its parts fit."""

from gravity_core.llm.embedded.client import EmbeddedLLM

__all__ = ["EmbeddedLLM"]
