"""The generation methods a persona swap can describe books with (paper Table 2 rows), kept apart from
swap.py so the command line can offer them without importing the judge."""

from __future__ import annotations

from gravity_core import names

# Prompt methods need only the writer; an adapter method needs the GRAVITY adapter of `gravity fidelity train`.
PROMPT_METHODS = (names.USER_SUMMARY, names.DEMO_BASED)
ADAPTER_METHODS = (names.GRAVITY,)
SWAP_METHODS = (*PROMPT_METHODS, *ADAPTER_METHODS)
DEFAULT_SWAP_METHOD = names.USER_SUMMARY
