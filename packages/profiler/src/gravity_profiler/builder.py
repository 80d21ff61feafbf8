"""UserInput -> UserProfile: demographics, interests, values and beliefs, Big Five, two summaries.

One builder serves the batch command and the service. Scoring work runs per user against one encoded
review history (shared prefix); the author's summaries run batched across the users of a call.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from gravity.v1 import profile_pb2
from gravity_core.config import Settings
from gravity_core.llm import LLMClient, llm_for_role
from gravity_core.logging import get_logger
from gravity_core.skips import SkipLog
from gravity_core.values import SeedStatement, load_seed_statements
from gravity_profiler import prompts, summaries
from gravity_profiler.demographics import resolve_demographics
from gravity_profiler.inputs import UserInput
from gravity_profiler.interests import interests
from gravity_profiler.personality import (
    ClassifierEstimator,
    MiniIpipEstimator,
    PersonalityEstimator,
    PersonalityResult,
)
from gravity_profiler.settings import ProfilerSettings, profiler_settings
from gravity_profiler.stances import StanceOutcome, infer_stances, outcome

log = get_logger(__name__)
SCHEMA_VERSION = 1


@dataclass
class BuildStats:
    users: int = 0
    truncated_users: int = 0
    estimated_fields: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)
    # Tokens the models processed: "scoring" (annotator prompts), "summary prompt", "summary generated".
    tokens: Counter[str] = field(default_factory=Counter)

    def merge(self, other: BuildStats) -> None:
        self.users += other.users
        self.truncated_users += other.truncated_users
        self.estimated_fields.update(other.estimated_fields)
        self.seconds.update(other.seconds)
        self.tokens.update(other.tokens)


@dataclass
class _Scored:
    user: UserInput
    context: prompts.ReviewContext
    demographics: object
    stances: list[StanceOutcome]
    personality: PersonalityResult


def make_estimator(settings: ProfilerSettings, annotator: LLMClient) -> PersonalityEstimator:
    if settings.personality_estimator == "classifier":
        return ClassifierEstimator(settings.classifier, settings.trait_threshold)
    return MiniIpipEstimator(annotator, settings.trait_threshold)


class ProfileBuilder:
    def __init__(
        self,
        settings: Settings,
        config: ProfilerSettings | None = None,
        *,
        annotator: LLMClient | None = None,
        author: LLMClient | None = None,
        statements: Sequence[SeedStatement] | None = None,
        estimator: PersonalityEstimator | None = None,
    ) -> None:
        self.config = config or profiler_settings(settings)
        self.annotator = annotator or llm_for_role(settings, "annotator")
        self.author = author or llm_for_role(settings, "author")
        self.statements = tuple(statements or load_seed_statements(self.config.statements_path or None))
        self.estimator = estimator or make_estimator(self.config, self.annotator)
        self.models = {
            "annotator": f"{self.annotator.info.backend}:{self.annotator.info.name}",
            "author": f"{self.author.info.backend}:{self.author.info.name}",
            "personality": self.estimator.name,
        }

    # ------------------------------------------------------------- revision
    def _config_fingerprint(self, protocol: str) -> dict[str, object]:
        c = self.config
        relevant = c.model_dump(
            exclude={"min_reviews", "batch_users", "worker_poll_s", "statements_path", "protocol"}
        )
        if c.personality_estimator != "classifier":
            relevant.pop("classifier")
        statements = hashlib.sha256(
            json.dumps([asdict(s) for s in self.statements], sort_keys=True).encode()
        ).hexdigest()
        return {
            "schema": SCHEMA_VERSION,
            "prompts": prompts.PROMPT_VERSION,
            "protocol": protocol,
            "config": relevant,
            "statements": statements,
            "models": self.models,
        }

    def revision(self, user: UserInput, protocol: str | None = None) -> str:
        """sha256 of the user's inputs and everything that shapes the output (models, protocol, prompts)."""
        payload = {
            "setup": self._config_fingerprint(protocol or self.config.protocol),
            "input": input_digest(user),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()

    # ---------------------------------------------------------------- build
    def build(
        self,
        users: Sequence[UserInput],
        cohort_id: str = "",
        cohort_size: int = 0,
        answer_skips: SkipLog | None = None,
        protocol: str | None = None,
    ) -> tuple[list[profile_pb2.UserProfile], BuildStats]:
        """Profiles for ``users`` (in order). LLM answers that fit no allowed label go to ``answer_skips``."""
        protocol = protocol or self.config.protocol
        answer_skips = answer_skips if answer_skips is not None else SkipLog()
        stats = BuildStats()
        before = self.annotator.usage.prompt_tokens
        scored = [self._score(u, protocol, answer_skips, stats) for u in users]
        stats.tokens["scoring"] += self.annotator.usage.prompt_tokens - before
        prompt_before, generated_before = self.author.usage.prompt_tokens, self.author.usage.completion_tokens
        user_texts, value_texts = self._summaries(scored, answer_skips, stats)
        stats.tokens["summary prompt"] += self.author.usage.prompt_tokens - prompt_before
        stats.tokens["summary generated"] += self.author.usage.completion_tokens - generated_before
        built_at = int(time.time() * 1000)
        profiles = []
        for s, user_summary, value_summary in zip(scored, user_texts, value_texts, strict=True):
            profiles.append(
                self._assemble(s, user_summary, value_summary, cohort_id, cohort_size, built_at, protocol)
            )
        stats.users += len(profiles)
        return profiles, stats

    def _score(self, user: UserInput, protocol: str, answer_skips: SkipLog, stats: BuildStats) -> _Scored:
        c = self.config
        context = prompts.review_context(user.reviews, user.books, c.prompt_review_chars, c.max_review_chars)
        if context.truncated:
            stats.truncated_users += 1
            log.warning(
                "review_history_truncated",
                user_id=user.user_id,
                reviews=context.total,
                in_prompt=context.included,
                prompt_review_chars=c.prompt_review_chars,
            )
        started = time.perf_counter()
        demographics = resolve_demographics(user.demographics, self.annotator, context, c.countries)
        stats.estimated_fields.update(demographics.estimated)
        for field_name in demographics.unusable:
            answer_skips.add(
                "unparseable_answer",
                f"no allowed value for {field_name}; left unknown",
                record_id=f"{user.user_id}/{field_name}",
            )
        stats.seconds["demographics"] += time.perf_counter() - started

        started = time.perf_counter()
        stance_context = prompts.stance_context(context, demographics.text)
        batched_context = prompts.stance_context(context, demographics.text, prompts.stance_batch_question())
        scores = infer_stances(self.annotator, stance_context, self.statements, protocol, c, batched_context)
        stances = [outcome(s, sc) for s, sc in zip(self.statements, scores, strict=True)]
        for st in stances:
            if not st.usable:
                answer_skips.add(
                    "unparseable_answer",
                    f"answer {st.raw_text!r} is none of {', '.join(prompts.STANCE_LABELS)}; kept as neutral",
                    record_id=f"{user.user_id}/{st.statement.id}",
                )
        stats.seconds["stances"] += time.perf_counter() - started

        started = time.perf_counter()
        personality = self.estimator.estimate(context)
        if personality.unusable_answers:
            answer_skips.add(
                "unparseable_answer",
                f"{personality.unusable_answers} Mini-IPIP item(s) had no usable rating; scored as 3",
                record_id=f"{user.user_id}/personality",
            )
        stats.seconds["personality"] += time.perf_counter() - started
        return _Scored(user, context, demographics, stances, personality)

    def _summaries(
        self, scored: Sequence[_Scored], answer_skips: SkipLog, stats: BuildStats
    ) -> tuple[list[str], list[str]]:
        c = self.config
        started = time.perf_counter()
        stance_lists = [self._strongest(s.stances) for s in scored]
        requests = [prompts.user_summary_prompt(s.context) for s in scored] + [
            prompts.value_summary_prompt(sup, opp, c.value_summary_max_sentences) for sup, opp in stance_lists
        ]
        completions = summaries.generate(self.author, requests, c.summary_max_tokens)
        n = len(scored)
        user_texts, value_texts = [], []
        for k, s in enumerate(scored):
            user_c, value_c = completions[k], completions[n + k]
            user_text = summaries.clean_summary(user_c.text, cut_off=user_c.finish_reason == "length")
            if not user_text:
                answer_skips.add(
                    "empty_summary",
                    "the author returned no user summary; left empty",
                    record_id=s.user.user_id,
                )
            value_text = summaries.clean_summary(
                value_c.text, c.value_summary_max_sentences, cut_off=value_c.finish_reason == "length"
            )
            if not value_text:
                supported, opposed = stance_lists[k]
                value_text = summaries.fallback_value_summary(
                    supported, opposed, c.value_summary_max_sentences
                )
                answer_skips.add(
                    "empty_summary",
                    "the author returned no value summary; used the strongest stances instead",
                    record_id=s.user.user_id,
                )
            user_texts.append(user_text)
            value_texts.append(value_text)
        stats.seconds["summaries"] += time.perf_counter() - started
        return user_texts, value_texts

    def _strongest(self, stances: Sequence[StanceOutcome]) -> tuple[list[str], list[str]]:
        """The most confident supported and opposed statements, within the prompt's statement cap."""
        decided = [s for s in stances if s.usable and s.stance != profile_pb2.STANCE_NEUTRAL]
        decided.sort(key=lambda s: -s.confidence)
        decided = decided[: self.config.value_summary_max_statements]
        supported = [s.statement.text for s in decided if s.stance == profile_pb2.STANCE_SUPPORT]
        opposed = [s.statement.text for s in decided if s.stance == profile_pb2.STANCE_OPPOSE]
        return supported, opposed

    def _assemble(
        self,
        s: _Scored,
        user_summary: str,
        value_summary: str,
        cohort_id: str,
        cohort_size: int,
        built_at: int,
        protocol: str,
    ) -> profile_pb2.UserProfile:
        user = s.user
        return profile_pb2.UserProfile(
            user_id=user.user_id,
            demographics=s.demographics.proto,  # type: ignore[attr-defined]
            interests=interests(user.reviews, user.books, self.config.interest_threshold),
            values=[st.to_proto() for st in s.stances],
            value_summary=value_summary,
            personality=s.personality.to_proto(),
            user_summary=user_summary,
            review_count=len(user.reviews),
            version=SCHEMA_VERSION,
            revision=self.revision(user, protocol),
            reviews=[r.to_proto() for r in user.reviews[: self.config.max_reviews_in_profile]],
            reviewed_asins=[r.parent_asin for r in user.reviews],
            cohort_id=cohort_id,
            cohort_size=cohort_size,
            built_at_ms=built_at,
            models=self.models,
        )


def input_digest(user: UserInput) -> str:
    """sha256 of one user's profiling input: reviews, the reviewed books' genre data, given demographics."""
    d = user.demographics
    payload = {
        "user_id": user.user_id,
        "reviews": [[r.parent_asin, r.rating, r.title, r.text, r.timestamp_ms] for r in user.reviews],
        "books": sorted([b.parent_asin, b.title, b.categories] for b in user.books.values()),
        "demographics": [d.age, d.age_group, d.gender, d.country] if d is not None else None,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def cohort_id_for(digests: Sequence[tuple[str, str]]) -> str:
    """A deterministic cohort id from (user_id, input digest) pairs: the same batch gets the same id."""
    h = hashlib.sha256()
    for user_id, digest in sorted(digests):
        h.update(f"{user_id}\0{digest}\n".encode())
    return "cohort-" + h.hexdigest()[:12]
