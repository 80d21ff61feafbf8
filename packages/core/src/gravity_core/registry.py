"""The one list of GRAVITY's services: the ``gravity.services`` entry points the service packages declare.

Each service package names its runner (``run_service(settings, port)``) under ``gravity.services``; installing
the package is what makes a service exist. A development tool that runs like a service (the stand-in LLM
server) registers under ``gravity.dev_services``: `gravity serve` runs both kinds, while the demo, `gravity up`
and the tests start the pipeline services only.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

SERVICE_GROUP = "gravity.services"
DEV_GROUP = "gravity.dev_services"


def service_names() -> tuple[str, ...]:
    """The installed pipeline services, in data-flow order (their default gRPC ports), then by name."""
    from gravity_core.config import GrpcSettings

    defaults = GrpcSettings().ports
    names = {ep.name for ep in entry_points(group=SERVICE_GROUP)}
    return tuple(sorted(names, key=lambda n: (defaults.get(n, 1 << 20), n)))


def runners(include_dev: bool = True) -> dict[str, EntryPoint]:
    """name -> the entry point of its runner, for every service (and development tool) installed."""
    groups = (SERVICE_GROUP, DEV_GROUP) if include_dev else (SERVICE_GROUP,)
    return {ep.name: ep for group in groups for ep in entry_points(group=group)}
