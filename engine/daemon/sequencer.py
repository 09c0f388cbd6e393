"""The sequencer: orders queries into batches and drives each batch through every party.

One party of the federation is the sequencer. Queries arriving while a batch runs wait
and form the next batch, so many small queries share one MPC job. A batch goes through
``Prepare`` (every party checks every request against its own policy), ``Collect``
(owners scan their data in plaintext; a join's owners report their table size rounded up
to a power of two, nothing else), a session check (every
party's MPC worker must be live in the same epoch, else all restart in a new epoch), and
``Execute`` (one MPC job, run in batch order on every party). A query refused or failed at
any step fails with that step's error; the others in the batch go on.

Three stages run concurrently: while batch k executes its MPC job, batch k + 1 is
prepared and collected, and the results of batch k - 1 are anchored and released. MPC jobs
still run strictly one after another, in batch (ledger) order, and their result
commitments are queued for the ledger in that same order. The sequencer's own party is
called directly (:mod:`engine.daemon.handlers`), the others over gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.anchor.queries import QueryAnchor, QueryReceipts, RequestToAnchor
from engine.config import PartyConfig
from engine.daemon import handlers
from engine.daemon.party import Party
from engine.daemon.peers import Peers
from engine.daemon.status import error_of
from engine.errors import CapacityError, EngineError, PeerError
from engine.labels import Label
from engine.mpc.join_layout import padded_length
from engine.plan import JoinPlan, Plan
from engine.request import QueryRequest, SignedRequest, verify
from engine.rpc import jointstat_pb2 as pb
from engine.sealing import SealedShares
from engine.wire import outcome_to_pb, sealed_from_pb, signed_to_pb

log = logging.getLogger(__name__)

MAX_BATCH = 256
MAX_QUEUE = 4096
SESSION_START_TIMEOUT = 30.0
CONCURRENT_BATCHES = 4  # batches in Prepare/Collect at once
MERGE_WAIT = 0.005  # seconds the MPC stage waits for a batch about to be collected

T = TypeVar("T")


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

    def to_pb(self) -> pb.QueryResult:
        """Return the analyst-facing result message."""
        return outcome_to_pb(
            self.query_id,
            self.plan,
            self.groups,
            self.shares,
            self.threshold,
            self.seconds,
            self.receipts,
            noise_parts=len(self.shares) / (len(self.shares) - self.threshold),
        )


@dataclass
class _Pending:
    signed: SignedRequest
    request: QueryRequest
    plan: Plan
    future: asyncio.Future[QueryOutcome]
    received: float
    index: int = -1  # the request's index on the ledger (-1 without a ledger)
    padded_length: int = 0  # a join: the public length every side is padded to


@dataclass
class _Collected:
    """A batch ready for its MPC job: queries with their agreed groups."""

    batch_id: str
    ticket: int  # MPC jobs run in ticket order: the ledger order of their requests
    ready: list[tuple[_Pending, list[Label]]]
    sessions: set[tuple[int, bool]]  # (epoch, ready) reported by the parties at Prepare
    epoch_seen: int  # the sequencer's live epoch when the parties reported (-1: none)
    began: float
    marks: list[float]


class Sequencer:
    """Batches queries and runs them, in order, on every party."""

    def __init__(
        self, config: PartyConfig, party: Party, peers: Peers, anchor: QueryAnchor | None = None
    ) -> None:
        self._config = config
        self._party = party
        self._peers = peers
        self._anchor = anchor
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(MAX_QUEUE)
        self._in_flight: set[int] = set()  # tickets of batches between anchoring and MPC
        self._ready: dict[int, _Collected] = {}
        self._ordered = asyncio.Condition()
        self._tickets = itertools.count()
        self._epoch = int(time.time())  # fresh across sequencer restarts
        self._session_ok = False
        self._counter = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []
        self._preparing = 0  # queries in stage 1 right now
        self._releasing: set[asyncio.Task[None]] = set()  # stage 3: results being anchored
        self.batches_run = 0

    def start(self) -> None:
        if self._anchor is not None:
            self._anchor.start()
        self._tasks = [
            asyncio.create_task(self._prepare_loop(), name="sequencer-prepare"),
            asyncio.create_task(self._execute_loop(), name="sequencer-execute"),
        ]

    async def stop(self) -> None:
        if self._anchor is not None:
            await self._anchor.stop()
        tasks = [*self._tasks, *self._releasing]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def submit(
        self, signed: SignedRequest, checked: tuple[QueryRequest, Plan] | None = None
    ) -> QueryOutcome:
        """Order one signed query into a batch and return its outcome.

        ``checked`` is the request and plan this party's coordinator has just verified and
        made for ``signed`` (else both are done here). Raises the EngineError of the first
        refusal or failure at any party.
        """
        federation = self._config.federation
        if checked is None:
            request = verify(signed, federation, peer_analyst=None, now=time.time())
            plan = await self._party.plan(request.sql, request.analyst)
        else:
            request, plan = checked
        future: asyncio.Future[QueryOutcome] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Pending(signed, request, plan, future, time.perf_counter()))
        except asyncio.QueueFull:
            raise CapacityError(
                f"sequencer queue: got {MAX_QUEUE} waiting queries, want fewer (retry later)"
            ) from None
        try:
            return await asyncio.wait_for(future, federation.query_timeout_seconds)
        except TimeoutError:
            raise PeerError(
                f"query {signed.query_id}: got no result within "
                f"{federation.query_timeout_seconds:.0f} s, want one within "
                "federation.query_timeout_seconds (raise it for queries this large; "
                "or a party may be stuck)"
            ) from None

    # ------------------------------------------------------------------ stage 1

    async def _prepare_loop(self) -> None:
        slots = asyncio.Semaphore(CONCURRENT_BATCHES)
        running: set[asyncio.Task[None]] = set()
        while True:
            batch = [await self._queue.get()]
            await slots.acquire()
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [p for p in batch if not p.future.done()]
            if not batch:
                slots.release()
                continue
            task = asyncio.create_task(self._prepare_batch(batch, slots))
            running.add(task)
            task.add_done_callback(running.discard)

    async def _prepare_batch(self, batch: list[_Pending], slots: asyncio.Semaphore) -> None:
        """Prepare and collect one batch (several run at once), then queue it for MPC."""
        self._preparing += len(batch)
        try:
            collected = await self._prepare_and_collect(batch)
        except EngineError as exc:
            for pending in batch:
                if not pending.future.done():
                    self._abort(pending, exc)
            self._fail(batch, exc)
            return
        except Exception as exc:
            log.exception("batch failed unexpectedly")
            self._fail(batch, EngineError(f"batch failed: {type(exc).__name__}"))
            return
        finally:
            self._preparing -= len(batch)
            slots.release()
        if collected is not None:
            async with self._ordered:
                self._ready[collected.ticket] = collected
                self._ordered.notify_all()

    async def _prepare_and_collect(self, batch: list[_Pending]) -> _Collected | None:
        timeout = self._config.federation.query_timeout_seconds
        batch_id = f"b{next(self._counter)}-{secrets.token_hex(4)}"
        began = time.perf_counter()
        # A batch prepared while a session is starting sees parties not ready yet: its
        # reports say nothing about the new session (-1: ignored), else every batch
        # prepared during a restart would force another one.
        epoch_seen = self._epoch if self._session_ok else -1

        # 1. Prepare: every party checks every request itself.
        prepare = pb.PrepareRequest(
            batch_id=batch_id,
            queries=[signed_to_pb(p.signed) for p in batch],
            plan_digests=[p.plan.digest() for p in batch],
        )
        replies = await self._all(lambda name: self._prepare(name, prepare, timeout))
        marks = [time.perf_counter()]
        refusals: dict[str, EngineError] = {}
        for index, pending in enumerate(batch):
            for reply in replies:
                decision = reply.decisions[index]
                if not decision.approved:
                    refusals[pending.signed.query_id] = error_of(
                        decision.refusal.code, decision.refusal.message
                    )
                    break
        if self._anchor is not None:
            # The requests and every decision go on the ledger before any data is touched.
            items = [
                RequestToAnchor(
                    p.signed.query_id,
                    p.request.analyst,
                    p.signed.body,
                    p.signed.signature,
                    [
                        (name, reply.decisions[i].entry)
                        for name, reply in zip(self._names(), replies, strict=True)
                    ],
                    [
                        (name, bytes(charge))
                        for name, reply in zip(self._names(), replies, strict=True)
                        for charge in reply.decisions[i].charges
                    ],
                )
                for i, p in enumerate(batch)
            ]
            for pending, index in zip(batch, await self._anchor.requests(items), strict=True):
                pending.index = index
        marks.append(time.perf_counter())
        live = []
        for pending in batch:
            refusal = refusals.get(pending.signed.query_id)
            if refusal is not None:
                _reject(pending.future, refusal)
            else:
                live.append(pending)
        if not live:
            return None
        ticket = min(p.index for p in live) if self._anchor is not None else next(self._tickets)
        async with self._ordered:
            self._in_flight.add(ticket)
        try:
            ready = await self._collect(batch_id, live, timeout)
        except BaseException:
            await self._drop_ticket(ticket)
            raise
        marks.append(time.perf_counter())
        if not ready:
            await self._drop_ticket(ticket)
            return None
        sessions = {(r.session_epoch, r.session_ready) for r in replies}
        return _Collected(batch_id, ticket, ready, sessions, epoch_seen, began, marks)

    async def _drop_ticket(self, ticket: int) -> None:
        async with self._ordered:
            self._in_flight.discard(ticket)
            self._ordered.notify_all()

    async def _collect(
        self, batch_id: str, live: list[_Pending], timeout: float
    ) -> list[tuple[_Pending, list[Label]]]:
        """Owners scan in plaintext (off the serial MPC stage); the groups are the plan's."""
        collect = pb.CollectRequest(
            batch_id=batch_id,
            query_ids=[p.signed.query_id for p in live],
            request_indices=[p.index for p in live],
        )
        collected = await self._all(
            lambda name: self._call(
                name,
                lambda s: s.Collect(collect, timeout=timeout),
                lambda: handlers.collect(self._party, collect),
            )
        )
        ready: list[tuple[_Pending, list[Label]]] = []
        for index, pending in enumerate(live):
            failure = None
            rows = []
            for reply in collected:
                entry = reply.queries[index]
                if entry.HasField("failure"):
                    failure = error_of(entry.failure.code, entry.failure.message)
                    break
                rows.append(entry.rows)
            if failure is not None:
                self._abort(pending, failure)
                _reject(pending.future, failure)
                continue
            if isinstance(pending.plan, JoinPlan):
                pending.padded_length = padded_length(rows)
            ready.append((pending, list(pending.plan.groups)))
        return ready

    def _abort(self, pending: _Pending, error: EngineError) -> None:
        """Record on the ledger that an anchored query failed."""
        if self._anchor is not None and pending.index >= 0:
            self._anchor.abort(
                pending.signed.query_id, pending.signed.body, f"{type(error).__name__}: {error}"
            )

    # ------------------------------------------------------------------ stage 2

    async def _next_parts(self) -> list[_Collected]:
        """Wait for the next collected batches, in ticket (ledger) order.

        Takes every batch whose ticket is next in line, so that batches collected while the
        previous job ran join one MPC job; waits a few milliseconds for a batch that is
        about to be collected.
        """
        async with self._ordered:
            while not (self._in_flight and min(self._in_flight) in self._ready):
                await self._ordered.wait()
            if len(self._ready) == 1 and len(self._in_flight) > 1:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ordered.wait(), MERGE_WAIT)
            parts = []
            while self._in_flight and min(self._in_flight) in self._ready:
                ticket = min(self._in_flight)
                self._in_flight.discard(ticket)
                parts.append(self._ready.pop(ticket))
            return parts

    async def _execute_loop(self) -> None:
        while True:
            parts = await self._next_parts()
            batch = [pending for part in parts for pending, _ in part.ready]
            try:
                await self._execute(parts)
            except EngineError as exc:
                for pending in batch:
                    if not pending.future.done():
                        self._abort(pending, exc)
                self._fail(batch, exc)
            except Exception as exc:
                log.exception("batch failed unexpectedly")
                self._fail(batch, EngineError(f"batch failed: {type(exc).__name__}"))
            self.batches_run += 1

    async def _execute(self, parts: list[_Collected]) -> None:
        timeout = self._config.federation.query_timeout_seconds
        for part in parts:
            if part.epoch_seen == self._epoch and part.sessions != {(self._epoch, True)}:
                self._session_ok = False
        ready = [item for part in parts for item in part.ready]
        # 3. One live MPC session in one epoch on every party.
        if not self._session_ok:
            await self._start_session()

        # 4. Execute: one MPC job for the whole batch, in ledger order everywhere.
        execute = pb.ExecuteRequest(
            job_id=f"j{parts[0].batch_id}",
            epoch=self._epoch,
            queries=[
                pb.QueryDomain(
                    query_id=p.signed.query_id,
                    request_index=p.index,
                    padded_length=p.padded_length,
                )
                for p, _ in ready
            ],
            batch_ids=[part.batch_id for part in parts],
        )
        try:
            executed = await self._all(
                lambda name: self._call(
                    name,
                    lambda s: s.Execute(execute, timeout=timeout),
                    lambda: handlers.execute(self._party, execute, timeout),
                )
            )
        except EngineError:
            self._session_ok = False
            raise
        done = [(index, pending, groups) for index, (pending, groups) in enumerate(ready)]

        # 5. Each party's commitment to its sealed shares goes on the ledger before release.
        # The commitments are queued now, in job order; the next MPC job need not wait for
        # their ledger round, so they are awaited (and the results released) in a task.
        marks = [*parts[0].marks, time.perf_counter()]
        anchoring: Awaitable[list[QueryReceipts]] | None = None
        if self._anchor is not None and done:
            names = self._names()
            anchoring = self._anchor.results(
                [p.signed.query_id for _, p, _ in done],
                [p.index for _, p, _ in done],
                [
                    [
                        (name, reply.result_entries[i], reply.openings[i])
                        for name, reply in zip(names, executed, strict=True)
                    ]
                    for i, _, _ in done
                ],
            )
        task = asyncio.create_task(
            self._release(execute.job_id, parts, len(ready), done, executed, anchoring, marks)
        )
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _release(
        self,
        job_id: str,
        parts: list[_Collected],
        queries: int,
        done: list[tuple[int, _Pending, list[Label]]],
        executed: list[pb.ExecuteReply],
        anchoring: Awaitable[list[QueryReceipts]] | None,
        marks: list[float],
    ) -> None:
        """Wait until the results of one MPC job are anchored, then release them."""
        pendings = [pending for _, pending, _ in done]
        receipts: list[QueryReceipts | None] = [None] * len(done)
        try:
            if anchoring is not None:
                receipts = list(await anchoring)
        except EngineError as exc:
            for pending in pendings:
                if not pending.future.done():
                    self._abort(pending, exc)
            self._fail(pendings, exc)
            return
        except Exception as exc:
            log.exception("anchoring results failed unexpectedly")
            self._fail(pendings, EngineError(f"batch failed: {type(exc).__name__}"))
            return
        first = parts[0]
        marks = [*marks, time.perf_counter()]
        seconds = marks[-1] - first.began
        threshold = self._config.federation.threshold
        for (index, pending, groups), receipt in zip(done, receipts, strict=True):
            shares = tuple(sealed_from_pb(reply.shares[index]) for reply in executed)
            _resolve(
                pending.future,
                QueryOutcome(
                    pending.signed.query_id,
                    pending.plan,
                    tuple(groups),
                    shares,
                    threshold,
                    seconds,
                    receipt,
                ),
            )
        log.info(
            "job %s: %d batches, %d queries in %.1f ms (first batch: prepare %.1f, "
            "anchor %.1f, collect %.1f, wait+execute %.1f, anchor results %.1f)",
            job_id,
            len(parts),
            queries,
            seconds * 1000,
            (marks[0] - first.began) * 1000,
            *((b - a) * 1000 for a, b in itertools.pairwise(marks)),
        )

    # ------------------------------------------------------------------ calls

    @staticmethod
    def _fail(batch: list[_Pending], error: EngineError) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(type(error)(str(error)))

    def _names(self) -> list[str]:
        return [p.name for p in self._config.federation.parties]

    async def _all(self, call: Callable[[str], Awaitable[T]]) -> list[T]:
        """Run ``call(party)`` on every party concurrently; raise the first failure."""
        names = self._names()
        results = await asyncio.gather(*(call(n) for n in names), return_exceptions=True)
        for name, result in zip(names, results, strict=True):
            if isinstance(result, EngineError):
                raise type(result)(str(result))
            if isinstance(result, BaseException):
                raise PeerError(f"party {name}: {type(result).__name__}")
        return list(results)  # type: ignore[arg-type]

    async def _call(
        self,
        name: str,
        remote: Callable[[Any], Awaitable[T]],
        local: Callable[[], Awaitable[T]],
    ) -> T:
        """Call the sequencer's own party directly, any other party through gRPC."""
        if name == self._config.name:
            return await local()
        return await self._peers.call(name, remote)

    async def _prepare(
        self, name: str, request: pb.PrepareRequest, timeout: float
    ) -> pb.PrepareReply:
        if name == self._config.name:
            return await handlers.prepare(self._party, request)
        return await self._peers.call_reconnecting(
            name, lambda s: s.Prepare(request, timeout=timeout)
        )

    async def _start_session(self) -> None:
        self._epoch += 1
        request = pb.StartSessionRequest(epoch=self._epoch)
        log.info("starting MPC session epoch %d", self._epoch)
        try:
            await self._all(
                lambda name: self._call(
                    name,
                    lambda s: s.StartSession(request, timeout=SESSION_START_TIMEOUT + 5),
                    lambda: handlers.start_session(self._party, request),
                )
            )
        except EngineError as exc:
            raise PeerError(f"MPC session: could not start on every party ({exc})") from None
        self._session_ok = True


def _resolve(future: asyncio.Future[QueryOutcome], outcome: QueryOutcome) -> None:
    """Deliver ``outcome`` unless the analyst's wait already ended (timed out)."""
    if not future.done():
        future.set_result(outcome)


def _reject(future: asyncio.Future[QueryOutcome], error: EngineError) -> None:
    """Deliver ``error`` unless the analyst's wait already ended (timed out)."""
    if not future.done():
        future.set_exception(error)
