from gravity.v1 import profile_pb2 as _profile_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Facet(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FACET_UNSPECIFIED: _ClassVar[Facet]
    FACET_CATEGORY: _ClassVar[Facet]
    FACET_SUMMARY: _ClassVar[Facet]
    FACET_VALUES: _ClassVar[Facet]
    FACET_PERSONALITY: _ClassVar[Facet]
    FACET_PREF_ALIGN: _ClassVar[Facet]
    FACET_USER_SFT: _ClassVar[Facet]
FACET_UNSPECIFIED: Facet
FACET_CATEGORY: Facet
FACET_SUMMARY: Facet
FACET_VALUES: Facet
FACET_PERSONALITY: Facet
FACET_PREF_ALIGN: Facet
FACET_USER_SFT: Facet

class PreferencePair(_message.Message):
    __slots__ = ("pair_id", "user_id", "facet", "trait", "prompt", "chosen", "rejected", "provenance_ids")
    PAIR_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FACET_FIELD_NUMBER: _ClassVar[int]
    TRAIT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_IDS_FIELD_NUMBER: _ClassVar[int]
    pair_id: str
    user_id: str
    facet: Facet
    trait: str
    prompt: str
    chosen: str
    rejected: str
    provenance_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pair_id: _Optional[str] = ..., user_id: _Optional[str] = ..., facet: _Optional[_Union[Facet, str]] = ..., trait: _Optional[str] = ..., prompt: _Optional[str] = ..., chosen: _Optional[str] = ..., rejected: _Optional[str] = ..., provenance_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ShardRef(_message.Message):
    __slots__ = ("shard_id", "dataset_id", "kind", "user_id", "uri", "sha256", "row_count", "counts_by_facet", "manifest_uri", "manifest_sha256", "dataset_complete", "cohort_size", "recipe")
    class CountsByFacetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    COUNTS_BY_FACET_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_URI_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_SHA256_FIELD_NUMBER: _ClassVar[int]
    DATASET_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    COHORT_SIZE_FIELD_NUMBER: _ClassVar[int]
    RECIPE_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    dataset_id: str
    kind: str
    user_id: str
    uri: str
    sha256: str
    row_count: int
    counts_by_facet: _containers.ScalarMap[str, int]
    manifest_uri: str
    manifest_sha256: str
    dataset_complete: bool
    cohort_size: int
    recipe: str
    def __init__(self, shard_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., kind: _Optional[str] = ..., user_id: _Optional[str] = ..., uri: _Optional[str] = ..., sha256: _Optional[str] = ..., row_count: _Optional[int] = ..., counts_by_facet: _Optional[_Mapping[str, int]] = ..., manifest_uri: _Optional[str] = ..., manifest_sha256: _Optional[str] = ..., dataset_complete: _Optional[bool] = ..., cohort_size: _Optional[int] = ..., recipe: _Optional[str] = ...) -> None: ...

class BuildPairsRequest(_message.Message):
    __slots__ = ("profile", "recipe", "skip_publish")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    RECIPE_FIELD_NUMBER: _ClassVar[int]
    SKIP_PUBLISH_FIELD_NUMBER: _ClassVar[int]
    profile: _profile_pb2.UserProfile
    recipe: str
    skip_publish: bool
    def __init__(self, profile: _Optional[_Union[_profile_pb2.UserProfile, _Mapping]] = ..., recipe: _Optional[str] = ..., skip_publish: _Optional[bool] = ...) -> None: ...

class BuildPairsResponse(_message.Message):
    __slots__ = ("shards",)
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    shards: _containers.RepeatedCompositeFieldContainer[ShardRef]
    def __init__(self, shards: _Optional[_Iterable[_Union[ShardRef, _Mapping]]] = ...) -> None: ...

class GetManifestRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class GetManifestResponse(_message.Message):
    __slots__ = ("manifest_json", "manifest_uri", "manifest_sha256")
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_URI_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_SHA256_FIELD_NUMBER: _ClassVar[int]
    manifest_json: str
    manifest_uri: str
    manifest_sha256: str
    def __init__(self, manifest_json: _Optional[str] = ..., manifest_uri: _Optional[str] = ..., manifest_sha256: _Optional[str] = ...) -> None: ...
