from gravity.v1 import common_pb2 as _common_pb2
from gravity.v1 import profile_pb2 as _profile_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InlineBook(_message.Message):
    __slots__ = ("title", "description", "genre")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    GENRE_FIELD_NUMBER: _ClassVar[int]
    title: str
    description: str
    genre: str
    def __init__(self, title: _Optional[str] = ..., description: _Optional[str] = ..., genre: _Optional[str] = ...) -> None: ...

class SamplingParams(_message.Message):
    __slots__ = ("temperature", "top_p", "max_new_tokens")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    top_p: float
    max_new_tokens: int
    def __init__(self, temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., max_new_tokens: _Optional[int] = ...) -> None: ...

class PersonalizeRequest(_message.Message):
    __slots__ = ("user_id", "profile", "parent_asin", "inline_book", "method", "method_variant", "sampling", "seed", "adapter")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PARENT_ASIN_FIELD_NUMBER: _ClassVar[int]
    INLINE_BOOK_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    METHOD_VARIANT_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    profile: _profile_pb2.UserProfile
    parent_asin: str
    inline_book: InlineBook
    method: _common_pb2.Method
    method_variant: str
    sampling: SamplingParams
    seed: int
    adapter: str
    def __init__(self, user_id: _Optional[str] = ..., profile: _Optional[_Union[_profile_pb2.UserProfile, _Mapping]] = ..., parent_asin: _Optional[str] = ..., inline_book: _Optional[_Union[InlineBook, _Mapping]] = ..., method: _Optional[_Union[_common_pb2.Method, str]] = ..., method_variant: _Optional[str] = ..., sampling: _Optional[_Union[SamplingParams, _Mapping]] = ..., seed: _Optional[int] = ..., adapter: _Optional[str] = ...) -> None: ...

class PersonalizeResponse(_message.Message):
    __slots__ = ("text", "method", "method_variant", "model", "adapter", "prompt_tokens", "completion_tokens", "latency_ms", "warnings", "user_id", "parent_asin")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    METHOD_VARIANT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ASIN_FIELD_NUMBER: _ClassVar[int]
    text: str
    method: _common_pb2.Method
    method_variant: str
    model: str
    adapter: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    warnings: _containers.RepeatedScalarFieldContainer[str]
    user_id: str
    parent_asin: str
    def __init__(self, text: _Optional[str] = ..., method: _Optional[_Union[_common_pb2.Method, str]] = ..., method_variant: _Optional[str] = ..., model: _Optional[str] = ..., adapter: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., latency_ms: _Optional[float] = ..., warnings: _Optional[_Iterable[str]] = ..., user_id: _Optional[str] = ..., parent_asin: _Optional[str] = ...) -> None: ...

class PersonalizeStreamRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: PersonalizeRequest
    def __init__(self, request: _Optional[_Union[PersonalizeRequest, _Mapping]] = ...) -> None: ...

class PersonalizeStreamResponse(_message.Message):
    __slots__ = ("delta", "final")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    delta: str
    final: PersonalizeResponse
    def __init__(self, delta: _Optional[str] = ..., final: _Optional[_Union[PersonalizeResponse, _Mapping]] = ...) -> None: ...

class MethodInfo(_message.Message):
    __slots__ = ("method", "method_variant", "description", "requires_adapter", "available", "adapter")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    METHOD_VARIANT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_ADAPTER_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    method: _common_pb2.Method
    method_variant: str
    description: str
    requires_adapter: bool
    available: bool
    adapter: str
    def __init__(self, method: _Optional[_Union[_common_pb2.Method, str]] = ..., method_variant: _Optional[str] = ..., description: _Optional[str] = ..., requires_adapter: _Optional[bool] = ..., available: _Optional[bool] = ..., adapter: _Optional[str] = ...) -> None: ...

class ListMethodsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListMethodsResponse(_message.Message):
    __slots__ = ("methods",)
    METHODS_FIELD_NUMBER: _ClassVar[int]
    methods: _containers.RepeatedCompositeFieldContainer[MethodInfo]
    def __init__(self, methods: _Optional[_Iterable[_Union[MethodInfo, _Mapping]]] = ...) -> None: ...
