"""A planted reader's known truth (``truth.jsonl``), and that truth as a profile and as a judge's persona.

The truth holds what the paper's profile holds (§3.2): a stance on every one of the 150 seed statements,
Big Five levels, genres and demographics, plus what the planted reviews express of it (which statements,
which Mini-IPIP items, which demographic cues, review by review) and which demographics were left out of
``demographics.csv``. :func:`truth_profile` turns it into a ``UserProfile`` as the profiler would write one
(the GRAVITY preamble and the pair generator read it); :func:`persona_summary` is the reader described in
a few sentences for the judge's persona (D.3) and the UserSummary prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.errors import InvalidInput, NotFound
from gravity_core.files import write_text
from gravity_core.prompts import TRAIT_BY_NAME
from gravity_core.values import SeedStatement, statements_by_id
from gravity_fidelity.phrasing import is_first_person, statement_clause, statement_core

TRUTH_FILE = "truth.jsonl"
PLANT_FILE = "plant.json"
PLANT_FORMAT = "gravity-fidelity-plant/v1"
TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
# Mini-IPIP trait letter of each trait name
TRAIT_LETTERS = {
    "openness": "O",
    "conscientiousness": "C",
    "extraversion": "E",
    "agreeableness": "A",
    "neuroticism": "N",
}
STANCE_PROTO = {
    "support": profile_pb2.STANCE_SUPPORT,
    "oppose": profile_pb2.STANCE_OPPOSE,
    "neutral": profile_pb2.STANCE_NEUTRAL,
}
LEVEL_PROTO = {"high": profile_pb2.TRAIT_LEVEL_HIGH, "low": profile_pb2.TRAIT_LEVEL_LOW}
_TRAIT_WORDS = {
    "openness": ("imaginative and curious about ideas", "practical and down to earth"),
    "conscientiousness": ("organised and dutiful", "easygoing about order and chores"),
    "extraversion": ("outgoing and talkative", "quiet and reserved"),
    "agreeableness": ("warm and sympathetic", "blunt and unsentimental"),
    "neuroticism": ("easily worried and moody", "calm and even-tempered"),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TruthDemographics(_Model):
    age: int
    age_group: str
    gender: str
    country: str

    def value(self, field: str) -> str:
        return str(getattr(self, field))


class PlantedReview(_Model):
    """One planted review and what it expresses."""

    parent_asin: str
    statements: list[str] = Field(default_factory=list)
    items: list[str] = Field(default_factory=list)
    demographics: list[str] = Field(default_factory=list)
    # The book talk was rewritten by the author LLM (--author-llm); carried sentences never are.
    rewritten: bool = False


class Expressed(_Model):
    """What the reader's reviews, taken together, express of the truth."""

    statements: list[str] = Field(default_factory=list)
    # trait name -> the Mini-IPIP item ids whose marker sentences appear
    traits: dict[str, list[str]] = Field(default_factory=dict)
    demographics: list[str] = Field(default_factory=list)


class ReaderTruth(_Model):
    user_id: str
    demographics: TruthDemographics
    # Demographic fields left out of demographics.csv (the profiler must estimate them).
    withheld: list[str] = Field(default_factory=list)
    genres: list[str]
    # trait name -> "high" | "low"
    traits: dict[str, str]
    # statement id -> "support" | "oppose" | "neutral", for every seed statement
    stances: dict[str, str]
    # The statements the reader's value summary names (the GRAVITY preamble carries them).
    summary_statements: list[str] = Field(default_factory=list)
    expressed: Expressed = Field(default_factory=Expressed)
    reviews: list[PlantedReview] = Field(default_factory=list)

    def expected_stance(self, statement_id: str) -> str:
        """What the reviews let a reader infer: the true stance when expressed, else neutral."""
        return self.stances[statement_id] if statement_id in self.expressed.statements else "neutral"


class PlantManifest(_Model):
    format: str = PLANT_FORMAT
    seed: int
    readers: int
    options: dict[str, object] = Field(default_factory=dict)
    catalog: str = ""
    catalog_sha256: str = ""
    statements_sha256: str = ""
    files: dict[str, str] = Field(default_factory=dict)
    # Reviews whose book talk the author LLM rewrote, and rewrites refused (kept templated).
    rewritten: int = 0
    rewrites_refused: int = 0


def write_truths(truths: Iterable[ReaderTruth], path: Path) -> None:
    write_text(path, "".join(t.model_dump_json() + "\n" for t in truths), durable=False)


def read_truths(directory: str | Path) -> list[ReaderTruth]:
    """Every reader of a planted directory; a missing or malformed truth is an error naming the file."""
    path = Path(directory) / TRUTH_FILE
    if not path.is_file():
        raise NotFound(
            "--truth", f"{directory} has no {TRUTH_FILE} (plant readers first: gravity fidelity plant)"
        )
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(ReaderTruth.model_validate_json(line))
        except ValidationError as exc:
            raise InvalidInput(
                "--truth", f"{path}:{number} is not a planted reader: {exc.errors()[0]['msg']}"
            ) from None
    if not out:
        raise InvalidInput("--truth", f"{path} holds no readers")
    return out


def read_manifest(directory: str | Path) -> PlantManifest:
    path = Path(directory) / PLANT_FILE
    if not path.is_file():
        raise NotFound(
            "--truth", f"{directory} has no {PLANT_FILE} (plant readers first: gravity fidelity plant)"
        )
    try:
        manifest = PlantManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise InvalidInput("--truth", f"{path} is not a plant manifest: {exc.errors()[0]['msg']}") from None
    if manifest.format != PLANT_FORMAT:
        raise InvalidInput("--truth", f"{path} has format {manifest.format!r}, expected {PLANT_FORMAT!r}")
    return manifest


# ------------------------------------------------------------------ the truth as text and as a profile
def value_summary(truth: ReaderTruth, statements: dict[str, SeedStatement] | None = None) -> str:
    """One sentence per named statement (at most six, like the paper's value summary)."""
    bank = statements or statements_by_id()
    sentences = []
    for sid in truth.summary_statements:
        text = bank[sid].text
        agree = truth.stances[sid] == "support"
        if is_first_person(text):
            sentences.append(f'I {"agree" if agree else "disagree"} with "{statement_core(text)}".')
        else:
            sentences.append(f"I {'agree' if agree else 'disagree'} that {statement_clause(text)}.")
    return " ".join(sentences)


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def persona_summary(truth: ReaderTruth, statements: dict[str, SeedStatement] | None = None) -> str:
    """The reader in a few second-person sentences: genres, temperament, named values."""
    traits = [_TRAIT_WORDS[t][0 if truth.traits[t] == "high" else 1] for t in TRAITS if t in truth.traits]
    parts = [f"You mostly read {_join(truth.genres)}."]
    if traits:
        parts.append(f"You are {_join(traits)}.")
    values = value_summary(truth, statements)
    if values:
        parts.append("In your own words: " + values)
    return " ".join(parts)


def truth_profile(
    truth: ReaderTruth, cohort_id: str = "", statements: dict[str, SeedStatement] | None = None
) -> profile_pb2.UserProfile:
    """The truth as a UserProfile: what a perfect profiler would have written for this reader.

    It carries no review history (``reviews``/``reviewed_asins`` empty): it is the reader's preferences, and
    the pairs built from it should not depend on which books the planted reviews happened to cover.
    """
    bank = statements or statements_by_id()
    d = truth.demographics

    def given(value: str) -> common_pb2.DemographicField:
        return common_pb2.DemographicField(
            value=value, provenance=common_pb2.PROVENANCE_GIVEN, confidence=1.0
        )

    share = 1.0 / len(truth.genres) if truth.genres else 0.0
    profile = profile_pb2.UserProfile(
        user_id=truth.user_id,
        demographics=common_pb2.Demographics(
            age_group=given(d.age_group), gender=given(d.gender), country=given(d.country), age=d.age
        ),
        interests=[profile_pb2.Interest(genre=g, share=share) for g in truth.genres],
        values=[
            profile_pb2.ValueStance(
                statement_id=sid,
                stance=STANCE_PROTO[stance],
                statement=bank[sid].text,
                framework=bank[sid].framework,
                topic=bank[sid].topic,
            )
            for sid, stance in truth.stances.items()
        ],
        value_summary=value_summary(truth, bank),
        personality=profile_pb2.Personality(
            traits=[
                profile_pb2.TraitScore(
                    trait=TRAIT_BY_NAME[t],
                    level=LEVEL_PROTO[truth.traits[t]],
                    score=1.0 if truth.traits[t] == "high" else 0.0,
                )
                for t in TRAITS
            ],
            estimator="planted",
        ),
        user_summary=persona_summary(truth, bank),
        version=1,
        cohort_id=cohort_id,
    )
    return profile


def truth_digest(truths: Sequence[ReaderTruth]) -> str:
    """A short content hash of the readers, for cohort ids and run identities."""
    import hashlib

    blob = json.dumps([t.model_dump(mode="json") for t in truths], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
