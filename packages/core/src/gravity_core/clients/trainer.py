"""A typed client for gravity.v1.TrainerService: submit runs, follow them, list the adapters."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import grpc

from gravity.v1 import training_pb2, training_pb2_grpc
from gravity_core.clients.base import ServiceClient


class TrainerClient(ServiceClient):
    def __init__(self, target: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(target, *args, **kwargs)
        self._stub = training_pb2_grpc.TrainerServiceStub(self.channel)

    def submit(
        self,
        dataset: str,
        recipe: str = "",
        overrides: Mapping[str, str] | None = None,
        adapter_id: str = "",
        timeout_s: float | None = 60.0,
    ) -> training_pb2.SubmitResponse:
        request = training_pb2.SubmitRequest(
            dataset=dataset, recipe=recipe, overrides=dict(overrides or {}), adapter_id=adapter_id
        )
        return self._call(self._stub.Submit, request, timeout_s)  # idempotent: a run's id hashes its inputs

    def status(self, run_id: str, timeout_s: float | None = None) -> Iterator[training_pb2.StatusResponse]:
        """The run's progress until it ends."""
        call = self._stub.Status(
            training_pb2.StatusRequest(run_id=run_id),
            timeout=timeout_s or self.timeout_s,
            wait_for_ready=self.wait_for_ready,
        )
        try:
            yield from call
        except grpc.RpcError as exc:
            raise self.failed(exc, self._stub.Status, timeout_s or self.timeout_s) from None
        finally:
            call.cancel()

    def list_adapters(self, timeout_s: float | None = 30.0) -> list[training_pb2.AdapterRef]:
        return list(
            self._call(self._stub.ListAdapters, training_pb2.ListAdaptersRequest(), timeout_s).adapters
        )
