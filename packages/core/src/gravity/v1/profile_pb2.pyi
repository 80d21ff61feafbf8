from gravity.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Stance(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STANCE_UNSPECIFIED: _ClassVar[Stance]
    STANCE_SUPPORT: _ClassVar[Stance]
    STANCE_OPPOSE: _ClassVar[Stance]
    STANCE_NEUTRAL: _ClassVar[Stance]
    STANCE_UNREADABLE: _ClassVar[Stance]

class Trait(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAIT_UNSPECIFIED: _ClassVar[Trait]
    TRAIT_OPENNESS: _ClassVar[Trait]
    TRAIT_CONSCIENTIOUSNESS: _ClassVar[Trait]
    TRAIT_EXTRAVERSION: _ClassVar[Trait]
    TRAIT_AGREEABLENESS: _ClassVar[Trait]
    TRAIT_NEUROTICISM: _ClassVar[Trait]

class TraitLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAIT_LEVEL_UNSPECIFIED: _ClassVar[TraitLevel]
    TRAIT_LEVEL_LOW: _ClassVar[TraitLevel]
    TRAIT_LEVEL_HIGH: _ClassVar[TraitLevel]
    TRAIT_LEVEL_UNKNOWN: _ClassVar[TraitLevel]
STANCE_UNSPECIFIED: Stance
STANCE_SUPPORT: Stance
STANCE_OPPOSE: Stance
STANCE_NEUTRAL: Stance
STANCE_UNREADABLE: Stance
TRAIT_UNSPECIFIED: Trait
TRAIT_OPENNESS: Trait
TRAIT_CONSCIENTIOUSNESS: Trait
TRAIT_EXTRAVERSION: Trait
TRAIT_AGREEABLENESS: Trait
TRAIT_NEUROTICISM: Trait
TRAIT_LEVEL_UNSPECIFIED: TraitLevel
TRAIT_LEVEL_LOW: TraitLevel
TRAIT_LEVEL_HIGH: TraitLevel
TRAIT_LEVEL_UNKNOWN: TraitLevel

class Interest(_message.Message):
    __slots__ = ("genre", "share", "review_count", "genre_group")
    GENRE_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    REVIEW_COUNT_FIELD_NUMBER: _ClassVar[int]
    GENRE_GROUP_FIELD_NUMBER: _ClassVar[int]
    genre: str
    share: float
    review_count: int
    genre_group: str
    def __init__(self, genre: _Optional[str] = ..., share: _Optional[float] = ..., review_count: _Optional[int] = ..., genre_group: _Optional[str] = ...) -> None: ...

class ValueStance(_message.Message):
    __slots__ = ("statement_id", "stance", "confidence", "statement", "framework", "topic")
    STATEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STANCE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    statement_id: str
    stance: Stance
    confidence: float
    statement: str
    framework: str
    topic: str
    def __init__(self, statement_id: _Optional[str] = ..., stance: _Optional[_Union[Stance, str]] = ..., confidence: _Optional[float] = ..., statement: _Optional[str] = ..., framework: _Optional[str] = ..., topic: _Optional[str] = ...) -> None: ...

class TraitScore(_message.Message):
    __slots__ = ("trait", "level", "score", "readable_items", "items")
    TRAIT_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    READABLE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    trait: Trait
    level: TraitLevel
    score: float
    readable_items: int
    items: int
    def __init__(self, trait: _Optional[_Union[Trait, str]] = ..., level: _Optional[_Union[TraitLevel, str]] = ..., score: _Optional[float] = ..., readable_items: _Optional[int] = ..., items: _Optional[int] = ...) -> None: ...

class Personality(_message.Message):
    __slots__ = ("traits", "estimator")
    TRAITS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATOR_FIELD_NUMBER: _ClassVar[int]
    traits: _containers.RepeatedCompositeFieldContainer[TraitScore]
    estimator: str
    def __init__(self, traits: _Optional[_Iterable[_Union[TraitScore, _Mapping]]] = ..., estimator: _Optional[str] = ...) -> None: ...

class UserProfile(_message.Message):
    __slots__ = ("user_id", "demographics", "interests", "values", "value_summary", "personality", "user_summary", "review_count", "version", "revision", "reviews", "reviewed_asins", "cohort_id", "cohort_size", "built_at_ms", "models", "evidence")
    class ModelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEMOGRAPHICS_FIELD_NUMBER: _ClassVar[int]
    INTERESTS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    VALUE_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PERSONALITY_FIELD_NUMBER: _ClassVar[int]
    USER_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    REVIEW_COUNT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    REVIEWS_FIELD_NUMBER: _ClassVar[int]
    REVIEWED_ASINS_FIELD_NUMBER: _ClassVar[int]
    COHORT_ID_FIELD_NUMBER: _ClassVar[int]
    COHORT_SIZE_FIELD_NUMBER: _ClassVar[int]
    BUILT_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    demographics: _common_pb2.Demographics
    interests: _containers.RepeatedCompositeFieldContainer[Interest]
    values: _containers.RepeatedCompositeFieldContainer[ValueStance]
    value_summary: str
    personality: Personality
    user_summary: str
    review_count: int
    version: int
    revision: str
    reviews: _containers.RepeatedCompositeFieldContainer[_common_pb2.Review]
    reviewed_asins: _containers.RepeatedScalarFieldContainer[str]
    cohort_id: str
    cohort_size: int
    built_at_ms: int
    models: _containers.ScalarMap[str, str]
    evidence: ProfileEvidence
    def __init__(self, user_id: _Optional[str] = ..., demographics: _Optional[_Union[_common_pb2.Demographics, _Mapping]] = ..., interests: _Optional[_Iterable[_Union[Interest, _Mapping]]] = ..., values: _Optional[_Iterable[_Union[ValueStance, _Mapping]]] = ..., value_summary: _Optional[str] = ..., personality: _Optional[_Union[Personality, _Mapping]] = ..., user_summary: _Optional[str] = ..., review_count: _Optional[int] = ..., version: _Optional[int] = ..., revision: _Optional[str] = ..., reviews: _Optional[_Iterable[_Union[_common_pb2.Review, _Mapping]]] = ..., reviewed_asins: _Optional[_Iterable[str]] = ..., cohort_id: _Optional[str] = ..., cohort_size: _Optional[int] = ..., built_at_ms: _Optional[int] = ..., models: _Optional[_Mapping[str, str]] = ..., evidence: _Optional[_Union[ProfileEvidence, _Mapping]] = ...) -> None: ...

class ProfileEvidence(_message.Message):
    __slots__ = ("reviews_total", "reviews_read", "chunks", "pooling", "unreadable_stances", "unreadable_items", "review_chars_cap")
    REVIEWS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REVIEWS_READ_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    POOLING_FIELD_NUMBER: _ClassVar[int]
    UNREADABLE_STANCES_FIELD_NUMBER: _ClassVar[int]
    UNREADABLE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    REVIEW_CHARS_CAP_FIELD_NUMBER: _ClassVar[int]
    reviews_total: int
    reviews_read: int
    chunks: int
    pooling: str
    unreadable_stances: int
    unreadable_items: int
    review_chars_cap: int
    def __init__(self, reviews_total: _Optional[int] = ..., reviews_read: _Optional[int] = ..., chunks: _Optional[int] = ..., pooling: _Optional[str] = ..., unreadable_stances: _Optional[int] = ..., unreadable_items: _Optional[int] = ..., review_chars_cap: _Optional[int] = ...) -> None: ...

class BuildProfileRequest(_message.Message):
    __slots__ = ("user_id", "reviews", "books", "demographics", "skip_publish", "cohort_id", "cohort_size")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REVIEWS_FIELD_NUMBER: _ClassVar[int]
    BOOKS_FIELD_NUMBER: _ClassVar[int]
    DEMOGRAPHICS_FIELD_NUMBER: _ClassVar[int]
    SKIP_PUBLISH_FIELD_NUMBER: _ClassVar[int]
    COHORT_ID_FIELD_NUMBER: _ClassVar[int]
    COHORT_SIZE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    reviews: _containers.RepeatedCompositeFieldContainer[_common_pb2.Review]
    books: _containers.RepeatedCompositeFieldContainer[_common_pb2.Book]
    demographics: _common_pb2.Demographics
    skip_publish: bool
    cohort_id: str
    cohort_size: int
    def __init__(self, user_id: _Optional[str] = ..., reviews: _Optional[_Iterable[_Union[_common_pb2.Review, _Mapping]]] = ..., books: _Optional[_Iterable[_Union[_common_pb2.Book, _Mapping]]] = ..., demographics: _Optional[_Union[_common_pb2.Demographics, _Mapping]] = ..., skip_publish: _Optional[bool] = ..., cohort_id: _Optional[str] = ..., cohort_size: _Optional[int] = ...) -> None: ...

class BuildProfileResponse(_message.Message):
    __slots__ = ("profile", "published")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    profile: UserProfile
    published: bool
    def __init__(self, profile: _Optional[_Union[UserProfile, _Mapping]] = ..., published: _Optional[bool] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: UserProfile
    def __init__(self, profile: _Optional[_Union[UserProfile, _Mapping]] = ...) -> None: ...

class IngestRecordsRequest(_message.Message):
    __slots__ = ("review_line", "meta_line", "demographics_line", "cohort_id")
    REVIEW_LINE_FIELD_NUMBER: _ClassVar[int]
    META_LINE_FIELD_NUMBER: _ClassVar[int]
    DEMOGRAPHICS_LINE_FIELD_NUMBER: _ClassVar[int]
    COHORT_ID_FIELD_NUMBER: _ClassVar[int]
    review_line: _common_pb2.SourceLine
    meta_line: _common_pb2.SourceLine
    demographics_line: _common_pb2.SourceLine
    cohort_id: str
    def __init__(self, review_line: _Optional[_Union[_common_pb2.SourceLine, _Mapping]] = ..., meta_line: _Optional[_Union[_common_pb2.SourceLine, _Mapping]] = ..., demographics_line: _Optional[_Union[_common_pb2.SourceLine, _Mapping]] = ..., cohort_id: _Optional[str] = ...) -> None: ...

class IngestRecordsResponse(_message.Message):
    __slots__ = ("cohort_id", "accepted_users", "lines_read", "lines_skipped", "skipped_by_reason", "users_below_threshold")
    class SkippedByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    COHORT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_USERS_FIELD_NUMBER: _ClassVar[int]
    LINES_READ_FIELD_NUMBER: _ClassVar[int]
    LINES_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    USERS_BELOW_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    cohort_id: str
    accepted_users: _containers.RepeatedScalarFieldContainer[str]
    lines_read: int
    lines_skipped: int
    skipped_by_reason: _containers.ScalarMap[str, int]
    users_below_threshold: int
    def __init__(self, cohort_id: _Optional[str] = ..., accepted_users: _Optional[_Iterable[str]] = ..., lines_read: _Optional[int] = ..., lines_skipped: _Optional[int] = ..., skipped_by_reason: _Optional[_Mapping[str, int]] = ..., users_below_threshold: _Optional[int] = ...) -> None: ...
