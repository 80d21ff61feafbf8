"""A typed client for gravity.v1.JudgeService: evaluate generations (streamed progress), or single judgments."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import grpc

from gravity.v1 import judge_pb2, judge_pb2_grpc
from gravity_core.clients.base import ServiceClient
from gravity_core.errors import Unavailable

PROTOCOLS = {
    "paper": judge_pb2.JUDGE_PROTOCOL_PAPER,
    "debiased": judge_pb2.JUDGE_PROTOCOL_DEBIASED,
    "both": judge_pb2.JUDGE_PROTOCOL_BOTH,
}


class JudgeClient(ServiceClient):
    def __init__(self, target: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(target, *args, **kwargs)
        self._stub = judge_pb2_grpc.JudgeServiceStub(self.channel)

    def evaluate(
        self,
        generations: Iterable[judge_pb2.Generation],
        protocol: str = "",
        report_name: str = "",
        personas: Iterable[judge_pb2.JudgePersona] = (),
        on_progress: Callable[[judge_pb2.EvaluateProgress], None] | None = None,
        timeout_s: float | None = None,
    ) -> judge_pb2.EvaluateResult:
        """Judge ``generations`` (protocol paper|debiased|both; empty = the server's default); progress events
        go to ``on_progress``; returns the result with the report."""
        request = judge_pb2.EvaluateRequest(
            generations=list(generations),
            personas=list(personas),
            report_name=report_name,
            protocol=PROTOCOLS[protocol] if protocol else judge_pb2.JUDGE_PROTOCOL_UNSPECIFIED,
        )
        call = self._stub.Evaluate(
            request, timeout=timeout_s or self.timeout_s, wait_for_ready=self.wait_for_ready
        )
        try:
            for event in call:
                if event.HasField("progress"):
                    if on_progress is not None:
                        on_progress(event.progress)
                else:
                    return event.result
        except grpc.RpcError as exc:
            raise self.failed(exc, self._stub.Evaluate, timeout_s or self.timeout_s) from None
        finally:
            call.cancel()
        raise Unavailable("the judge ended the evaluation without a result")
