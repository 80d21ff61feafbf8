"""The simulated reader the judge plays (paper D.3): 'You are a {age} {gender} from {country}. {user_summary}.'"""

from __future__ import annotations

from dataclasses import dataclass, field

from gravity.v1 import judge_pb2, profile_pb2
from gravity_core import prompts
from gravity_judge.evidence import Evidence

UNKNOWN_COUNTRY = "unknown"


@dataclass(frozen=True)
class Persona:
    user_id: str = ""
    age_group: str = ""
    gender: str = ""
    country: str = ""
    user_summary: str = ""
    # What the reader's profile was built from; None when the persona did not come from a profile.
    evidence: Evidence | None = field(default=None, compare=False)

    @classmethod
    def from_profile(cls, profile: profile_pb2.UserProfile) -> Persona:
        d = profile.demographics
        return cls(
            profile.user_id,
            d.age_group.value,
            d.gender.value,
            d.country.value,
            profile.user_summary.strip(),
            Evidence.from_profile(profile),
        )

    @classmethod
    def from_proto(cls, message: judge_pb2.JudgePersona) -> Persona:
        return cls(
            message.user_id,
            message.age_group.strip(),
            message.gender.strip(),
            message.country.strip(),
            message.user_summary.strip(),
        )

    def to_proto(self) -> judge_pb2.JudgePersona:
        return judge_pb2.JudgePersona(
            user_id=self.user_id,
            age_group=self.age_group,
            gender=self.gender,
            country=self.country,
            user_summary=self.user_summary,
        )

    @property
    def described(self) -> bool:
        """Whether anything beyond the user id is known (otherwise it must come from a profile)."""
        return any((self.age_group, self.gender, self.country, self.user_summary))

    @property
    def group_country(self) -> str:
        return self.country or UNKNOWN_COUNTRY

    def text(self) -> str:
        """The D.3 persona line, built with the same words every service uses for demographics."""
        profile = profile_pb2.UserProfile()
        profile.demographics.age_group.value = self.age_group
        profile.demographics.gender.value = self.gender
        profile.demographics.country.value = self.country
        line = prompts.persona(profile)
        summary = self.user_summary.strip()
        if summary:
            line += " " + (summary if summary[-1] in ".!?" else summary + ".")
        return line
