from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignedRequest(_message.Message):
    __slots__ = ("body", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Value(_message.Message):
    __slots__ = ("null", "integer", "real", "text", "boolean")
    NULL_FIELD_NUMBER: _ClassVar[int]
    INTEGER_FIELD_NUMBER: _ClassVar[int]
    REAL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BOOLEAN_FIELD_NUMBER: _ClassVar[int]
    null: bool
    integer: int
    real: float
    text: str
    boolean: bool
    def __init__(self, null: _Optional[bool] = ..., integer: _Optional[int] = ..., real: _Optional[float] = ..., text: _Optional[str] = ..., boolean: _Optional[bool] = ...) -> None: ...

class LabelRow(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class OutputColumn(_message.Message):
    __slots__ = ("name", "group", "function", "decimals")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    DECIMALS_FIELD_NUMBER: _ClassVar[int]
    name: str
    group: int
    function: str
    decimals: int
    def __init__(self, name: _Optional[str] = ..., group: _Optional[int] = ..., function: _Optional[str] = ..., decimals: _Optional[int] = ...) -> None: ...

class OrderKey(_message.Message):
    __slots__ = ("output", "descending")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    output: int
    descending: bool
    def __init__(self, output: _Optional[int] = ..., descending: _Optional[bool] = ...) -> None: ...

class SealedShares(_message.Message):
    __slots__ = ("party", "ephemeral_key", "ciphertext")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_KEY_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    party: str
    ephemeral_key: bytes
    ciphertext: bytes
    def __init__(self, party: _Optional[str] = ..., ephemeral_key: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ...) -> None: ...

class QueryResult(_message.Message):
    __slots__ = ("query_id", "columns", "groups", "shares", "threshold", "order_by", "limit", "seconds")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    columns: _containers.RepeatedCompositeFieldContainer[OutputColumn]
    groups: _containers.RepeatedCompositeFieldContainer[LabelRow]
    shares: _containers.RepeatedCompositeFieldContainer[SealedShares]
    threshold: int
    order_by: _containers.RepeatedCompositeFieldContainer[OrderKey]
    limit: int
    seconds: float
    def __init__(self, query_id: _Optional[str] = ..., columns: _Optional[_Iterable[_Union[OutputColumn, _Mapping]]] = ..., groups: _Optional[_Iterable[_Union[LabelRow, _Mapping]]] = ..., shares: _Optional[_Iterable[_Union[SealedShares, _Mapping]]] = ..., threshold: _Optional[int] = ..., order_by: _Optional[_Iterable[_Union[OrderKey, _Mapping]]] = ..., limit: _Optional[int] = ..., seconds: _Optional[float] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCatalogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ColumnSchema(_message.Message):
    __slots__ = ("name", "type", "policy", "decimals")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DECIMALS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    policy: str
    decimals: int
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., policy: _Optional[str] = ..., decimals: _Optional[int] = ...) -> None: ...

class DatasetSchema(_message.Message):
    __slots__ = ("owner", "name", "columns", "min_group_size", "analysts", "available", "problem")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    MIN_GROUP_SIZE_FIELD_NUMBER: _ClassVar[int]
    ANALYSTS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    owner: str
    name: str
    columns: _containers.RepeatedCompositeFieldContainer[ColumnSchema]
    min_group_size: int
    analysts: _containers.RepeatedScalarFieldContainer[str]
    available: bool
    problem: str
    def __init__(self, owner: _Optional[str] = ..., name: _Optional[str] = ..., columns: _Optional[_Iterable[_Union[ColumnSchema, _Mapping]]] = ..., min_group_size: _Optional[int] = ..., analysts: _Optional[_Iterable[str]] = ..., available: _Optional[bool] = ..., problem: _Optional[str] = ...) -> None: ...

class CatalogReply(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetSchema]
    def __init__(self, datasets: _Optional[_Iterable[_Union[DatasetSchema, _Mapping]]] = ...) -> None: ...

class PrepareRequest(_message.Message):
    __slots__ = ("batch_id", "queries", "plan_digests")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    PLAN_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    queries: _containers.RepeatedCompositeFieldContainer[SignedRequest]
    plan_digests: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, batch_id: _Optional[str] = ..., queries: _Optional[_Iterable[_Union[SignedRequest, _Mapping]]] = ..., plan_digests: _Optional[_Iterable[str]] = ...) -> None: ...

class Failure(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("query_id", "approved", "refusal")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVED_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    approved: bool
    refusal: Failure
    def __init__(self, query_id: _Optional[str] = ..., approved: _Optional[bool] = ..., refusal: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class PrepareReply(_message.Message):
    __slots__ = ("decisions", "session_epoch", "session_ready")
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    SESSION_EPOCH_FIELD_NUMBER: _ClassVar[int]
    SESSION_READY_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    session_epoch: int
    session_ready: bool
    def __init__(self, decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ..., session_epoch: _Optional[int] = ..., session_ready: _Optional[bool] = ...) -> None: ...

class CollectRequest(_message.Message):
    __slots__ = ("batch_id", "query_ids")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_IDS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    query_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, batch_id: _Optional[str] = ..., query_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class QueryLabels(_message.Message):
    __slots__ = ("query_id", "labels", "failure")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    labels: _containers.RepeatedCompositeFieldContainer[LabelRow]
    failure: Failure
    def __init__(self, query_id: _Optional[str] = ..., labels: _Optional[_Iterable[_Union[LabelRow, _Mapping]]] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class CollectReply(_message.Message):
    __slots__ = ("queries",)
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[QueryLabels]
    def __init__(self, queries: _Optional[_Iterable[_Union[QueryLabels, _Mapping]]] = ...) -> None: ...

class QueryDomain(_message.Message):
    __slots__ = ("query_id", "groups")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    groups: _containers.RepeatedCompositeFieldContainer[LabelRow]
    def __init__(self, query_id: _Optional[str] = ..., groups: _Optional[_Iterable[_Union[LabelRow, _Mapping]]] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("job_id", "epoch", "queries", "batch_ids")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    BATCH_IDS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    epoch: int
    queries: _containers.RepeatedCompositeFieldContainer[QueryDomain]
    batch_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[str] = ..., epoch: _Optional[int] = ..., queries: _Optional[_Iterable[_Union[QueryDomain, _Mapping]]] = ..., batch_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ExecuteReply(_message.Message):
    __slots__ = ("shares", "failures")
    SHARES_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    shares: _containers.RepeatedCompositeFieldContainer[SealedShares]
    failures: _containers.RepeatedCompositeFieldContainer[Failure]
    def __init__(self, shares: _Optional[_Iterable[_Union[SealedShares, _Mapping]]] = ..., failures: _Optional[_Iterable[_Union[Failure, _Mapping]]] = ...) -> None: ...

class StartSessionRequest(_message.Message):
    __slots__ = ("epoch",)
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    def __init__(self, epoch: _Optional[int] = ...) -> None: ...

class StartSessionReply(_message.Message):
    __slots__ = ("seconds",)
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    seconds: float
    def __init__(self, seconds: _Optional[float] = ...) -> None: ...
