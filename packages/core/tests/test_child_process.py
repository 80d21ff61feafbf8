"""Children started beside open gRPC channels survive to exec (grpc/grpc#43055)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

# A process shaped like the stack's: it imports gravity_core, then grpc, holds a live channel to a gRPC server
# it started and a few channels watched while they reconnect to closed ports, then starts children the way
# the stack starts its services, and prints how many of them crashed. All three parts are needed here to
# make the children crash without the fix.
_STARTS_CHILDREN_BESIDE_CHANNELS = textwrap.dedent(
    """
    import subprocess, sys
    from concurrent import futures
    import gravity_core
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from gravity_core.child_process import own_session_dying_with_parent

    if sys.argv[1] == "serve":
        server = grpc.server(futures.ThreadPoolExecutor(2))
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
        print(server.add_insecure_port("127.0.0.1:0"), flush=True)
        server.start()
        server.wait_for_termination()

    server = subprocess.Popen([sys.executable, __file__, "serve"], stdout=subprocess.PIPE, text=True)
    try:
        live = grpc.insecure_channel(f"127.0.0.1:{server.stdout.readline().strip()}")
        health_pb2_grpc.HealthStub(live).Check(health_pb2.HealthCheckRequest(), timeout=30)
        reconnecting = [grpc.insecure_channel(f"127.0.0.1:{port}") for port in range(1, 6)]
        for channel in reconnecting:
            channel.subscribe(lambda state: None, try_to_connect=True)
        crashed = 0
        for _ in range(int(sys.argv[2])):
            child = subprocess.run(["true"], preexec_fn=own_session_dying_with_parent, capture_output=True)
            crashed += child.returncode != 0
        print(crashed)
    finally:
        server.kill()
    """
)


def _environment_without_the_setting() -> dict[str, str]:
    # This test process imported gravity_core too; the script must set the variable itself.
    return {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}


def test_children_started_beside_open_channels_reach_exec(tmp_path: Path) -> None:
    script = tmp_path / "starts_children.py"
    script.write_text(_STARTS_CHILDREN_BESIDE_CHANNELS)
    done = subprocess.run(
        [sys.executable, str(script), "start", "400"],
        capture_output=True,
        text=True,
        env=_environment_without_the_setting(),
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # Without the setting, 12-31 of these 400 children died of SIGSEGV before exec in each run here.
    assert int(done.stdout.split()[-1]) == 0


def test_an_explicit_fork_support_setting_is_kept() -> None:
    env = {**_environment_without_the_setting(), "GRPC_ENABLE_FORK_SUPPORT": "true"}
    done = subprocess.run(
        [sys.executable, "-c", "import os, gravity_core; print(os.environ['GRPC_ENABLE_FORK_SUPPORT'])"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.stdout.strip() == "true", done.stderr
