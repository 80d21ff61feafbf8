"""Where GRAVITY keeps caches and local state."""

from __future__ import annotations

import os
from pathlib import Path


def gravity_home() -> Path:
    """Root for model caches, response caches and the default artifact store.

    ``GRAVITY_HOME`` wins; otherwise ``$XDG_CACHE_HOME/gravity`` or ``~/.cache/gravity``.
    """
    env = os.environ.get("GRAVITY_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "gravity"


def models_dir() -> Path:
    return gravity_home() / "models"
