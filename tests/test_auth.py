"""With a bearer token configured, every RPC of every service — unary and streaming — and reflection refuse an
anonymous caller; only the health Check answers (probes), and Watch, which holds a server thread, does not."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import grpc
import pytest
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from harness import Stack

import gravity.v1
from gravity_core.config import GrpcSettings
from gravity_core.grpc.client import make_channel
from gravity_core.registry import service_names

TOKEN = "test-token-5b1e"


def _all_rpcs() -> dict[str, list[tuple[str, object]]]:
    """Service full name -> [(method path, method descriptor)] for every service in the wire contract."""
    out: dict[str, list[tuple[str, object]]] = {}
    for info in pkgutil.iter_modules(gravity.v1.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"gravity.v1.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            out[service.full_name] = [(f"/{service.full_name}/{m.name}", m) for m in service.methods]
    return out


def _call(channel: grpc.Channel, path: str, method: object) -> grpc.StatusCode:
    request_cls = message_factory.GetMessageClass(method.input_type)  # type: ignore[attr-defined]
    response_cls = message_factory.GetMessageClass(method.output_type)  # type: ignore[attr-defined]
    kwargs = {
        "request_serializer": request_cls.SerializeToString,
        "response_deserializer": response_cls.FromString,
    }
    client_stream, server_stream = method.client_streaming, method.server_streaming  # type: ignore[attr-defined]
    try:
        if client_stream and server_stream:
            list(channel.stream_stream(path, **kwargs)(iter([request_cls()]), timeout=30))
        elif client_stream:
            channel.stream_unary(path, **kwargs)(iter([request_cls()]), timeout=30)
        elif server_stream:
            list(channel.unary_stream(path, **kwargs)(request_cls(), timeout=30))
        else:
            channel.unary_unary(path, **kwargs)(request_cls(), timeout=30)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_every_rpc_of_every_service_needs_the_token(tmp_path: Path) -> None:
    # No broker at this address: services come up NOT_SERVING, which is all an auth check needs.
    stack = Stack(tmp_path / "stack", "127.0.0.1:1", overrides={"grpc.auth_token": TOKEN})
    rpcs = _all_rpcs()
    by_service = {
        name: [s for s in rpcs if s.lower().endswith(f".{name}service")] for name in service_names()
    }
    assert all(by_service.values()), by_service  # the contract names a gRPC service for each process
    try:
        for name in service_names():
            stack.start(name)
        for name in service_names():
            stack.wait_health(name, "NOT_SERVING", timeout_s=300)  # Check answers without a token
        anonymous = GrpcSettings(**{**stack.settings.grpc.model_dump(), "auth_token": None})
        wrong = GrpcSettings(**{**stack.settings.grpc.model_dump(), "auth_token": "not-the-token"})
        for name in service_names():
            target = stack.settings.grpc.target(name)
            for settings in (anonymous, wrong):
                with make_channel(target, settings) as channel:
                    for service in by_service[name]:
                        for path, method in rpcs[service]:
                            assert _call(channel, path, method) == grpc.StatusCode.UNAUTHENTICATED, path
                    with pytest.raises(grpc.RpcError) as err:
                        list(
                            reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=30
                            )
                        )
                    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
                    with pytest.raises(grpc.RpcError) as err:
                        next(
                            iter(
                                health_pb2_grpc.HealthStub(channel).Watch(
                                    health_pb2.HealthCheckRequest(), timeout=30
                                )
                            )
                        )
                    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # with the token the same channel kinds get through to the services
            first = health_pb2_grpc.HealthStub(stack.channel(name)).Watch(
                health_pb2.HealthCheckRequest(), timeout=30
            )
            assert next(iter(first)).status == health_pb2.HealthCheckResponse.NOT_SERVING
            first.cancel()
    finally:
        stack.close()
