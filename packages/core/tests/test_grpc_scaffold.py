"""The shared gRPC scaffold with a small real servicer on 127.0.0.1."""

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gravity.v1 import profile_pb2, profile_pb2_grpc
from gravity_core.errors import NotFound, RateLimited
from gravity_core.grpc import make_channel, require_field, wait_for_serving
from gravity_core.grpc.client import health_status
from gravity_core.service import start_in_thread


class _Profiles(profile_pb2_grpc.ProfilerServiceServicer):
    def __init__(self) -> None:
        self.refusals = 0

    def GetProfile(self, request, context):
        user_id = require_field(request, "user_id")
        if user_id == "busy":
            if self.refusals < 2:
                self.refusals += 1
                raise RateLimited("busy: 8 calls in flight; retry shortly", retry_after_s=0.05)
            return profile_pb2.GetProfileResponse(profile=profile_pb2.UserProfile(user_id="busy"))
        if user_id == "boom":
            raise RuntimeError("secret internal detail")
        if user_id != "known":
            raise NotFound("user_id", f"no profile for {user_id}")
        return profile_pb2.GetProfileResponse(profile=profile_pb2.UserProfile(user_id="known"))

    def BuildProfile(self, request, context):
        require_field(request, "demographics.country.value")
        return profile_pb2.BuildProfileResponse()


class _Service:
    name = "profiler"

    def __init__(self) -> None:
        self.is_ready = True
        self.stopped = False

    def register(self, host) -> None:
        host.add(
            profile_pb2_grpc.add_ProfilerServiceServicer_to_server, _Profiles(), "gravity.v1.ProfilerService"
        )

    def start(self) -> None:
        pass

    def ready(self) -> bool:
        return self.is_ready

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def running(make_settings):
    service = _Service()
    run = start_in_thread(service, make_settings(), port=0, poll_s=0.1)
    yield run
    run.stop(0.5)
    assert service.stopped


def test_health_validation_and_errors(running) -> None:
    channel = make_channel(running.target)
    wait_for_serving(channel, "gravity.v1.ProfilerService", timeout_s=10)
    stub = profile_pb2_grpc.ProfilerServiceStub(channel)

    with pytest.raises(grpc.RpcError) as err:
        stub.GetProfile(profile_pb2.GetProfileRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "user_id" in err.value.details()

    with pytest.raises(grpc.RpcError) as err:
        stub.BuildProfile(profile_pb2.BuildProfileRequest(user_id="u"), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith(
        "demographics"
    )

    with pytest.raises(grpc.RpcError) as err:
        stub.GetProfile(profile_pb2.GetProfileRequest(user_id="ghost"), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "user_id" in err.value.details()

    with pytest.raises(grpc.RpcError) as err:
        stub.GetProfile(profile_pb2.GetProfileRequest(user_id="boom"), timeout=5)
    assert err.value.code() == grpc.StatusCode.INTERNAL and "secret" not in err.value.details()

    assert (
        stub.GetProfile(profile_pb2.GetProfileRequest(user_id="known"), timeout=5).profile.user_id == "known"
    )


def test_health_follows_readiness(running) -> None:
    import time

    channel = make_channel(running.target)
    wait_for_serving(channel, timeout_s=10)
    running.service.is_ready = False
    deadline = time.monotonic() + 5
    while health_status(channel) != "NOT_SERVING" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert health_status(channel) == "NOT_SERVING"
    running.service.is_ready = True
    wait_for_serving(channel, timeout_s=5)


def test_reflection_lists_the_service(running) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(make_channel(running.target))
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"gravity.v1.ProfilerService", "grpc.health.v1.Health"} <= names


def test_bearer_token_auth(make_settings) -> None:
    settings = make_settings(**{"grpc.auth_token": "s3cret"})
    run = start_in_thread(_Service(), settings, port=0, poll_s=0.1)
    try:
        # health stays open for Kubernetes probes
        health = health_pb2_grpc.HealthStub(make_channel(run.target, token="unused"))
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status in (1, 2)
        anonymous = profile_pb2_grpc.ProfilerServiceStub(grpc.insecure_channel(run.target))
        with pytest.raises(grpc.RpcError) as err:
            anonymous.GetProfile(profile_pb2.GetProfileRequest(user_id="known"), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        authed = profile_pb2_grpc.ProfilerServiceStub(make_channel(run.target, settings.grpc))
        assert (
            authed.GetProfile(profile_pb2.GetProfileRequest(user_id="known"), timeout=5).profile.user_id
            == "known"
        )
    finally:
        run.stop(0.5)


def _http_status(url: str) -> int | str:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return "UNREACHABLE"


def _wait_http(url: str, want: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while (status := _http_status(url)) != want:
        assert time.monotonic() < deadline, f"{url}: {status}, wanted {want}"
        time.sleep(0.1)


def test_a_service_is_live_only_once_its_start_returned(make_settings) -> None:
    """Liveness (gRPC `liveness` and /livez) means every listener the service opens in start() — e.g. the
    generator's HTTP port — accepts connections: a client that waits for liveness must not be refused."""
    from gravity_core.broker import free_port
    from gravity_core.grpc.server import LIVENESS_SERVICE

    port, ops_port = free_port(), free_port()

    class _SlowStart(_Service):
        def start(self) -> None:
            self.seen = (
                health_status(grpc.insecure_channel(f"127.0.0.1:{port}"), LIVENESS_SERVICE),
                _http_status(f"http://127.0.0.1:{ops_port}/livez"),
            )

    service = _SlowStart()
    run = start_in_thread(service, make_settings(**{"grpc.health_port": ops_port}), port=port, poll_s=0.1)
    try:
        assert service.seen == ("NOT_SERVING", 503)  # during start(): not live yet
        assert health_status(grpc.insecure_channel(f"127.0.0.1:{port}"), LIVENESS_SERVICE) == "SERVING"
        assert _http_status(f"http://127.0.0.1:{ops_port}/livez") == 200
    finally:
        run.stop(0.5)


def test_liveness_readiness_and_metrics_on_the_plaintext_ops_port(make_settings) -> None:
    service = _Service()
    service.is_ready = False
    run = start_in_thread(service, make_settings(**{"grpc.health_port": 0}), port=0, poll_s=0.1)
    ops = f"http://127.0.0.1:{run.host.health_bound_port}"
    try:
        assert run.host.health_bound_port and run.host.health_bound_port != run.port
        # liveness stays 200 while a dependency is down; readiness does not
        assert _http_status(f"{ops}/livez") == 200
        assert _http_status(f"{ops}/readyz") == 503
        service.is_ready = True
        _wait_http(f"{ops}/readyz", 200, timeout_s=5)
        # the ops port serves probes and metrics only: no gRPC, no other path
        assert _http_status(f"{ops}/v1/profiles/known") == 404
        stub = profile_pb2_grpc.ProfilerServiceStub(grpc.insecure_channel(ops.removeprefix("http://")))
        with pytest.raises(grpc.RpcError):
            stub.GetProfile(profile_pb2.GetProfileRequest(user_id="known"), timeout=2)
        # an RPC on the main port shows up in the metrics Prometheus scrapes from the ops port
        main = profile_pb2_grpc.ProfilerServiceStub(grpc.insecure_channel(run.target))
        main.GetProfile(profile_pb2.GetProfileRequest(user_id="known"), timeout=5)
        import urllib.request

        with urllib.request.urlopen(f"{ops}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        assert 'gravity_rpc_requests_total{code="OK",rpc="GetProfile"' in text
    finally:
        run.stop(0.5)
    assert _http_status(f"{ops}/livez") == "UNREACHABLE"


def _openssl(*args: str, cwd) -> None:
    import subprocess

    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def test_mutual_tls_with_health_port_for_probes(make_settings, tmp_path) -> None:
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not found: cannot mint test certificates")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=tmp_path)  # fmt: skip
    (tmp_path / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "tls.key", "-out", "tls.csr", cwd=tmp_path)  # fmt: skip
    _openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "1", "-extfile", "ext.cnf", "-out", "tls.crt", cwd=tmp_path)  # fmt: skip
    settings = make_settings(
        **{
            "grpc.tls_cert": str(tmp_path / "tls.crt"),
            "grpc.tls_key": str(tmp_path / "tls.key"),
            "grpc.tls_ca": str(tmp_path / "ca.crt"),
            "grpc.health_port": 0,
        }
    )
    run = start_in_thread(_Service(), settings, port=0, poll_s=0.1)
    try:
        target = f"localhost:{run.port}"
        # a client configured like the services presents its certificate and is let in
        stub = profile_pb2_grpc.ProfilerServiceStub(make_channel(target, settings.grpc))
        assert stub.GetProfile(profile_pb2.GetProfileRequest(user_id="known"), timeout=5).profile.user_id
        # without a client certificate the handshake fails
        no_cert = grpc.secure_channel(
            target, grpc.ssl_channel_credentials((tmp_path / "ca.crt").read_bytes())
        )
        assert health_status(no_cert, timeout_s=2) != "SERVING"
        # the kubelet's plain-HTTP probe still reaches readiness beside the mTLS port
        _wait_http(f"http://127.0.0.1:{run.host.health_bound_port}/readyz", 200, timeout_s=5)
    finally:
        run.stop(0.5)


class _Status(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


def test_call_with_retry_waits_out_unavailable_but_not_other_errors() -> None:
    from gravity_core.grpc import call_with_retry

    outcomes = [_Status(grpc.StatusCode.UNAVAILABLE)] * 3 + ["answer"]
    budgets: list[float] = []

    def flaky(remaining: float) -> str:
        budgets.append(remaining)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert call_with_retry(flaky, timeout_s=30) == "answer"
    assert len(budgets) == 4 and budgets == sorted(budgets, reverse=True)  # one shrinking deadline

    def invalid(remaining: float) -> str:
        raise _Status(grpc.StatusCode.INVALID_ARGUMENT)

    with pytest.raises(grpc.RpcError):
        call_with_retry(invalid, timeout_s=30)

    def down(remaining: float) -> str:
        raise _Status(grpc.StatusCode.UNAVAILABLE)

    with pytest.raises(grpc.RpcError):  # gives up once the deadline is spent
        call_with_retry(down, timeout_s=0.5)


def test_a_refusal_for_load_says_when_to_return_and_is_retried_after_it(running) -> None:
    from gravity_core.grpc import call_with_retry
    from gravity_core.grpc.client import pushback_s

    stub = profile_pb2_grpc.ProfilerServiceStub(make_channel(running.target))
    request = profile_pb2.GetProfileRequest(user_id="busy")
    with pytest.raises(grpc.RpcError) as err:
        stub.GetProfile(request, timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "8 calls in flight" in err.value.details()
    assert pushback_s(err.value) == 0.05

    busy = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
    reply = call_with_retry(lambda remaining: stub.GetProfile(request, timeout=remaining), 30, busy)
    assert reply.profile.user_id == "busy"  # refused once more, then answered

    # RESOURCE_EXHAUSTED without the trailer (gRPC's own message size limit) is final, not retried
    attempts: list[float] = []

    def too_large(remaining: float) -> str:
        attempts.append(remaining)
        raise _Status(grpc.StatusCode.RESOURCE_EXHAUSTED)

    with pytest.raises(grpc.RpcError):
        call_with_retry(too_large, 30, busy)
    assert len(attempts) == 1


def test_a_deadline_spent_on_a_refusing_server_reports_the_refusal() -> None:
    """The last attempt's budget can end inside the channel's own retry backoff (DEADLINE_EXCEEDED); the
    caller should still learn why it never got an answer."""
    from gravity_core.grpc import call_with_retry

    outcomes = [_Status(grpc.StatusCode.UNAVAILABLE), _Status(grpc.StatusCode.DEADLINE_EXCEEDED)]

    def down_then_out_of_time(remaining: float) -> str:
        raise outcomes.pop(0)

    with pytest.raises(grpc.RpcError) as err:
        call_with_retry(down_then_out_of_time, timeout_s=30)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and not outcomes

    def slow(remaining: float) -> str:  # a server that was reachable and merely slow stays DEADLINE_EXCEEDED
        raise _Status(grpc.StatusCode.DEADLINE_EXCEEDED)

    with pytest.raises(grpc.RpcError) as err:
        call_with_retry(slow, timeout_s=30)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
