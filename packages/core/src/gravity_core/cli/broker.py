"""`gravity broker`: run the embedded Kafka-compatible broker in the foreground (local development)."""

from __future__ import annotations

import contextlib
import signal
import threading

import click


@click.command()
@click.option("--port", type=int, default=9092, show_default=True, help="Loopback port (0 = any free port).")
def broker(port: int) -> None:
    """Run the embedded Tansu broker on 127.0.0.1 until Ctrl-C."""
    from gravity_core.broker import EmbeddedBroker

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EmbeddedBroker(port=port or None) as b:
        click.echo(f"broker ready: {b.bootstrap} (log: {b.log_path}); Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
