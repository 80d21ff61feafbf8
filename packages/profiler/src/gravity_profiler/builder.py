"""UserInput -> UserProfile: demographics, interests, values and beliefs, Big Five, two summaries.

One builder serves the batch command and the service. Every review is read: the history is split into
context-sized chunks (:mod:`history`), every scoring question is asked on each chunk against one encoded
prefix (shared prefix) and the chunks' answers are pooled (:mod:`pooling`); the user summary is a
map-reduce over the chunks. The author's summaries run batched across the users of a call. What was read
and what could not be read is recorded in each profile's ``evidence``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from gravity.v1 import profile_pb2
from gravity_core.config import Settings
from gravity_core.llm import LLMClient, llm_for_role
from gravity_core.logging import get_logger
from gravity_core.skips import SkipLog
from gravity_core.values import SeedStatement, load_seed_statements
from gravity_profiler import prompts, summaries
from gravity_profiler.demographics import DemographicsResult, resolve_demographics
from gravity_profiler.history import ReviewHistory, chunk_budget, review_lines, split_history
from gravity_profiler.inputs import UserInput
from gravity_profiler.interests import interests
from gravity_profiler.personality import (
    ClassifierEstimator,
    MiniIpipEstimator,
    PersonalityEstimator,
    PersonalityResult,
    mini_ipip_items,
)
from gravity_profiler.pooling import pooling_rule
from gravity_profiler.settings import REMOTE_CONTEXT_TOKENS, ProfilerSettings, profiler_settings
from gravity_profiler.stances import StanceOutcome, infer_stances, outcome

log = get_logger(__name__)
SCHEMA_VERSION = 1


@dataclass
class BuildStats:
    users: int = 0
    # Users whose history the optional prompt_review_chars cap shortened, and users read in several chunks.
    capped_users: int = 0
    chunked_users: int = 0
    chunks: int = 0
    reviews_total: int = 0
    reviews_read: int = 0
    # Answers that could not be read (recorded as unreadable, never as values) and traits left UNKNOWN.
    unreadable_stances: int = 0
    unreadable_items: int = 0
    unknown_traits: int = 0
    estimated_fields: Counter[str] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    # Tokens the models processed: "scoring" (annotator prompts), "summary prompt", "summary generated".
    tokens: Counter[str] = field(default_factory=Counter)

    def merge(self, other: BuildStats) -> None:
        for name in (
            "users",
            "capped_users",
            "chunked_users",
            "chunks",
            "reviews_total",
            "reviews_read",
            "unreadable_stances",
            "unreadable_items",
            "unknown_traits",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.estimated_fields.update(other.estimated_fields)
        for stage, seconds in other.seconds.items():
            self.seconds[stage] += seconds
        self.tokens.update(other.tokens)

    def count(
        self, history: ReviewHistory, stances: Sequence[StanceOutcome], personality: PersonalityResult
    ) -> None:
        self.capped_users += history.capped
        self.chunked_users += len(history.chunks) > 1
        self.chunks += len(history.chunks)
        self.reviews_total += history.total
        self.reviews_read += history.read
        self.unreadable_stances += sum(not s.usable for s in stances)
        self.unreadable_items += personality.unreadable_items
        self.unknown_traits += personality.unknown_traits


@dataclass
class _Scored:
    user: UserInput
    history: ReviewHistory
    demographics: DemographicsResult
    stances: list[StanceOutcome]
    personality: PersonalityResult
    pooling: str


def make_estimator(settings: ProfilerSettings, annotator: LLMClient) -> PersonalityEstimator:
    if settings.personality_estimator == "classifier":
        return ClassifierEstimator(settings.classifier, settings.trait_threshold)
    return MiniIpipEstimator(annotator, settings.trait_threshold, settings.min_readable_items)


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
        self.context_tokens = self._context_tokens()
        self.chunk_tokens = chunk_budget(self.context_tokens, self._prompt_overheads())

    # ------------------------------------------------------------- history
    def _context_tokens(self) -> int:
        """The configured context, else the smaller of the annotator's and the author's windows."""
        if self.config.context_tokens:
            return self.config.context_tokens
        windows = []
        for role, llm in (("annotator", self.annotator), ("author", self.author)):
            window = llm.info.context_window
            if not window:
                log.warning(
                    "context_window_unknown",
                    role=role,
                    model=llm.info.name,
                    assumed=REMOTE_CONTEXT_TOKENS,
                    hint="set profiler.context_tokens to the model's context window",
                )
                window = REMOTE_CONTEXT_TOKENS
            windows.append(window)
        return min(windows)

    def _prompt_overheads(self) -> list[int]:
        """Tokens each kind of prompt needs besides its reviews: its own text, question and answer room."""
        c, count = self.config, self.annotator.count_tokens
        longest_statement = max((s.text for s in self.statements), key=len, default="")
        longest_country = max(c.countries, key=len)
        demo = prompts.demographics_text("middle-aged", "female", longest_country)
        # Chat template and role markers, and the longest answer read (a label's or a digit's tokens).
        template = 48
        overheads = [
            count(prompts.stance_context("", demo) + prompts.stance_question(longest_statement)) + template,
            count(prompts.ipip_context("") + max((i.text for i in mini_ipip_items()), key=len)) + template,
            count(prompts.demographic_context("") + prompts.demographic_question("country", c.countries))
            + template,
            self.author.count_tokens(prompts.user_summary_prompt("")) + c.summary_max_tokens + template,
        ]
        if self.annotator.info.backend != "embedded" and c.remote_strategy == "batched":
            longest = sorted((s.text for s in self.statements), key=len)[-c.remote_batch_size :]
            batch = prompts.stance_context("", demo, prompts.stance_batch_question())
            overheads.append(
                count(batch + prompts.numbered_statements(longest)) + 8 * c.remote_batch_size + 64
            )
        return overheads

    def history(self, user: UserInput) -> ReviewHistory:
        """The user's reviews as the prompts read them: every one (unless capped), in context-sized chunks."""
        c = self.config
        lines = review_lines(user.reviews, user.books, c.max_review_chars, c.prompt_review_chars)
        return split_history(
            lines, len(user.reviews), self.chunk_tokens, self.annotator.count_tokens, c.prompt_review_chars
        )

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
        history = self.history(user)
        if history.capped:
            log.warning(
                "review_history_capped",
                user_id=user.user_id,
                reviews=history.total,
                read=history.read,
                prompt_review_chars=c.prompt_review_chars,
            )
        started = time.perf_counter()
        demographics = resolve_demographics(user.demographics, self.annotator, history, c.countries)
        stats.estimated_fields.update(demographics.estimated)
        for field_name in demographics.unusable:
            answer_skips.add(
                "unparseable_answer",
                f"no allowed value for {field_name}; left unknown",
                record_id=f"{user.user_id}/{field_name}",
            )
        stats.seconds["demographics"] += time.perf_counter() - started

        started = time.perf_counter()
        contexts = [prompts.stance_context(chunk, demographics.text) for chunk in history.chunks]
        batched = [
            prompts.stance_context(chunk, demographics.text, prompts.stance_batch_question())
            for chunk in history.chunks
        ]
        scores = infer_stances(self.annotator, contexts, self.statements, protocol, c, batched)
        stances = [outcome(s, sc) for s, sc in zip(self.statements, scores, strict=True)]
        for st in stances:
            if not st.usable:
                answer_skips.add(
                    "unparseable_answer",
                    f"answer {st.raw_text!r} is none of {', '.join(prompts.STANCE_LABELS)}; "
                    "recorded as unreadable",
                    record_id=f"{user.user_id}/{st.statement.id}",
                )
        stats.seconds["stances"] += time.perf_counter() - started

        started = time.perf_counter()
        personality = self.estimator.estimate(history)
        if personality.unreadable_items:
            answer_skips.add(
                "unparseable_answer",
                f"{personality.unreadable_items} Mini-IPIP item(s) had no readable rating; "
                f"{personality.unknown_traits} trait(s) left UNKNOWN",
                record_id=f"{user.user_id}/personality",
            )
        stats.seconds["personality"] += time.perf_counter() - started
        stats.count(history, stances, personality)
        return _Scored(
            user, history, demographics, stances, personality, pooling_rule(len(history.chunks), scores)
        )

    def _summaries(
        self, scored: Sequence[_Scored], answer_skips: SkipLog, stats: BuildStats
    ) -> tuple[list[str], list[str]]:
        """Both summaries of every user. The user summary is a map-reduce over the history's chunks: one
        summary per chunk and, for a history of several chunks, one combined from them. The map step and the
        value summaries are generated in one batch across the users, the combinations in a second."""
        c = self.config
        started = time.perf_counter()
        stance_lists = [strongest(s.stances, c.value_summary_max_statements) for s in scored]
        owners = [k for k, s in enumerate(scored) for _ in s.history.chunks]
        requests = [prompts.user_summary_prompt(chunk) for s in scored for chunk in s.history.chunks]
        requests += [
            prompts.value_summary_prompt(sup, opp, c.value_summary_max_sentences) for sup, opp in stance_lists
        ]
        completions = summaries.generate(self.author, requests, c.summary_max_tokens)
        partials: list[list[str]] = [[] for _ in scored]
        for k, completion in zip(owners, completions, strict=False):
            text = summaries.clean_summary(completion.text, cut_off=completion.finish_reason == "length")
            if text:
                partials[k].append(text)
        user_texts = [
            p[0] if len(s.history.chunks) == 1 and p else "" for s, p in zip(scored, partials, strict=True)
        ]
        combine = [k for k, s in enumerate(scored) if len(s.history.chunks) > 1 and partials[k]]
        combined = summaries.generate(
            self.author,
            [prompts.combine_summaries_prompt(partials[k]) for k in combine],
            c.summary_max_tokens,
        )
        for k, completion in zip(combine, combined, strict=True):
            # An empty combination falls back to the most recent chunk's own summary (real output too).
            user_texts[k] = (
                summaries.clean_summary(completion.text, cut_off=completion.finish_reason == "length")
                or partials[k][0]
            )
        value_texts = []
        for k, s in enumerate(scored):
            if not user_texts[k]:
                answer_skips.add(
                    "empty_summary",
                    "the author returned no user summary; left empty",
                    record_id=s.user.user_id,
                )
            value_c = completions[len(owners) + k]
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
            value_texts.append(value_text)
        stats.seconds["summaries"] += time.perf_counter() - started
        return user_texts, value_texts

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
            demographics=s.demographics.proto,
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
            evidence=profile_pb2.ProfileEvidence(
                reviews_total=s.history.total,
                reviews_read=s.history.read,
                chunks=len(s.history.chunks),
                pooling=s.pooling,
                unreadable_stances=sum(not st.usable for st in s.stances),
                unreadable_items=s.personality.unreadable_items,
                review_chars_cap=self.config.prompt_review_chars,
            ),
        )


def strongest(stances: Sequence[StanceOutcome], limit: int) -> tuple[list[str], list[str]]:
    """The supported and opposed statements for the value-summary prompt, most confident first.

    Statements with a confidence come first, by descending confidence; statements without one (parsed from
    text) follow in bank order: a parsed answer is not known to be more or less certain than another, and
    is not known to be more certain than any measured one. Neutral and unreadable stances are left out.
    """
    decided = [
        s for s in stances if s.usable and s.stance in (profile_pb2.STANCE_SUPPORT, profile_pb2.STANCE_OPPOSE)
    ]
    decided.sort(key=lambda s: (s.confidence is None, -(s.confidence or 0.0)))
    decided = decided[:limit]
    supported = [s.statement.text for s in decided if s.stance == profile_pb2.STANCE_SUPPORT]
    opposed = [s.statement.text for s in decided if s.stance == profile_pb2.STANCE_OPPOSE]
    return supported, opposed


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
