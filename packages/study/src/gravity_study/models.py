"""The study's tables (SQLAlchemy 2 ORM). The schema is created and changed only by the Alembic migrations in
``gravity_study/migrations``; a test checks that the migrations produce exactly these models.

Answers are stored as they were given (JSON columns for the questionnaire blocks), so the paper's numbers can
always be recomputed from the raw answers.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def now_ms() -> int:
    return int(time.time() * 1000)


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Methods shown on each ranking screen: "original", "gravity" and the baseline(s).
    methods: Mapped[list[Any]] = mapped_column(JSON)
    books_per_participant: Mapped[int] = mapped_column(Integer)
    countries: Mapped[list[Any]] = mapped_column(JSON)
    # The ten seed statements participants annotate (ids), fixed per study.
    value_statements: Mapped[list[Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    # The cohort the last training round covered and its adapter (set by the pipeline).
    cohort_id: Mapped[str] = mapped_column(String(160), default="")
    cohort_round: Mapped[int] = mapped_column(Integer, default=0)
    cohort_members: Mapped[list[Any]] = mapped_column(JSON, default=list)
    adapter: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    participants: Mapped[list[Participant]] = relationship(
        back_populates="study", order_by="Participant.id", cascade="all, delete-orphan"
    )


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    # Public, non-secret id used as the profile's user id and in exports.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    # The secret part of the participant link.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)

    consent_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    age_group: Mapped[str] = mapped_column(String(32), default="")
    gender: Mapped[str] = mapped_column(String(32), default="")
    country: Mapped[str] = mapped_column(String(64), default="")
    demographics_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    genres: Mapped[list[Any]] = mapped_column(JSON, default=list)
    genres_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Mini-IPIP item id -> 1..5
    ipip: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    personality_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # seed statement id -> agree | disagree | neutral
    value_answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    values_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # seed statement id -> {"label": agree|disagree|neutral|unreadable, "confidence": p|None, "method": ...}
    inferred: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    inference_model: Mapped[str] = mapped_column(String(200), default="")
    inferred_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    inference_error: Mapped[str] = mapped_column(Text, default="")
    # The five statements shown for verification: [{"id", "label"}], then the answers: id -> bool
    verification_items: Mapped[list[Any]] = mapped_column(JSON, default=list)
    verification: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    verified_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The serialized gravity.v1.UserProfile (JSON form) once the author LLM wrote the summaries.
    profile_json: Mapped[str] = mapped_column(Text, default="")
    profile_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    profile_error: Mapped[str] = mapped_column(Text, default="")
    ranking_done_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    study: Mapped[Study] = relationship(back_populates="participants")
    screens: Mapped[list[Screen]] = relationship(
        back_populates="participant", order_by="Screen.position", cascade="all, delete-orphan"
    )


class Screen(Base):
    """One ranking screen: a book, its descriptions in the order shown, and the participant's answers."""

    __tablename__ = "screens"
    __table_args__ = (UniqueConstraint("participant_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    parent_asin: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500), default="")
    genre: Mapped[str] = mapped_column(String(200), default="")
    genre_group: Mapped[str] = mapped_column(String(200), default="")
    # method -> description text
    texts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # method -> {"model", "adapter"} provenance of each text
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The methods in the order they are shown (randomized per screen, recorded).
    display_order: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # method -> rank (1 = best); method -> 1..5; method -> [sentence indices liked]
    ranks: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ratings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    liked: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    comment: Mapped[str] = mapped_column(Text, default="")
    answered_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    participant: Mapped[Participant] = relationship(back_populates="screens")
    judgments: Mapped[list[Judgment]] = relationship(back_populates="screen", cascade="all, delete-orphan")


class Judgment(Base):
    """The LLM judge's answer on one screen's descriptions, with the participant's persona."""

    __tablename__ = "judgments"
    __table_args__ = (UniqueConstraint("screen_id", "judge_model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    screen_id: Mapped[int] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"), index=True)
    judge_model: Mapped[str] = mapped_column(String(200))
    usable: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")
    # Methods best first; method -> probability of being judged first; method -> expected 1-5 score
    ranking: Mapped[list[Any]] = mapped_column(JSON, default=list)
    first_place: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ratings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)

    screen: Mapped[Screen] = relationship(back_populates="judgments")


class Job(Base):
    """Background work (stance inference, profiles, training, generation, judging) and its state."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    # queued | running | done | failed
    state: Mapped[str] = mapped_column(String(16), default="queued")
    message: Mapped[str] = mapped_column(Text, default="")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    started_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    finished_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class AppSecret(Base):
    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
