"""The LLM judge on the participants' own screens (paper D.3 prompts, through gravity_judge), with each
participant's persona, so its verdicts can be compared with the participants' (judge validity).

``embedded`` runs gravity_judge's Judge in this process on the ``judge`` LLM role (embedded model or any
configured OpenAI-compatible endpoint); ``service`` asks the judge service over gRPC (Rank and Rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from gravity.v1 import profile_pb2
from gravity_core.config import Settings
from gravity_judge.judging import Candidate
from gravity_judge.persona import Persona
from gravity_study.settings import StudySettings


@dataclass
class Verdict:
    usable: bool
    ranking: list[str] = field(default_factory=list)
    first_place: dict[str, float] = field(default_factory=dict)
    ratings: dict[str, float] = field(default_factory=dict)
    reason: str = ""


class ScreenJudge(Protocol):
    model: str

    def judge(self, persona: Persona, candidates: Sequence[Candidate], key: str) -> Verdict: ...

    def close(self) -> None: ...


def persona_of(profile: profile_pb2.UserProfile) -> Persona:
    return Persona.from_profile(profile)


class EmbeddedJudge:
    def __init__(self, settings: Settings, cfg: StudySettings) -> None:
        from gravity_core.llm import llm_for_role
        from gravity_judge.judging import Judge
        from gravity_judge.settings import JudgeSettings

        base = settings.section("judge", JudgeSettings)
        judge_cfg = JudgeSettings.model_validate(
            {**base.model_dump(), "orders": cfg.judge_orders, "seed": cfg.seed}
        )
        self._judge = Judge(llm_for_role(settings, "judge"), judge_cfg)
        self.model = f"{self._judge.llm.info.backend}:{self._judge.model}"

    def judge(self, persona: Persona, candidates: Sequence[Candidate], key: str) -> Verdict:
        rank = self._judge.rank(persona, candidates, key=key)
        ratings = {r.id: r.score for r in self._judge.rate(persona, candidates) if r.usable}
        if not rank.usable:
            return Verdict(False, ratings=ratings, reason=rank.reason)
        return Verdict(True, list(rank.ranking), dict(rank.first_place), ratings)

    def close(self) -> None:
        pass


class ServiceJudge:
    def __init__(self, settings: Settings, cfg: StudySettings) -> None:
        from gravity.v1 import judge_pb2_grpc
        from gravity_core.grpc import make_channel

        target = settings.grpc.target("judge")
        self._channel = make_channel(target, settings.grpc)
        self._stub = judge_pb2_grpc.JudgeServiceStub(self._channel)
        self.orders = cfg.judge_orders
        self.model = f"service:{target}"

    def judge(self, persona: Persona, candidates: Sequence[Candidate], key: str) -> Verdict:
        from gravity.v1 import judge_pb2
        from gravity_core.grpc import call_with_retry

        p = persona.to_proto()
        cands = [judge_pb2.Candidate(id=c.id, text=c.text) for c in candidates]
        rank = call_with_retry(
            lambda t: self._stub.Rank(
                judge_pb2.RankRequest(persona=p, candidates=cands, orders=self.orders),
                timeout=t,
                wait_for_ready=True,
            ),
            600,
        )
        ratings = {}
        for c in cands:
            request = judge_pb2.RateRequest(persona=p, candidate=c)
            rate = call_with_retry(
                partial(self._stub.Rate, request, wait_for_ready=True),
                600,
            )
            if rate.usable:
                ratings[c.id] = rate.score
        if not rank.usable:
            return Verdict(False, ratings=ratings, reason="unusable ranking answer")
        return Verdict(True, list(rank.ranking), dict(rank.first_place_probability), ratings)

    def close(self) -> None:
        self._channel.close()


def make_judge(settings: Settings, cfg: StudySettings) -> ScreenJudge:
    return ServiceJudge(settings, cfg) if cfg.judge == "service" else EmbeddedJudge(settings, cfg)
