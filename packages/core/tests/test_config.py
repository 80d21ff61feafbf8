from pathlib import Path

import pytest
from pydantic import BaseModel

from gravity_core.config import load_settings
from gravity_core.errors import ConfigError


def test_defaults_without_file() -> None:
    s = load_settings(None, env={})
    assert s.llm.role("judge").backend == "embedded"
    assert s.kafka.topics.profiles == "gravity.profiles.v1"
    assert s.grpc.port("generator") == 50054


def test_toml_then_env_override(tmp_path: Path) -> None:
    cfg = tmp_path / "gravity.toml"
    cfg.write_text(
        """
[llm.judge]
backend = "openai"
model = "gpt-4o"
base_url = "https://example.invalid/v1"

[kafka]
bootstrap_servers = "kafka:9092"

[profiler]
min_reviews = 50
"""
    )
    env = {
        "GRAVITY_KAFKA__BOOTSTRAP_SERVERS": "broker-0:9093",
        "GRAVITY_PROFILER__MIN_REVIEWS": "7",
        "GRAVITY_LLM__WRITER__MAX_BATCH_SIZE": "4",
    }
    s = load_settings(cfg, env=env)
    assert s.kafka.bootstrap_servers == "broker-0:9093"
    judge = s.llm.role("judge")
    assert (judge.backend, judge.model) == ("openai", "gpt-4o")
    # roles are independent: the writer got its own section from the environment only
    assert s.llm.role("writer").max_batch_size == 4
    assert s.llm.role("annotator").backend == "embedded"

    class ProfilerSection(BaseModel):
        min_reviews: int = 50

    assert s.section("profiler", ProfilerSection).min_reviews == 7


def test_invalid_config_names_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[llm.judge]\nbackend = "carrier-pigeon"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env={})
    assert "llm.judge.backend" in str(err.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})
    bad = tmp_path / "broken.toml"
    bad.write_text("[kafka\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, env={})


def test_secrets_are_not_rendered() -> None:
    s = load_settings(
        None, env={"GRAVITY_LLM__JUDGE__API_KEY": "sk-secret-value", "GRAVITY_LLM__JUDGE__BACKEND": "openai"}
    )
    judge = s.llm.role("judge")
    assert judge.resolved_api_key() == "sk-secret-value"
    assert "sk-secret-value" not in repr(s) and "sk-secret-value" not in s.model_dump_json()
