"""Children that neither outlive nor share a process group with the process that started them."""

from __future__ import annotations

import os
import signal
import sys


def own_session_dying_with_parent() -> None:
    """In a new child (a ``preexec_fn`` or right after ``fork``): a session of its own, so the parent can stop
    it and everything it starts with one ``killpg``, and, on Linux, SIGTERM when its parent exits, so a crashed
    parent leaves no orphan behind to race its restart."""
    os.setsid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
