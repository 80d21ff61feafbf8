"""Study test fixtures: a real SQLite database per test, scripted stand-ins for the LLM roles, the
description pipeline and the judge (fast tests of the app's logic; the real parts are tested in
test_llm_steps.py, test_pipeline.py and the demo test), and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from gravity_testing import free_port

from gravity_core.config import Settings, load_settings
from gravity_core.llm import (
    ChoiceScores,
    Completion,
    Conversation,
    GenerationParams,
    LLMClient,
    ModelInfo,
    Usage,
)
from gravity_judge.judging import Candidate
from gravity_judge.persona import Persona
from gravity_study.database import Database
from gravity_study.jobs import JobRunner
from gravity_study.judging import Verdict
from gravity_study.pipeline import Cohort, Generated, Readiness, Request
from gravity_study.settings import StudySettings, study_settings

ADMIN_TOKEN = "test-admin-token-1234"


@pytest.fixture
def admin_token() -> str:
    return ADMIN_TOKEN


class ScriptedLLM(LLMClient):
    """Answers choice questions from a hash of the question (so they vary) and writes a fixed summary."""

    def __init__(self, unreadable_every: int = 0) -> None:
        self.usage = Usage()
        self.unreadable_every = unreadable_every
        self.scored = 0

    @property
    def info(self) -> ModelInfo:
        return ModelInfo("scripted", "embedded", 4096)

    def chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ) -> Completion:
        return self.chat_batch([messages], params)[0]

    def chat_batch(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        adapters: Any = None,
    ) -> list[Completion]:
        return [
            Completion(
                "The reader values honesty and family. They enjoy thoughtful stories.", 10, 10, "scripted"
            )
            for _ in conversations
        ]

    def stream_chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def score_choices(
        self, messages: Conversation, choices: Sequence[str], adapter: str | None = None, prefill: str = ""
    ) -> ChoiceScores:
        self.scored += 1
        if self.unreadable_every and self.scored % self.unreadable_every == 0:
            return ChoiceScores.unusable(choices, "I cannot tell")
        h = int(hashlib.sha256(messages[-1]["content"].encode()).hexdigest(), 16)
        best = h % len(choices)
        probs = tuple(0.6 if i == best else 0.4 / (len(choices) - 1) for i in range(len(choices)))
        return ChoiceScores(tuple(choices), probs, "logprobs")


class ScriptedPipeline:
    kind = "scripted"

    def __init__(self) -> None:
        self.trained: list[Cohort] = []

    def train(self, cohort: Cohort, say: Callable[[str], None]) -> dict[str, Any]:
        self.trained.append(cohort)
        return {
            "adapter_id": f"{cohort.cohort_id}-gravity",
            "name": f"{cohort.cohort_id}-gravity",
            "dataset_id": f"{cohort.cohort_id}/gravity",
            "path": "",
            "steps": 1,
        }

    def readiness(self, cohort_id: str, adapter: dict[str, Any]) -> Readiness:
        ok = adapter.get("dataset_id", "").startswith(f"{cohort_id}/")
        return Readiness(ok, "scripted adapter" if ok else "not trained", adapter)

    def generate(
        self, requests: Sequence[Request], adapter: dict[str, Any], say: Callable[[str], None]
    ) -> list[Generated]:
        return [
            Generated(
                r,
                f"{r.method} version of {r.book.title}. It has <b>two</b> sentences. Here is a third.",
                "scripted",
                adapter.get("name", "") if r.method == "gravity" else "",
            )
            for r in requests
        ]

    def close(self) -> None:
        pass


class ScriptedJudge:
    model = "scripted-judge"

    def judge(self, persona: Persona, candidates: Sequence[Candidate], key: str) -> Verdict:
        order = sorted((c.id for c in candidates), key=lambda m: (m != "gravity", m))
        return Verdict(
            True,
            order,
            {m: 1.0 if i == 0 else 0.0 for i, m in enumerate(order)},
            {m: 5.0 - i for i, m in enumerate(order)},
        )

    def close(self) -> None:
        pass


@pytest.fixture
def study_settings_for(tmp_path: Path) -> Callable[..., tuple[Settings, StudySettings]]:
    def build(**overrides: Any) -> tuple[Settings, StudySettings]:
        base = {
            "study.data_dir": str(tmp_path / "study"),
            "study.bootstrap_samples": 200,
            "cache.enabled": False,
            "logging.level": "WARNING",
            "artifacts.root": str(tmp_path / "artifacts"),
        }
        base.update(overrides)
        env = {k: v for k, v in os.environ.items() if k == "GRAVITY_HOME"}
        settings = load_settings(None, env=env, overrides=base)
        return settings, study_settings(settings)

    return build


@pytest.fixture
def db(study_settings_for: Callable[..., tuple[Settings, StudySettings]]) -> Iterator[Database]:
    _, cfg = study_settings_for()
    database = Database(cfg.resolved_database_url())
    yield database
    database.dispose()


@pytest.fixture
def scripted_runner(
    db: Database, study_settings_for: Callable[..., tuple[Settings, StudySettings]]
) -> JobRunner:
    settings, cfg = study_settings_for()
    llm = ScriptedLLM()
    return JobRunner(
        db, settings, cfg, pipeline=ScriptedPipeline(), judge_factory=ScriptedJudge, llm=lambda role: llm
    )


class LiveServer:
    """The study app under a real uvicorn server on 127.0.0.1, in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def live_app(db: Database, scripted_runner: JobRunner) -> Iterator[LiveServer]:
    from gravity_study.web.app import create_app

    app = create_app(db, scripted_runner.cfg, scripted_runner, ADMIN_TOKEN)
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def make_study(db: Database) -> Callable[..., tuple[str, list[str]]]:
    """Create a study with ``n`` participants; returns (slug, tokens)."""
    from gravity_study import studies

    def build(n: int = 1, slug: str = "s1", books: int = 2, simulated: bool = False) -> tuple[str, list[str]]:
        with db.session() as s:
            study = studies.create_study(s, "Study one", slug, ["tri-agent"], books, ["USA", "Japan"], 13)
            people = studies.add_participants(s, study, n, simulated=simulated)
            return study.slug, [p.token for p in people]

    return build
