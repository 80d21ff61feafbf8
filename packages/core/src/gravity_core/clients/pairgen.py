"""A typed client for gravity.v1.PairGenService: a cohort's dataset manifest, or one user's pairs."""

from __future__ import annotations

from typing import Any

import grpc

from gravity.v1 import pairs_pb2, pairs_pb2_grpc
from gravity_core.clients.base import ServiceCallError, ServiceClient
from gravity_core.datasets import DatasetManifest


class PairGenClient(ServiceClient):
    def __init__(self, target: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(target, *args, **kwargs)
        self._stub = pairs_pb2_grpc.PairGenServiceStub(self.channel)

    def get_manifest(self, dataset_id: str, timeout_s: float | None = 30.0) -> DatasetManifest | None:
        """The cohort's manifest (datasets, shards, held-out evaluation books), or None before its first shard."""
        try:
            reply = self._call(
                self._stub.GetManifest, pairs_pb2.GetManifestRequest(dataset_id=dataset_id), timeout_s
            )
        except ServiceCallError as exc:
            if exc.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return DatasetManifest.model_validate_json(reply.manifest_json)

    def build_pairs(
        self, request: pairs_pb2.BuildPairsRequest, timeout_s: float | None = None
    ) -> pairs_pb2.BuildPairsResponse:
        return self._call(self._stub.BuildPairs, request, timeout_s, retry=False)
