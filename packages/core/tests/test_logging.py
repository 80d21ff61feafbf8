"""Logs: user ids hashed under a secret key, secrets redacted everywhere, every line one JSON object."""

import hashlib
import io
import json
import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from gravity_core.config import load_settings
from gravity_core.logging import (
    configure_from_settings,
    configure_logging,
    get_logger,
    hash_user_id,
    register_secrets,
    set_user_id_key,
)

USER = "AGKHLEW2SOWHNMFQIJGBECAF7INQ"


@pytest.fixture
def stream():
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out, user_id_key="test-key")
    yield out
    configure_logging("WARNING", "json")
    set_user_id_key(None)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_user_ids_hashed_and_secrets_redacted(stream) -> None:
    get_logger("t").info("built", user_id=USER, api_key="sk-live-12345678", auth_token="abc", n=3)
    line = _lines(stream)[-1]
    assert line["user_id"] == hash_user_id(USER) and USER not in stream.getvalue()
    assert line["api_key"] == "***" and line["auth_token"] == "***"
    assert "sk-live-12345678" not in stream.getvalue()
    assert line["n"] == 3 and line["event"] == "built"


def test_nested_values_and_secrets_inside_strings_are_redacted(stream) -> None:
    register_secrets(["hunter2-configured-password"])
    get_logger("t").error(
        "call_failed",
        error="401 from https://admin:s3cr3t@vllm.internal:8000/v1 with Authorization: Bearer abcdef123456",
        detail="retrying; api_key=sk-proj-ABCDEFGH12345 and password: hunter2-configured-password",
        request={"headers": {"Authorization": "Bearer xyz789xyz"}, "users": [{"user_id": USER}]},
    )
    text = stream.getvalue()
    for leaked in (
        "s3cr3t",
        "abcdef123456",
        "sk-proj-ABCDEFGH12345",
        "hunter2-configured-password",
        "xyz789xyz",
        USER,
    ):
        assert leaked not in text, leaked
    line = _lines(stream)[-1]
    assert "https://***@vllm.internal:8000/v1" in line["error"]
    assert line["request"]["headers"]["Authorization"] == "***"
    assert line["request"]["users"][0]["user_id"] == hash_user_id(USER)


def _run_fresh(script: str, home) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh Python process, as a service starts: what it wrote, and how it ended."""
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GRAVITY_HOME": str(home)},
    )


def test_third_party_log_records_and_warnings_are_json_and_scrubbed(tmp_path) -> None:
    """In a fresh process, as a service runs: our events, a library's stdlib records and a Python warning."""
    script = (
        "import logging, warnings\n"
        "from gravity_core.logging import configure_logging, get_logger\n"
        "configure_logging('INFO', 'auto')\n"
        "get_logger('ours').info('started', user_id='U1')\n"
        "logging.getLogger('some.library').warning('connecting to %s', 'kafka://bob:pw123456@broker:9092')\n"
        "warnings.warn('a library is unhappy', UserWarning, stacklevel=1)\n"
    )
    proc = _run_fresh(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines()]  # every line is one JSON object
    library = next(x for x in lines if x.get("logger") == "some.library")
    assert library["level"] == "warning" and "pw123456" not in proc.stderr
    assert any("a library is unhappy" in x["event"] for x in lines)
    assert any(x["event"] == "started" and x["user_id"].startswith("u:") for x in lines)


def test_tracebacks_are_scrubbed_and_uncaught_exceptions_are_log_lines(tmp_path) -> None:
    """A logged exception's traceback, a worker thread that dies and the process's own last exception: each is
    one JSON line with its secrets redacted, never Python's raw traceback on stderr."""
    script = (
        "import threading\n"
        "from gravity_core.logging import configure_logging, get_logger, register_secrets\n"
        "configure_logging('INFO', 'json')\n"
        "register_secrets(['hunter2-configured-password'])\n"
        "try:\n"
        "    raise ValueError('caught: kafka://bob:pw123456@broker:9092 hunter2-configured-password')\n"
        "except ValueError:\n"
        "    get_logger('ours').exception('worker_error')\n"
        "def work():\n"
        "    raise OSError('thread: password=pw654321 hunter2-configured-password')\n"
        "t = threading.Thread(target=work, name='profiler-worker')\n"
        "t.start(); t.join()\n"
        "raise RuntimeError('last: Authorization: Bearer abcdef123456')\n"
    )
    proc = _run_fresh(script, tmp_path)
    assert proc.returncode == 1  # still a failed process
    lines = [json.loads(line) for line in proc.stderr.splitlines()]  # every line is one JSON object
    for leaked in ("pw123456", "pw654321", "hunter2-configured-password", "abcdef123456"):
        assert leaked not in proc.stderr, leaked
    caught, thread, last = lines
    assert (
        caught["event"] == "worker_error" and "ValueError: caught: kafka://***@broker" in caught["exception"]
    )
    assert thread["event"] == "thread_crashed" and thread["thread"] == "profiler-worker"
    assert thread["level"] == "critical" and "OSError: thread:" in thread["exception"]
    assert last["event"] == "uncaught_exception" and "RuntimeError: last:" in last["exception"]


def test_hashing_is_keyed_not_a_bare_digest() -> None:
    set_user_id_key("key-one")
    one = hash_user_id(USER)
    assert one == hash_user_id(USER) and len(one) == 14
    # a public reviewer id cannot be matched by hashing it without the key
    assert one[2:] != hashlib.sha256(USER.encode()).hexdigest()[:12]
    set_user_id_key("key-two")
    assert hash_user_id(USER) != one
    set_user_id_key(None)


def test_settings_secrets_are_registered(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GRAVITY_HOME", str(tmp_path))
    settings = load_settings(
        None,
        env={},
        overrides={
            "llm.judge.backend": "openai",
            "llm.judge.api_key": "sk-judge-key-0001",
            "kafka.sasl_password": "kafkapass99",
        },
    )
    assert isinstance(settings.llm.judge.api_key, SecretStr)
    out = io.StringIO()
    configure_from_settings(settings)
    configure_logging("INFO", "json", stream=out)
    get_logger("t").warning("oops", detail="the key sk-judge-key-0001 and kafkapass99 leaked into a message")
    assert "sk-judge-key-0001" not in out.getvalue() and "kafkapass99" not in out.getvalue()
    # without a configured key, one is created for this installation, readable only by its owner
    set_user_id_key(None)
    hash_user_id("x")
    key_file = tmp_path / "log-key"
    assert key_file.is_file() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    configure_logging("WARNING", "json")
