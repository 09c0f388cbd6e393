"""What the sequencer's three stages share: the queries it holds, and how each ends.

A :class:`PendingQuery` lives from its arrival (engine.daemon.sequencer) through Prepare and
Collect (engine.daemon.prepare_stage), its MPC job (engine.daemon.execute_stage) and the
anchoring of its result (engine.daemon.release_stage). :class:`Crew` holds what every stage
needs (the parties' links, the ledger anchor, the queries' lives, the MPC lanes) and ends
queries: each ends exactly once, in its result, a refusal, or an anchored abort.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from engine.anchor.queries import QueryAnchor
from engine.config import PartyConfig
from engine.daemon.lanes import Lane
from engine.daemon.lifecycle import Lives, QueryLife
from engine.daemon.links import PartyLink
from engine.errors import EngineError, GaveUpError, PeerError
from engine.labels import Label
from engine.plan import Plan
from engine.protocol import QueryOutcome
from engine.request import QueryRequest, SignedRequest

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass
class PendingQuery:
    """A query the sequencer holds, from its arrival to its ending."""

    signed: SignedRequest
    request: QueryRequest
    plan: Plan
    future: asyncio.Future[QueryOutcome]
    received: float
    life: QueryLife
    padded_length: int = 0  # a join: the public length every side is padded to
    operations: int = 0  # its estimated secure operations (engine.cost), once collected

    @property
    def index(self) -> int:
        """The request's index on the ledger (-1 until anchored, or without a ledger)."""
        return self.life.index


@dataclass
class CollectedPart:
    """A batch's queries for one lane's MPC job, with their agreed groups."""

    batch_id: str
    ticket: int  # MPC jobs run in ticket order: the ledger order of their requests
    ready: list[tuple[PendingQuery, list[Label]]]
    sessions: set[tuple[int, bool]]  # (epoch, ready) of this lane, reported at Prepare
    epoch_seen: int  # the lane's live epoch when the parties reported (-1: none)
    began: float
    marks: list[float] = field(default_factory=list)


@dataclass
class Crew:
    """What the stages share, and the one place where queries end."""

    config: PartyConfig
    links: dict[str, PartyLink]
    anchor: QueryAnchor | None
    lanes: dict[str, Lane[CollectedPart]]
    lives: Lives = field(default_factory=Lives)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    # m of overlap control over a join plan (the sequencer's own party knows the catalog);
    # None: every exact join counts at its minimum group size (an upper bound)
    overlap_minimum: Callable[[Plan], int] | None = None

    def __post_init__(self) -> None:
        self.idle.set()

    def names(self) -> list[str]:
        return [p.name for p in self.config.federation.parties]

    async def all_parties(self, call: Callable[[str], Awaitable[T]]) -> list[T]:
        """Run ``call(party)`` on every party concurrently; raise the first failure."""
        names = self.names()
        results = await asyncio.gather(*(call(n) for n in names), return_exceptions=True)
        for name, result in zip(names, results, strict=True):
            if isinstance(result, EngineError):
                raise type(result)(str(result))
            if isinstance(result, BaseException):
                raise PeerError(f"party {name}: {type(result).__name__}")
        return list(results)  # type: ignore[arg-type]

    def refused(self, pending: PendingQuery, error: EngineError) -> None:
        """End a query refused by a party (its decision on the ledger says why)."""
        pending.life.refuse(f"{type(error).__name__}: {error}")
        _reject(pending.future, error)
        self.retire(pending)

    def failed(self, pending: PendingQuery, error: EngineError, reason: str = "") -> None:
        """End a query in failure: anchor one abort if its request is on the ledger."""
        reason = reason or f"{type(error).__name__}: {error}"
        if pending.life.fail(reason) and self.anchor is not None:
            self.anchor.abort(pending.signed.query_id, pending.signed.body, reason)
        _reject(pending.future, type(error)(str(error)))
        self.retire(pending)

    def succeeded(self, pending: PendingQuery, outcome: QueryOutcome) -> None:
        pending.life.succeed()
        _resolve(pending.future, outcome)
        self.retire(pending)

    def retire(self, pending: PendingQuery) -> None:
        self.lives.retire(pending.life)
        if not self.lives:
            self.idle.set()

    @contextlib.contextmanager
    def ending_on_failure(self, batch: list[PendingQuery], what: str) -> Iterator[None]:
        """End every query of ``batch`` still going when the block fails: with its
        EngineError, or, for a bug, with an error naming only the exception's class (its
        traceback goes to the log)."""
        try:
            yield
        except EngineError as exc:
            self.fail_all(batch, exc)
        except Exception as exc:
            log.exception("%s failed unexpectedly", what)
            self.fail_all(batch, EngineError(f"{what} failed: {type(exc).__name__}"))

    def fail_all(self, batch: list[PendingQuery], error: EngineError) -> None:
        for pending in batch:
            if not pending.life.ended:
                self.failed(pending, error)

    def going_on(self, batch: list[PendingQuery]) -> list[PendingQuery]:
        """Return the queries that go on; end those the analyst gave up (aborted with the
        reason, once their request is on the ledger)."""
        live = []
        for pending in batch:
            if pending.life.ended:
                continue
            if pending.life.gave_up:
                self.failed(pending, GaveUpError(pending.life.gave_up), pending.life.gave_up)
                continue
            live.append(pending)
        return live

    def going_on_ready(
        self, ready: list[tuple[PendingQuery, list[Label]]]
    ) -> list[tuple[PendingQuery, list[Label]]]:
        going = set(map(id, self.going_on([p for p, _ in ready])))
        return [(p, g) for p, g in ready if id(p) in going]


def _resolve(future: asyncio.Future[QueryOutcome], outcome: QueryOutcome) -> None:
    """Deliver ``outcome`` unless the analyst's wait already ended (gave up)."""
    if not future.done():
        future.set_result(outcome)


def _reject(future: asyncio.Future[QueryOutcome], error: EngineError) -> None:
    """Deliver ``error`` unless the analyst's wait already ended (gave up)."""
    if not future.done():
        future.set_exception(error)
        future.exception()  # retrieved: an analyst who left does not leave it unread
