"""The one serving path behind every way of asking the generator (paper §3-4: a description per reader,
book and method).

The split follows vLLM's: each protocol has its request and response models (gRPC: gravity.v1's
PersonalizeRequest/Response; HTTP: gravity_generator.web.openai_protocol, which translates a chat completion
into a PersonalizeRequest), its router (the gRPC servicer in gravity_generator.service, the Starlette routes
in gravity_generator.web), and both call this module. :class:`PersonalizeServing` validates a
PersonalizeRequest into an engine :class:`~gravity_generator.engine.Job` (gravity_generator.requests), runs
it on the shared engine and micro-batcher, and counts it in gravity_core.metrics (per method) whichever
protocol it came from. Errors are gravity_core.errors, turned into a gRPC status or an HTTP status by the
caller through the same table (gravity_core.grpc.server.status_for).
"""

from __future__ import annotations

from collections.abc import Callable, Generator

from gravity.v1 import generation_pb2
from gravity_generator.app import GeneratorApp
from gravity_generator.engine import Job, MethodStatus, Personalizer, Result
from gravity_generator.requests import job_from_request
from gravity_generator.telemetry import observed, observed_stream


def _tokens(event: str | Result) -> int | None:
    return None if isinstance(event, str) else event.completion_tokens


class PersonalizeServing:
    """Personalize, PersonalizeStream and ListMethods on one GeneratorApp, for every protocol."""

    def __init__(self, app: GeneratorApp) -> None:
        self.app = app

    @property
    def engine(self) -> Personalizer:
        """The engine (Unavailable while the model, catalog and adapters load)."""
        return self.app.require_engine()

    def job(
        self,
        request: generation_pb2.PersonalizeRequest,
        deadline: float | None = None,
        alive: Callable[[], bool] | None = None,
    ) -> Job:
        """The validated job; InvalidInput / NotFound name the PersonalizeRequest field at fault."""
        return job_from_request(request, self.app, deadline, alive)

    def personalize(self, job: Job) -> Result:
        """One description (blocks until the micro-batcher has served it)."""
        engine = self.engine
        return observed(job.method, lambda: engine.run_one(job), lambda r: r.completion_tokens)

    def stream(self, job: Job) -> Generator[str | Result, None, None]:
        """Text deltas of the final stage, then the :class:`Result`; ``close()`` it to stop early."""
        return observed_stream(job.method, self.engine.stream(job), _tokens)

    def methods(self) -> list[MethodStatus]:
        return self.engine.methods()
