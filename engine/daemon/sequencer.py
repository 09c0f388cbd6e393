"""The sequencer: orders queries into batches and drives each batch through every party.

One party of the federation is the sequencer. Queries arriving while a batch runs wait
and form the next batch, so many small queries share one MPC job. A batch goes through
``Prepare`` (every party checks every request against its own policy), ``Collect``
(owners scan their data in plaintext and report group labels), a session check (every
party's MPC worker must be live in the same epoch, else all restart in a new epoch), and
``Execute`` (one MPC job, run in batch order on every party). A query refused or failed at
any step fails with that step's error; the others in the batch go on.

Two stages run concurrently: while batch k executes its MPC job, batch k + 1 is prepared
and collected. MPC jobs still run strictly one after another, in batch order. The
sequencer's own party is called directly (:mod:`engine.daemon.handlers`), the others
over gRPC.
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

from engine.config import PartyConfig
from engine.daemon import handlers
from engine.daemon.party import Party, merge_labels
from engine.daemon.peers import Peers
from engine.daemon.status import error_of
from engine.errors import CapacityError, EngineError, PeerError, UnreachableError
from engine.local import Label
from engine.plan import QueryPlan
from engine.request import SignedRequest, verify
from engine.rpc import jointstat_pb2 as pb
from engine.sealing import SealedShares
from engine.wire import label_from_pb, labels_to_pb, sealed_from_pb, signed_to_pb

log = logging.getLogger(__name__)

MAX_BATCH = 256
MAX_QUEUE = 4096
SESSION_START_TIMEOUT = 30.0
CONCURRENT_BATCHES = 4  # batches in Prepare/Collect at once
MERGE_WAIT = 0.005  # seconds the MPC stage waits for a batch about to be collected
PIPELINE_DEPTH = 16  # collected batches waiting for (and merged into) the next MPC job
RECONNECT_WAIT = 3.0

T = TypeVar("T")


@dataclass(frozen=True)
class QueryOutcome:
    """A finished query: its plan, agreed groups and every party's sealed shares."""

    query_id: str
    plan: QueryPlan
    groups: tuple[Label, ...]
    shares: tuple[SealedShares, ...]
    threshold: int
    seconds: float


@dataclass
class _Pending:
    signed: SignedRequest
    plan: QueryPlan
    future: asyncio.Future[QueryOutcome]
    received: float


@dataclass
class _Collected:
    """A batch ready for its MPC job: queries with their agreed groups."""

    batch_id: str
    ready: list[tuple[_Pending, list[Label]]]
    sessions: set[tuple[int, bool]]  # (epoch, ready) reported by the parties at Prepare
    epoch_seen: int  # the sequencer's epoch when the parties reported
    began: float
    marks: list[float]


class Sequencer:
    """Batches queries and runs them, in order, on every party."""

    def __init__(self, config: PartyConfig, party: Party, peers: Peers) -> None:
        self._config = config
        self._party = party
        self._peers = peers
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(MAX_QUEUE)
        self._collected: asyncio.Queue[_Collected] = asyncio.Queue(PIPELINE_DEPTH)
        self._epoch = int(time.time())  # fresh across sequencer restarts
        self._session_ok = False
        self._counter = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []
        self._preparing = 0  # queries in stage 1 right now
        self.batches_run = 0

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._prepare_loop(), name="sequencer-prepare"),
            asyncio.create_task(self._execute_loop(), name="sequencer-execute"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def submit(self, signed: SignedRequest) -> QueryOutcome:
        """Order one signed query into a batch and return its outcome.

        Raises the EngineError of the first refusal or failure at any party.
        """
        federation = self._config.federation
        request = verify(signed, federation, peer_analyst=None, now=time.time())
        plan = await self._party.plan(request.sql, request.analyst)
        future: asyncio.Future[QueryOutcome] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Pending(signed, plan, future, time.perf_counter()))
        except asyncio.QueueFull:
            raise CapacityError(
                f"sequencer queue: got {MAX_QUEUE} waiting queries, want fewer (retry later)"
            ) from None
        return await asyncio.wait_for(future, federation.query_timeout_seconds)

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
            await self._collected.put(collected)

    async def _prepare_and_collect(self, batch: list[_Pending]) -> _Collected | None:
        timeout = self._config.federation.query_timeout_seconds
        batch_id = f"b{next(self._counter)}-{secrets.token_hex(4)}"
        began = time.perf_counter()
        epoch_seen = self._epoch

        # 1. Prepare: every party checks every request itself.
        prepare = pb.PrepareRequest(
            batch_id=batch_id,
            queries=[signed_to_pb(p.signed) for p in batch],
            plan_digests=[p.plan.digest() for p in batch],
        )
        replies = await self._all(lambda name: self._prepare(name, prepare, timeout))
        marks = [time.perf_counter()]
        live = []
        for index, pending in enumerate(batch):
            refusal = None
            for reply in replies:
                decision = reply.decisions[index]
                if not decision.approved:
                    refusal = error_of(decision.refusal.code, decision.refusal.message)
                    break
            if refusal is not None:
                pending.future.set_exception(refusal)
            else:
                live.append(pending)
        if not live:
            return None

        # 2. Collect: owners scan in plaintext and report group labels. Scans run here,
        #    off the serial MPC stage; a query without GROUP BY has the one group ().
        collect = pb.CollectRequest(batch_id=batch_id, query_ids=[p.signed.query_id for p in live])
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
            per_party = []
            for reply in collected:
                entry = reply.queries[index]
                if entry.HasField("failure"):
                    failure = error_of(entry.failure.code, entry.failure.message)
                    break
                per_party.append([label_from_pb(row) for row in entry.labels])
            if failure is not None:
                pending.future.set_exception(failure)
                continue
            groups: list[Label] = merge_labels(per_party) if pending.plan.group_names else [()]
            ready.append((pending, groups))
        marks.append(time.perf_counter())
        if not ready:
            return None
        sessions = {(r.session_epoch, r.session_ready) for r in replies}
        return _Collected(batch_id, ready, sessions, epoch_seen, began, marks)

    # ------------------------------------------------------------------ stage 2

    async def _execute_loop(self) -> None:
        while True:
            # Every batch collected while the previous job ran joins this one MPC job.
            parts = [await self._collected.get()]
            if self._collected.empty() and self._queue.qsize() + self._preparing > 0:
                # More queries are on their way: a few milliseconds buy a fuller job.
                with contextlib.suppress(TimeoutError):
                    parts.append(await asyncio.wait_for(self._collected.get(), MERGE_WAIT))
            while not self._collected.empty():
                parts.append(self._collected.get_nowait())
            batch = [pending for part in parts for pending, _ in part.ready]
            try:
                await self._execute(parts)
            except EngineError as exc:
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

        # 4. Execute: one MPC job for the whole batch, in batch order everywhere.
        execute = pb.ExecuteRequest(
            job_id=f"j{parts[0].batch_id}",
            epoch=self._epoch,
            queries=[
                pb.QueryDomain(query_id=p.signed.query_id, groups=labels_to_pb(g)) for p, g in ready
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
        first = parts[0]
        marks = [*first.marks, time.perf_counter()]
        seconds = marks[-1] - first.began
        threshold = self._config.federation.threshold
        for index, (pending, groups) in enumerate(ready):
            failure = next(
                (r.failures[index] for r in executed if r.failures and r.failures[index].code),
                None,
            )
            if failure is not None:
                pending.future.set_exception(error_of(failure.code, failure.message))
                continue
            shares = tuple(sealed_from_pb(reply.shares[index]) for reply in executed)
            pending.future.set_result(
                QueryOutcome(
                    pending.signed.query_id,
                    pending.plan,
                    tuple(groups),
                    shares,
                    threshold,
                    seconds,
                )
            )
        log.info(
            "job %s: %d batches, %d queries in %.1f ms (first batch: prepare %.1f, "
            "collect %.1f, wait+execute %.1f)",
            execute.job_id,
            len(parts),
            len(ready),
            seconds * 1000,
            (marks[0] - first.began) * 1000,
            (marks[1] - marks[0]) * 1000,
            (marks[2] - marks[1]) * 1000,
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
        try:
            return await self._peers.call(name, lambda s: s.Prepare(request, timeout=timeout))
        except UnreachableError:
            # Nothing was delivered; a party that just came back may still be in the
            # channel's reconnect backoff, so wait for it briefly once.
            return await self._peers.call(
                name,
                lambda s: s.Prepare(request, timeout=RECONNECT_WAIT, wait_for_ready=True),
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
