"""Typed clients for every GRAVITY service; they need only gravity-core's base install (no torch)."""

from gravity_core.clients.base import ServiceCallError, ServiceClient
from gravity_core.clients.generator import GeneratorCallError, GeneratorClient, Sampling, build_request
from gravity_core.clients.judge import JudgeClient
from gravity_core.clients.pairgen import PairGenClient
from gravity_core.clients.profiler import ProfilerClient
from gravity_core.clients.trainer import TrainerClient

__all__ = [
    "GeneratorCallError",
    "GeneratorClient",
    "JudgeClient",
    "PairGenClient",
    "ProfilerClient",
    "Sampling",
    "ServiceCallError",
    "ServiceClient",
    "TrainerClient",
    "build_request",
]
