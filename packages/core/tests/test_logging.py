import io
import json

from gravity_core.logging import configure_logging, get_logger, hash_user_id


def test_user_ids_hashed_and_secrets_redacted() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    get_logger("t").info(
        "built", user_id="AGKHLEW2SOWHNMFQIJGBECAF7INQ", api_key="sk-live-123", auth_token="abc", n=3
    )
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["user_id"] == hash_user_id("AGKHLEW2SOWHNMFQIJGBECAF7INQ")
    assert "AGKHLEW2SOWHNMFQIJGBECAF7INQ" not in stream.getvalue()
    assert line["api_key"] == "***" and line["auth_token"] == "***"
    assert "sk-live-123" not in stream.getvalue()
    assert line["n"] == 3 and line["event"] == "built"
    configure_logging("WARNING", "json")


def test_hash_is_stable_and_short() -> None:
    assert hash_user_id("x") == hash_user_id("x") != hash_user_id("y")
    assert len(hash_user_id("x")) == 14
