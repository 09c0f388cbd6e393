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
    __slots__ = ("name", "group", "function", "decimals", "second_decimals", "measure")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    DECIMALS_FIELD_NUMBER: _ClassVar[int]
    SECOND_DECIMALS_FIELD_NUMBER: _ClassVar[int]
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    name: str
    group: int
    function: str
    decimals: int
    second_decimals: int
    measure: int
    def __init__(self, name: _Optional[str] = ..., group: _Optional[int] = ..., function: _Optional[str] = ..., decimals: _Optional[int] = ..., second_decimals: _Optional[int] = ..., measure: _Optional[int] = ...) -> None: ...

class NoisyTotal(_message.Message):
    __slots__ = ("measure", "component", "sensitivity", "epsilon", "parts")
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    SENSITIVITY_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    measure: int
    component: str
    sensitivity: int
    epsilon: float
    parts: float
    def __init__(self, measure: _Optional[int] = ..., component: _Optional[str] = ..., sensitivity: _Optional[int] = ..., epsilon: _Optional[float] = ..., parts: _Optional[float] = ...) -> None: ...

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
    __slots__ = ("query_id", "columns", "groups", "shares", "threshold", "order_by", "limit", "seconds", "receipts", "having", "explanation", "release", "noisy")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    HAVING_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    NOISY_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    columns: _containers.RepeatedCompositeFieldContainer[OutputColumn]
    groups: _containers.RepeatedCompositeFieldContainer[LabelRow]
    shares: _containers.RepeatedCompositeFieldContainer[SealedShares]
    threshold: int
    order_by: _containers.RepeatedCompositeFieldContainer[OrderKey]
    limit: int
    seconds: float
    receipts: Receipts
    having: str
    explanation: str
    release: str
    noisy: _containers.RepeatedCompositeFieldContainer[NoisyTotal]
    def __init__(self, query_id: _Optional[str] = ..., columns: _Optional[_Iterable[_Union[OutputColumn, _Mapping]]] = ..., groups: _Optional[_Iterable[_Union[LabelRow, _Mapping]]] = ..., shares: _Optional[_Iterable[_Union[SealedShares, _Mapping]]] = ..., threshold: _Optional[int] = ..., order_by: _Optional[_Iterable[_Union[OrderKey, _Mapping]]] = ..., limit: _Optional[int] = ..., seconds: _Optional[float] = ..., receipts: _Optional[_Union[Receipts, _Mapping]] = ..., having: _Optional[str] = ..., explanation: _Optional[str] = ..., release: _Optional[str] = ..., noisy: _Optional[_Iterable[_Union[NoisyTotal, _Mapping]]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCatalogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckpointReply(_message.Message):
    __slots__ = ("note", "witness_note")
    NOTE_FIELD_NUMBER: _ClassVar[int]
    WITNESS_NOTE_FIELD_NUMBER: _ClassVar[int]
    note: str
    witness_note: str
    def __init__(self, note: _Optional[str] = ..., witness_note: _Optional[str] = ...) -> None: ...

class DatasetSchema(_message.Message):
    __slots__ = ("owner", "name", "available", "problem", "metadata", "budget_spent", "analyst_budget_spent")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    BUDGET_SPENT_FIELD_NUMBER: _ClassVar[int]
    ANALYST_BUDGET_SPENT_FIELD_NUMBER: _ClassVar[int]
    owner: str
    name: str
    available: bool
    problem: str
    metadata: str
    budget_spent: float
    analyst_budget_spent: float
    def __init__(self, owner: _Optional[str] = ..., name: _Optional[str] = ..., available: _Optional[bool] = ..., problem: _Optional[str] = ..., metadata: _Optional[str] = ..., budget_spent: _Optional[float] = ..., analyst_budget_spent: _Optional[float] = ...) -> None: ...

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
    __slots__ = ("query_id", "approved", "refusal", "entry", "charges")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVED_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    CHARGES_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    approved: bool
    refusal: Failure
    entry: bytes
    charges: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, query_id: _Optional[str] = ..., approved: _Optional[bool] = ..., refusal: _Optional[_Union[Failure, _Mapping]] = ..., entry: _Optional[bytes] = ..., charges: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PrepareReply(_message.Message):
    __slots__ = ("decisions", "session_epoch", "session_ready", "large_session_epoch", "large_session_ready")
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    SESSION_EPOCH_FIELD_NUMBER: _ClassVar[int]
    SESSION_READY_FIELD_NUMBER: _ClassVar[int]
    LARGE_SESSION_EPOCH_FIELD_NUMBER: _ClassVar[int]
    LARGE_SESSION_READY_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    session_epoch: int
    session_ready: bool
    large_session_epoch: int
    large_session_ready: bool
    def __init__(self, decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ..., session_epoch: _Optional[int] = ..., session_ready: _Optional[bool] = ..., large_session_epoch: _Optional[int] = ..., large_session_ready: _Optional[bool] = ...) -> None: ...

class CollectRequest(_message.Message):
    __slots__ = ("batch_id", "query_ids", "request_indices")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_IDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_INDICES_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    query_ids: _containers.RepeatedScalarFieldContainer[str]
    request_indices: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, batch_id: _Optional[str] = ..., query_ids: _Optional[_Iterable[str]] = ..., request_indices: _Optional[_Iterable[int]] = ...) -> None: ...

class QueryLabels(_message.Message):
    __slots__ = ("query_id", "failure", "rows")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    failure: Failure
    rows: int
    def __init__(self, query_id: _Optional[str] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ..., rows: _Optional[int] = ...) -> None: ...

class CollectReply(_message.Message):
    __slots__ = ("queries",)
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[QueryLabels]
    def __init__(self, queries: _Optional[_Iterable[_Union[QueryLabels, _Mapping]]] = ...) -> None: ...

class QueryDomain(_message.Message):
    __slots__ = ("query_id", "request_index", "padded_length")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_INDEX_FIELD_NUMBER: _ClassVar[int]
    PADDED_LENGTH_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    request_index: int
    padded_length: int
    def __init__(self, query_id: _Optional[str] = ..., request_index: _Optional[int] = ..., padded_length: _Optional[int] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("job_id", "epoch", "queries", "batch_ids", "lane")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    BATCH_IDS_FIELD_NUMBER: _ClassVar[int]
    LANE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    epoch: int
    queries: _containers.RepeatedCompositeFieldContainer[QueryDomain]
    batch_ids: _containers.RepeatedScalarFieldContainer[str]
    lane: str
    def __init__(self, job_id: _Optional[str] = ..., epoch: _Optional[int] = ..., queries: _Optional[_Iterable[_Union[QueryDomain, _Mapping]]] = ..., batch_ids: _Optional[_Iterable[str]] = ..., lane: _Optional[str] = ...) -> None: ...

class ExecuteReply(_message.Message):
    __slots__ = ("shares", "result_entries", "openings")
    SHARES_FIELD_NUMBER: _ClassVar[int]
    RESULT_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    OPENINGS_FIELD_NUMBER: _ClassVar[int]
    shares: _containers.RepeatedCompositeFieldContainer[SealedShares]
    result_entries: _containers.RepeatedScalarFieldContainer[bytes]
    openings: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, shares: _Optional[_Iterable[_Union[SealedShares, _Mapping]]] = ..., result_entries: _Optional[_Iterable[bytes]] = ..., openings: _Optional[_Iterable[bytes]] = ...) -> None: ...

class CosignRequest(_message.Message):
    __slots__ = ("entries", "from_size", "note", "old_size", "proof", "apply_only", "cosigned_note")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    FROM_SIZE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    APPLY_ONLY_FIELD_NUMBER: _ClassVar[int]
    COSIGNED_NOTE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedScalarFieldContainer[bytes]
    from_size: int
    note: str
    old_size: int
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    apply_only: bool
    cosigned_note: str
    def __init__(self, entries: _Optional[_Iterable[bytes]] = ..., from_size: _Optional[int] = ..., note: _Optional[str] = ..., old_size: _Optional[int] = ..., proof: _Optional[_Iterable[bytes]] = ..., apply_only: _Optional[bool] = ..., cosigned_note: _Optional[str] = ...) -> None: ...

class CosignReply(_message.Message):
    __slots__ = ("cosignature", "mirror_size", "witness_size")
    COSIGNATURE_FIELD_NUMBER: _ClassVar[int]
    MIRROR_SIZE_FIELD_NUMBER: _ClassVar[int]
    WITNESS_SIZE_FIELD_NUMBER: _ClassVar[int]
    cosignature: str
    mirror_size: int
    witness_size: int
    def __init__(self, cosignature: _Optional[str] = ..., mirror_size: _Optional[int] = ..., witness_size: _Optional[int] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, entries: _Optional[_Iterable[bytes]] = ...) -> None: ...

class RegisterReply(_message.Message):
    __slots__ = ("appended",)
    APPENDED_FIELD_NUMBER: _ClassVar[int]
    appended: int
    def __init__(self, appended: _Optional[int] = ...) -> None: ...

class RefusalRequest(_message.Message):
    __slots__ = ("query", "decision")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    query: SignedRequest
    decision: bytes
    def __init__(self, query: _Optional[_Union[SignedRequest, _Mapping]] = ..., decision: _Optional[bytes] = ...) -> None: ...

class RefusalReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PartyResult(_message.Message):
    __slots__ = ("party", "entry", "proof", "opening")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    OPENING_FIELD_NUMBER: _ClassVar[int]
    party: str
    entry: bytes
    proof: str
    opening: bytes
    def __init__(self, party: _Optional[str] = ..., entry: _Optional[bytes] = ..., proof: _Optional[str] = ..., opening: _Optional[bytes] = ...) -> None: ...

class Receipts(_message.Message):
    __slots__ = ("request_entry", "request_proof", "results")
    REQUEST_ENTRY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_PROOF_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    request_entry: bytes
    request_proof: str
    results: _containers.RepeatedCompositeFieldContainer[PartyResult]
    def __init__(self, request_entry: _Optional[bytes] = ..., request_proof: _Optional[str] = ..., results: _Optional[_Iterable[_Union[PartyResult, _Mapping]]] = ...) -> None: ...

class StartSessionRequest(_message.Message):
    __slots__ = ("epoch", "lane")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LANE_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    lane: str
    def __init__(self, epoch: _Optional[int] = ..., lane: _Optional[str] = ...) -> None: ...

class StartSessionReply(_message.Message):
    __slots__ = ("seconds",)
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    seconds: float
    def __init__(self, seconds: _Optional[float] = ...) -> None: ...
