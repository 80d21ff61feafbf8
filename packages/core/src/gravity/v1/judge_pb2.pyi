from gravity.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JudgeProtocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JUDGE_PROTOCOL_UNSPECIFIED: _ClassVar[JudgeProtocol]
    JUDGE_PROTOCOL_PAPER: _ClassVar[JudgeProtocol]
    JUDGE_PROTOCOL_DEBIASED: _ClassVar[JudgeProtocol]
    JUDGE_PROTOCOL_BOTH: _ClassVar[JudgeProtocol]
JUDGE_PROTOCOL_UNSPECIFIED: JudgeProtocol
JUDGE_PROTOCOL_PAPER: JudgeProtocol
JUDGE_PROTOCOL_DEBIASED: JudgeProtocol
JUDGE_PROTOCOL_BOTH: JudgeProtocol

class JudgePersona(_message.Message):
    __slots__ = ("user_id", "age_group", "gender", "country", "user_summary")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AGE_GROUP_FIELD_NUMBER: _ClassVar[int]
    GENDER_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    USER_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    age_group: str
    gender: str
    country: str
    user_summary: str
    def __init__(self, user_id: _Optional[str] = ..., age_group: _Optional[str] = ..., gender: _Optional[str] = ..., country: _Optional[str] = ..., user_summary: _Optional[str] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("id", "text")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class Generation(_message.Message):
    __slots__ = ("user_id", "parent_asin", "method", "method_variant", "text", "book_title", "genre", "genre_group", "model", "adapter", "prompt_tokens", "completion_tokens", "latency_ms")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ASIN_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    METHOD_VARIANT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BOOK_TITLE_FIELD_NUMBER: _ClassVar[int]
    GENRE_FIELD_NUMBER: _ClassVar[int]
    GENRE_GROUP_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    parent_asin: str
    method: _common_pb2.Method
    method_variant: str
    text: str
    book_title: str
    genre: str
    genre_group: str
    model: str
    adapter: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    def __init__(self, user_id: _Optional[str] = ..., parent_asin: _Optional[str] = ..., method: _Optional[_Union[_common_pb2.Method, str]] = ..., method_variant: _Optional[str] = ..., text: _Optional[str] = ..., book_title: _Optional[str] = ..., genre: _Optional[str] = ..., genre_group: _Optional[str] = ..., model: _Optional[str] = ..., adapter: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class RankRequest(_message.Message):
    __slots__ = ("persona", "candidates", "orders", "seed")
    PERSONA_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    persona: JudgePersona
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    orders: int
    seed: int
    def __init__(self, persona: _Optional[_Union[JudgePersona, _Mapping]] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., orders: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class RankResponse(_message.Message):
    __slots__ = ("ranking", "first_place_probability", "order_agreement", "usable")
    class FirstPlaceProbabilityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    RANKING_FIELD_NUMBER: _ClassVar[int]
    FIRST_PLACE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    ORDER_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    USABLE_FIELD_NUMBER: _ClassVar[int]
    ranking: _containers.RepeatedScalarFieldContainer[str]
    first_place_probability: _containers.ScalarMap[str, float]
    order_agreement: float
    usable: bool
    def __init__(self, ranking: _Optional[_Iterable[str]] = ..., first_place_probability: _Optional[_Mapping[str, float]] = ..., order_agreement: _Optional[float] = ..., usable: _Optional[bool] = ...) -> None: ...

class CompareRequest(_message.Message):
    __slots__ = ("persona", "a", "b")
    PERSONA_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    persona: JudgePersona
    a: Candidate
    b: Candidate
    def __init__(self, persona: _Optional[_Union[JudgePersona, _Mapping]] = ..., a: _Optional[_Union[Candidate, _Mapping]] = ..., b: _Optional[_Union[Candidate, _Mapping]] = ...) -> None: ...

class CompareResponse(_message.Message):
    __slots__ = ("preferred", "probability_a", "orders_agree", "position_biased", "usable")
    PREFERRED_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_A_FIELD_NUMBER: _ClassVar[int]
    ORDERS_AGREE_FIELD_NUMBER: _ClassVar[int]
    POSITION_BIASED_FIELD_NUMBER: _ClassVar[int]
    USABLE_FIELD_NUMBER: _ClassVar[int]
    preferred: str
    probability_a: float
    orders_agree: bool
    position_biased: bool
    usable: bool
    def __init__(self, preferred: _Optional[str] = ..., probability_a: _Optional[float] = ..., orders_agree: _Optional[bool] = ..., position_biased: _Optional[bool] = ..., usable: _Optional[bool] = ...) -> None: ...

class RateRequest(_message.Message):
    __slots__ = ("persona", "candidate")
    PERSONA_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    persona: JudgePersona
    candidate: Candidate
    def __init__(self, persona: _Optional[_Union[JudgePersona, _Mapping]] = ..., candidate: _Optional[_Union[Candidate, _Mapping]] = ...) -> None: ...

class RateResponse(_message.Message):
    __slots__ = ("score", "distribution", "usable")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    USABLE_FIELD_NUMBER: _ClassVar[int]
    score: float
    distribution: _containers.RepeatedScalarFieldContainer[float]
    usable: bool
    def __init__(self, score: _Optional[float] = ..., distribution: _Optional[_Iterable[float]] = ..., usable: _Optional[bool] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("generations", "personas", "report_name", "protocol")
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    PERSONAS_FIELD_NUMBER: _ClassVar[int]
    REPORT_NAME_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    generations: _containers.RepeatedCompositeFieldContainer[Generation]
    personas: _containers.RepeatedCompositeFieldContainer[JudgePersona]
    report_name: str
    protocol: JudgeProtocol
    def __init__(self, generations: _Optional[_Iterable[_Union[Generation, _Mapping]]] = ..., personas: _Optional[_Iterable[_Union[JudgePersona, _Mapping]]] = ..., report_name: _Optional[str] = ..., protocol: _Optional[_Union[JudgeProtocol, str]] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: EvaluateProgress
    result: EvaluateResult
    def __init__(self, progress: _Optional[_Union[EvaluateProgress, _Mapping]] = ..., result: _Optional[_Union[EvaluateResult, _Mapping]] = ...) -> None: ...

class EvaluateProgress(_message.Message):
    __slots__ = ("done", "total", "stage")
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    done: int
    total: int
    stage: str
    def __init__(self, done: _Optional[int] = ..., total: _Optional[int] = ..., stage: _Optional[str] = ...) -> None: ...

class EvaluateResult(_message.Message):
    __slots__ = ("report_json", "report_uri", "unusable_judgments", "skipped")
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    REPORT_URI_FIELD_NUMBER: _ClassVar[int]
    UNUSABLE_JUDGMENTS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    report_json: str
    report_uri: str
    unusable_judgments: int
    skipped: _containers.RepeatedCompositeFieldContainer[_common_pb2.DeadLetter]
    def __init__(self, report_json: _Optional[str] = ..., report_uri: _Optional[str] = ..., unusable_judgments: _Optional[int] = ..., skipped: _Optional[_Iterable[_Union[_common_pb2.DeadLetter, _Mapping]]] = ...) -> None: ...
