"""A typed client for gravity.v1.ProfilerService: stream raw lines in, read profiles back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc

from gravity.v1 import profile_pb2, profile_pb2_grpc
from gravity_core.clients.base import ServiceCallError, ServiceClient


class ProfilerClient(ServiceClient):
    def __init__(self, target: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(target, *args, **kwargs)
        self._stub = profile_pb2_grpc.ProfilerServiceStub(self.channel)

    def ingest(
        self, requests: Iterable[profile_pb2.IngestRecordsRequest], timeout_s: float | None = None
    ) -> profile_pb2.IngestRecordsResponse:
        """Stream reviews, metadata and demographics lines; bad lines are counted in the response."""
        return self._call(self._stub.IngestRecords, iter(requests), timeout_s, retry=False)

    def get_profile(self, user_id: str, timeout_s: float | None = 30.0) -> profile_pb2.UserProfile | None:
        """The user's latest profile, or None while it is not built yet."""
        try:
            reply = self._call(
                self._stub.GetProfile, profile_pb2.GetProfileRequest(user_id=user_id), timeout_s
            )
        except ServiceCallError as exc:
            if exc.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply.profile

    def build_profile(
        self, request: profile_pb2.BuildProfileRequest, timeout_s: float | None = None
    ) -> profile_pb2.BuildProfileResponse:
        return self._call(self._stub.BuildProfile, request, timeout_s, retry=False)
