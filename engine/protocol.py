"""The Federation protocol's steps as dataclasses: what the sequencer asks a party, and
what the party answers.

The sequencer and the parties work on these; :mod:`engine.rpc.convert` turns them into
protobuf messages and back at the gRPC edge, and nothing else does. A query's life:
Prepare (a :class:`PartyDecision` per request), Collect (a :class:`Collected` per query), Execute
(an :class:`ExecuteOrder` in, an :class:`Outcome` per query out), with Cosign rounds for the
ledger in between.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.anchor.queries import QueryReceipts
from engine.errors import EngineError
from engine.labels import Label
from engine.plan import Plan
from engine.sealing import SealedShares


@dataclass(frozen=True)
class PartyDecision:
    """A party's decision on one request at Prepare: approved (no error) or refused."""

    query_id: str
    error: EngineError | None
    entry: bytes = b""  # the signed QueryDecided ledger entry (empty without a ledger)
    charges: tuple[bytes, ...] = ()  # dp: this owner's signed BudgetCharged entries


@dataclass(frozen=True)
class Collected:
    """This party's answer to Collect for one query (no labels, no counts: groups come
    from the plan)."""

    error: EngineError | None
    rows: int = 0  # for a join: this party's table size rounded up to a power of two


@dataclass(frozen=True)
class Domain:
    """What the sequencer set for one query of an MPC job."""

    query_id: str
    request_index: int = -1
    padded_length: int = 0


@dataclass(frozen=True)
class Outcome:
    """This party's part of one query's result: sealed shares and its ledger commitment."""

    sealed: SealedShares
    entry: bytes = b""  # signed ResultCommitted (empty without a ledger)
    opening: bytes = b""


@dataclass(frozen=True)
class LaneSession:
    """A party's MPC session on one lane, as it reports it at Prepare."""

    epoch: int  # -1: none yet
    ready: bool


@dataclass(frozen=True)
class Prepared:
    """A party's answer to Prepare: a decision per request, and its sessions per lane."""

    decisions: tuple[PartyDecision, ...]
    sessions: dict[str, LaneSession]


@dataclass(frozen=True)
class ExecuteOrder:
    """What the sequencer asks every party to run as one MPC job."""

    job_id: str
    epoch: int
    domains: tuple[Domain, ...]  # in job order
    batch_ids: tuple[str, ...]  # the collected batches the job runs
    lane: str  # "small" or "large"


@dataclass(frozen=True)
class CosignCall:
    """What the sequencer asks a witness to cosign (engine.anchor)."""

    entries: tuple[bytes, ...]
    from_size: int
    note: str
    old_size: int
    proof: tuple[bytes, ...]
    apply_only: bool
    cosigned_note: str


@dataclass(frozen=True)
class QueryOutcome:
    """A finished query: its plan, agreed groups and every party's sealed shares."""

    query_id: str
    plan: Plan
    groups: tuple[Label, ...]
    shares: tuple[SealedShares, ...]
    threshold: int
    seconds: float
    receipts: QueryReceipts | None = None
