from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Provenance(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROVENANCE_UNSPECIFIED: _ClassVar[Provenance]
    PROVENANCE_GIVEN: _ClassVar[Provenance]
    PROVENANCE_ESTIMATED: _ClassVar[Provenance]

class Method(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METHOD_UNSPECIFIED: _ClassVar[Method]
    METHOD_ORIGINAL: _ClassVar[Method]
    METHOD_BASE_REWRITE: _ClassVar[Method]
    METHOD_DEMO_BASED: _ClassVar[Method]
    METHOD_USER_SUMMARY: _ClassVar[Method]
    METHOD_LAMP: _ClassVar[Method]
    METHOD_TRI_AGENT: _ClassVar[Method]
    METHOD_USER_SFT: _ClassVar[Method]
    METHOD_PREF_ALIGN: _ClassVar[Method]
    METHOD_GRAVITY: _ClassVar[Method]
    METHOD_GRAVITY_SFT: _ClassVar[Method]
    METHOD_GRAVITY_ABLATION: _ClassVar[Method]
    METHOD_CUSTOM: _ClassVar[Method]
PROVENANCE_UNSPECIFIED: Provenance
PROVENANCE_GIVEN: Provenance
PROVENANCE_ESTIMATED: Provenance
METHOD_UNSPECIFIED: Method
METHOD_ORIGINAL: Method
METHOD_BASE_REWRITE: Method
METHOD_DEMO_BASED: Method
METHOD_USER_SUMMARY: Method
METHOD_LAMP: Method
METHOD_TRI_AGENT: Method
METHOD_USER_SFT: Method
METHOD_PREF_ALIGN: Method
METHOD_GRAVITY: Method
METHOD_GRAVITY_SFT: Method
METHOD_GRAVITY_ABLATION: Method
METHOD_CUSTOM: Method

class DemographicField(_message.Message):
    __slots__ = ("value", "provenance", "confidence")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    value: str
    provenance: Provenance
    confidence: float
    def __init__(self, value: _Optional[str] = ..., provenance: _Optional[_Union[Provenance, str]] = ..., confidence: _Optional[float] = ...) -> None: ...

class Demographics(_message.Message):
    __slots__ = ("age_group", "gender", "country", "age")
    AGE_GROUP_FIELD_NUMBER: _ClassVar[int]
    GENDER_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    AGE_FIELD_NUMBER: _ClassVar[int]
    age_group: DemographicField
    gender: DemographicField
    country: DemographicField
    age: int
    def __init__(self, age_group: _Optional[_Union[DemographicField, _Mapping]] = ..., gender: _Optional[_Union[DemographicField, _Mapping]] = ..., country: _Optional[_Union[DemographicField, _Mapping]] = ..., age: _Optional[int] = ...) -> None: ...

class Review(_message.Message):
    __slots__ = ("user_id", "parent_asin", "asin", "rating", "title", "text", "timestamp_ms", "helpful_vote", "verified_purchase")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ASIN_FIELD_NUMBER: _ClassVar[int]
    ASIN_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    HELPFUL_VOTE_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_PURCHASE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    parent_asin: str
    asin: str
    rating: float
    title: str
    text: str
    timestamp_ms: int
    helpful_vote: int
    verified_purchase: bool
    def __init__(self, user_id: _Optional[str] = ..., parent_asin: _Optional[str] = ..., asin: _Optional[str] = ..., rating: _Optional[float] = ..., title: _Optional[str] = ..., text: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., helpful_vote: _Optional[int] = ..., verified_purchase: _Optional[bool] = ...) -> None: ...

class Book(_message.Message):
    __slots__ = ("parent_asin", "title", "subtitle", "author", "main_category", "categories", "description", "average_rating", "rating_number", "genre", "genre_group")
    PARENT_ASIN_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SUBTITLE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    MAIN_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_RATING_FIELD_NUMBER: _ClassVar[int]
    RATING_NUMBER_FIELD_NUMBER: _ClassVar[int]
    GENRE_FIELD_NUMBER: _ClassVar[int]
    GENRE_GROUP_FIELD_NUMBER: _ClassVar[int]
    parent_asin: str
    title: str
    subtitle: str
    author: str
    main_category: str
    categories: _containers.RepeatedScalarFieldContainer[str]
    description: str
    average_rating: float
    rating_number: int
    genre: str
    genre_group: str
    def __init__(self, parent_asin: _Optional[str] = ..., title: _Optional[str] = ..., subtitle: _Optional[str] = ..., author: _Optional[str] = ..., main_category: _Optional[str] = ..., categories: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., average_rating: _Optional[float] = ..., rating_number: _Optional[int] = ..., genre: _Optional[str] = ..., genre_group: _Optional[str] = ...) -> None: ...

class SourceLine(_message.Message):
    __slots__ = ("source", "line_number", "data")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LINE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    source: str
    line_number: int
    data: bytes
    def __init__(self, source: _Optional[str] = ..., line_number: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("service", "reason", "detail", "source_topic", "source_partition", "source_offset", "source_file", "source_line", "key", "payload", "failed_at_ms")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PARTITION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FILE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_LINE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    FAILED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    service: str
    reason: str
    detail: str
    source_topic: str
    source_partition: int
    source_offset: int
    source_file: str
    source_line: int
    key: bytes
    payload: bytes
    failed_at_ms: int
    def __init__(self, service: _Optional[str] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ..., source_topic: _Optional[str] = ..., source_partition: _Optional[int] = ..., source_offset: _Optional[int] = ..., source_file: _Optional[str] = ..., source_line: _Optional[int] = ..., key: _Optional[bytes] = ..., payload: _Optional[bytes] = ..., failed_at_ms: _Optional[int] = ...) -> None: ...
