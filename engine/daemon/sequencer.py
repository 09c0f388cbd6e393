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
run in two lanes (:mod:`engine.daemon.lanes`): small jobs in the long-lived session, jobs
the cost estimate (:mod:`engine.cost`) marks large in a second one, so that small queries
are not stuck behind them; within a lane, jobs run strictly one after another in batch
(ledger) order, and their result commitments are queued for the ledger in that order. The
sequencer calls each party through a :class:`~engine.daemon.links.PartyLink` on the
dataclasses of :mod:`engine.protocol`: its own party in-process, the others over gRPC.

Each query has a :class:`~engine.daemon.lifecycle.QueryLife`: it ends exactly once, in its
result, a refusal, or an abort anchored on the ledger with the reason — also when the
analyst gave up before its MPC job started.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from engine import cost as costs
from engine.anchor.queries import QueryAnchor, QueryReceipts, RequestToAnchor
from engine.config import PartyConfig
from engine.daemon.lanes import LANES, LARGE, SMALL, Lane
from engine.daemon.lifecycle import Lives, QueryLife, Stage
from engine.daemon.links import PartyLink
from engine.daemon.party import Party
from engine.daemon.pauses import pause_at
from engine.errors import (
    AuthError,
    CapacityError,
    EngineError,
    GaveUpError,
    PeerError,
    UnreachableError,
)
from engine.labels import Label
from engine.mpc.join_layout import padded_length
from engine.plan import JoinPlan, Plan
from engine.protocol import Domain, ExecuteOrder, Outcome, QueryOutcome
from engine.request import QueryRequest, SignedRequest, verify

log = logging.getLogger(__name__)

MAX_BATCH = 256
MAX_QUEUE = 4096
SESSION_START_TIMEOUT = 30.0
CONCURRENT_BATCHES = 4  # batches in Prepare/Collect at once
ANSWER_MARGIN = 0.5  # seconds before an analyst's deadline by which the answer is sent

T = TypeVar("T")


@dataclass
class _Pending:
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
class _Collected:
    """A batch's queries for one lane's MPC job, with their agreed groups."""

    batch_id: str
    ticket: int  # MPC jobs run in ticket order: the ledger order of their requests
    ready: list[tuple[_Pending, list[Label]]]
    sessions: set[tuple[int, bool]]  # (epoch, ready) of this lane, reported at Prepare
    epoch_seen: int  # the lane's live epoch when the parties reported (-1: none)
    began: float
    marks: list[float] = field(default_factory=list)


class QuerySequencer:
    """Batches queries and runs them, in order, on every party."""

    def __init__(
        self,
        config: PartyConfig,
        party: Party,
        links: dict[str, PartyLink],
        anchor: QueryAnchor | None = None,
    ) -> None:
        self._config = config
        self._party = party
        self._links = links
        self._anchor = anchor
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(MAX_QUEUE)
        self._lanes: dict[str, Lane[_Collected]] = {name: Lane(name) for name in LANES}
        self._tickets = itertools.count()
        self._counter = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []
        self._preparing = 0  # queries in stage 1 right now
        self._releasing: set[asyncio.Task[None]] = set()  # stage 3: results being anchored
        self._lives = Lives()
        self._idle = asyncio.Event()
        self._idle.set()
        self.draining = False
        self.batches_run = 0

    def start(self) -> None:
        if self._anchor is not None:
            self._anchor.start(self._lives.is_live, self._lives.failure)
        self._tasks = [
            asyncio.create_task(self._prepare_loop(), name="sequencer-prepare"),
            *(
                asyncio.create_task(self._execute_loop(lane), name=f"sequencer-{lane.name}")
                for lane in self._lanes.values()
            ),
        ]

    async def drain(self, timeout: float) -> bool:
        """Take no new queries; wait up to ``timeout`` s until every query under way has
        ended (its result or abort anchored). Return whether they all did."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("sequencer: %d query(ies) still under way at stop", len(self._lives))
            return False
        return True

    async def stop(self) -> None:
        if self._anchor is not None:
            await self._anchor.stop()
        tasks = [*self._tasks, *self._releasing]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def in_flight(self) -> int:
        """Return how many queries the sequencer holds (queued to being released)."""
        return len(self._lives)

    async def submit(
        self,
        signed: SignedRequest,
        checked: tuple[QueryRequest, Plan] | None = None,
        *,
        patience: float | None = None,
    ) -> QueryOutcome:
        """Order one signed query into a batch and return its outcome.

        ``checked`` is the request and plan this party's coordinator has just verified and
        made for ``signed`` (else both are done here). ``patience`` is how long the analyst
        waits (its deadline; None: the federation's query timeout); the answer is sent
        ANSWER_MARGIN before it. Raises the EngineError
        of the first refusal or failure at any party; GaveUpError when the analyst's
        deadline passes first (the query is then cancelled and aborted on the ledger if
        its MPC job had not started, else it runs to its end). A disconnected analyst
        (cancellation) gives the query up the same way.
        """
        if self.draining:
            raise UnreachableError(
                f"sequencer {self._config.name}: stopping (finishing the queries under way), "
                "want it back before new queries (retry shortly)"
            )
        federation = self._config.federation
        if checked is None:
            request = verify(signed, federation, peer_analyst=None, now=time.time())
            plan = await self._party.plan(request.sql, request.analyst)
        else:
            request, plan = checked
        future: asyncio.Future[QueryOutcome] = asyncio.get_running_loop().create_future()
        life = self._lives.begin(signed.query_id, request.analyst)
        pending = _Pending(signed, request, plan, future, time.perf_counter(), life)
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self._lives.retire(life)
            raise CapacityError(
                f"sequencer queue: got {MAX_QUEUE} waiting queries, want fewer (retry later)"
            ) from None
        self._idle.clear()
        timeout = federation.query_timeout_seconds
        wait = timeout
        if patience is not None:
            wait = max(min(patience - min(ANSWER_MARGIN, 0.15 * patience), timeout), 0.0)
        try:
            return await asyncio.wait_for(asyncio.shield(future), wait)
        except TimeoutError:
            if wait < timeout:
                gave_up = self._give_up(pending, f"client gave up after {_seconds(patience)} s")
                raise gave_up from None
            error = PeerError(
                f"query {signed.query_id}: got no result within {timeout:.0f} s, want one "
                "within federation.query_timeout_seconds (raise it for queries this large; "
                "or a party may be stuck)"
            )
            if life.give_up(f"no result within {timeout:.0f} s (federation timeout)"):
                future.cancel()
            raise error from None
        except asyncio.CancelledError:
            seconds = time.perf_counter() - pending.received
            self._give_up(pending, f"client disconnected after {_seconds(seconds)} s")
            raise

    def record_refusal(
        self, signed: SignedRequest, analyst: str, coordinator: str, decision: bytes
    ) -> None:
        """Queue a query a coordinator refused for the ledger: the analyst's signed request
        and the coordinator's signed refusal (appended in the next round, batched).

        Raises AuthError if the request's signature does not verify or the decision is
        not the coordinator's refusal of this request; CapacityError if too many wait.
        """
        if self._anchor is None:
            return
        request = verify(signed, self._config.federation, peer_analyst=None, now=time.time())
        if request.analyst != analyst:
            raise AuthError(f"refusal: got analyst {analyst!r}, want {request.analyst!r}")
        self._anchor.refusal(
            RequestToAnchor(
                signed.query_id,
                request.analyst,
                signed.body,
                signed.signature,
                [(coordinator, decision)],
            )
        )

    def _give_up(self, pending: _Pending, reason: str) -> GaveUpError:
        """Record that the analyst stopped waiting; return the error that tells it what
        becomes of the query."""
        life = pending.life
        query_id = pending.signed.query_id
        if life.give_up(reason):
            pending.future.cancel()
            log.info("query %s: %s before its MPC job; cancelled", query_id, reason)
            return GaveUpError(
                f"query {query_id}: {reason}, before its MPC job started: cancelled "
                "everywhere (aborted on the ledger with that reason)"
            )
        pending.future.cancel()
        log.info("query %s: %s during its MPC job; it runs to its end", query_id, reason)
        return GaveUpError(
            f"query {query_id}: {reason}; its MPC job had started and continues: its "
            "result is committed on the ledger (see `jointstat ledger log --config "
            f"<party.toml> --format json` for query {query_id}); send it again to get it"
        )

    # ------------------------------------------------------------------ endings

    def _refused(self, pending: _Pending, error: EngineError) -> None:
        """End a query refused by a party (its decision on the ledger says why)."""
        pending.life.refuse(f"{type(error).__name__}: {error}")
        _reject(pending.future, error)
        self._retire(pending)

    def _failed(self, pending: _Pending, error: EngineError, reason: str = "") -> None:
        """End a query in failure: anchor one abort if its request is on the ledger."""
        reason = reason or f"{type(error).__name__}: {error}"
        if pending.life.fail(reason) and self._anchor is not None:
            self._anchor.abort(pending.signed.query_id, pending.signed.body, reason)
        _reject(pending.future, type(error)(str(error)))
        self._retire(pending)

    def _succeeded(self, pending: _Pending, outcome: QueryOutcome) -> None:
        pending.life.succeed()
        _resolve(pending.future, outcome)
        self._retire(pending)

    def _retire(self, pending: _Pending) -> None:
        self._lives.retire(pending.life)
        if not self._lives:
            self._idle.set()

    def _fail_all(self, batch: list[_Pending], error: EngineError) -> None:
        for pending in batch:
            if not pending.life.ended:
                self._failed(pending, error)

    def _going_on(self, batch: list[_Pending]) -> list[_Pending]:
        """Return the queries that go on; end those the analyst gave up (aborted with the
        reason, once their request is on the ledger)."""
        live = []
        for pending in batch:
            if pending.life.ended:
                continue
            if pending.life.gave_up:
                self._failed(pending, GaveUpError(pending.life.gave_up), pending.life.gave_up)
                continue
            live.append(pending)
        return live

    # ------------------------------------------------------------------ stage 1

    async def _prepare_loop(self) -> None:
        slots = asyncio.Semaphore(CONCURRENT_BATCHES)
        running: set[asyncio.Task[None]] = set()
        while True:
            batch = [await self._queue.get()]
            await slots.acquire()
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            for pending in batch:
                pending.life.advance(Stage.PREPARING)
            task = asyncio.create_task(self._prepare_batch(batch, slots))
            running.add(task)
            task.add_done_callback(running.discard)

    async def _prepare_batch(self, batch: list[_Pending], slots: asyncio.Semaphore) -> None:
        """Prepare and collect one batch (several run at once), then queue it for MPC."""
        self._preparing += len(batch)
        try:
            await self._prepare_and_collect(batch)
        except EngineError as exc:
            self._fail_all(batch, exc)
        except Exception as exc:
            log.exception("batch failed unexpectedly")
            self._fail_all(batch, EngineError(f"batch failed: {type(exc).__name__}"))
        finally:
            self._preparing -= len(batch)
            slots.release()

    async def _prepare_and_collect(self, batch: list[_Pending]) -> None:
        timeout = self._config.federation.query_timeout_seconds
        batch_id = f"b{next(self._counter)}-{secrets.token_hex(4)}"
        began = time.perf_counter()
        # A batch prepared while a session is starting sees parties not ready yet: its
        # reports say nothing about the new session (-1: ignored), else every batch
        # prepared during a restart would force another one.
        epochs_seen = {n: lane.epoch if lane.session_ok else -1 for n, lane in self._lanes.items()}

        # 1. Prepare: every party checks every request itself.
        signed = [p.signed for p in batch]
        digests = [p.plan.digest() for p in batch]
        replies = await self._all(
            lambda name: self._links[name].prepare(batch_id, signed, digests, timeout)
        )
        marks = [time.perf_counter()]
        refusals: dict[str, EngineError] = {}
        for index, pending in enumerate(batch):
            for reply in replies:
                decision = reply.decisions[index]
                if decision.error is not None:
                    refusals[pending.signed.query_id] = decision.error
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
                pending.life.index = index
        marks.append(time.perf_counter())
        live = []
        for pending in batch:
            refusal = refusals.get(pending.signed.query_id)
            if refusal is not None:
                self._refused(pending, refusal)
            else:
                pending.life.advance(Stage.ANCHORED)
                live.append(pending)
        await pause_at("approved")
        live = self._going_on(live)
        if not live:
            return
        ticket = min(p.index for p in live) if self._anchor is not None else next(self._tickets)
        for lane in self._lanes.values():
            await lane.take(ticket)
        try:
            ready = self._going_on_ready(await self._collect(batch_id, live, timeout))
        except BaseException:
            for lane in self._lanes.values():
                await lane.drop(ticket)
            raise
        marks.append(time.perf_counter())
        for name, lane in self._lanes.items():
            mine = [(p, g) for p, g in ready if self._lane_of(p) == name]
            if not mine:
                await lane.drop(ticket)
                continue
            sessions = {(r.sessions[name].epoch, r.sessions[name].ready) for r in replies}
            part = _Collected(batch_id, ticket, mine, sessions, epochs_seen[name], began, marks)
            await lane.put(ticket, part)

    def _going_on_ready(
        self, ready: list[tuple[_Pending, list[Label]]]
    ) -> list[tuple[_Pending, list[Label]]]:
        going = set(map(id, self._going_on([p for p, _ in ready])))
        return [(p, g) for p, g in ready if id(p) in going]

    def _lane_of(self, pending: _Pending) -> str:
        limits = self._config.federation.limits
        return LARGE if pending.operations > limits.large_job_operations else SMALL

    async def _collect(
        self, batch_id: str, live: list[_Pending], timeout: float
    ) -> list[tuple[_Pending, list[Label]]]:
        """Owners scan in plaintext (off the serial MPC stage; the groups are the plan's);
        each query's cost is then estimated and checked against the federation's limits."""
        ids = [p.signed.query_id for p in live]
        indices = [p.index for p in live]
        collected = await self._all(
            lambda name: self._links[name].collect(batch_id, ids, indices, timeout)
        )
        ready: list[tuple[_Pending, list[Label]]] = []
        for index, pending in enumerate(live):
            failure = None
            rows = []
            for reply in collected:
                entry = reply[index]
                if entry.error is not None:
                    failure = entry.error
                    break
                rows.append(entry.rows)
            if failure is not None:
                self._failed(pending, failure)
                continue
            if isinstance(pending.plan, JoinPlan):
                pending.padded_length = padded_length(rows)
            groups = list(pending.plan.groups)
            try:
                self._check_cost(pending, len(groups))
            except CapacityError as exc:
                self._failed(pending, exc)
                continue
            pending.life.advance(Stage.COLLECTED)
            ready.append((pending, groups))
        return ready

    def _check_cost(self, pending: _Pending, groups: int) -> None:
        """Estimate the query's secure operations; raise CapacityError over a limit."""
        estimate = costs.estimate(pending.plan, groups, pending.padded_length)
        analyst = pending.request.analyst
        others = sum(
            p.operations
            for p in self._lives.by_analyst(analyst)
            if p is not pending.life and p.stage >= Stage.COLLECTED
        )
        costs.check(estimate, self._config.federation.limits, analyst, others)
        pending.operations = estimate.operations
        pending.life.operations = estimate.operations

    # ------------------------------------------------------------------ stage 2

    async def _execute_loop(self, lane: Lane[_Collected]) -> None:
        while True:
            parts = list(await lane.next_parts())
            for part in parts:
                part.ready = self._going_on_ready(part.ready)
            parts = [part for part in parts if part.ready]
            if not parts:
                continue
            batch = [pending for part in parts for pending, _ in part.ready]
            lane.running = len(batch)
            try:
                await self._execute(parts, lane)
            except EngineError as exc:
                self._fail_all(batch, exc)
            except Exception as exc:
                log.exception("batch failed unexpectedly")
                self._fail_all(batch, EngineError(f"batch failed: {type(exc).__name__}"))
            finally:
                lane.running = 0
            self.batches_run += 1

    async def _execute(self, parts: list[_Collected], lane: Lane[_Collected]) -> None:
        timeout = self._config.federation.query_timeout_seconds
        for part in parts:
            if part.epoch_seen == lane.epoch and part.sessions != {(lane.epoch, True)}:
                lane.session_ok = False
        ready = [item for part in parts for item in part.ready]
        # 3. One live MPC session in one epoch on every party (per lane).
        if not lane.session_ok:
            await self._start_session(lane)
        for pending, _ in ready:
            pending.life.advance(Stage.RUNNING)

        # 4. Execute: one MPC job for the whole batch, in ledger order everywhere.
        execute = ExecuteOrder(
            f"j{parts[0].batch_id}{'L' if lane.name == LARGE else ''}",
            lane.epoch,
            tuple(Domain(p.signed.query_id, p.index, p.padded_length) for p, _ in ready),
            tuple(part.batch_id for part in parts),
            lane.name,
        )
        try:
            executed = await self._all(lambda name: self._links[name].execute(execute, timeout))
        except EngineError:
            lane.session_ok = False
            raise
        done = [(index, pending, groups) for index, (pending, groups) in enumerate(ready)]
        for pending, _ in ready:
            pending.life.advance(Stage.COMMITTING)
        await pause_at("anchor-results")

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
                        (name, reply[i].entry, reply[i].opening)
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
        executed: list[list[Outcome]],
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
            self._fail_all(pendings, exc)
            return
        except Exception as exc:
            log.exception("anchoring results failed unexpectedly")
            self._fail_all(pendings, EngineError(f"batch failed: {type(exc).__name__}"))
            return
        first = parts[0]
        marks = [*marks, time.perf_counter()]
        seconds = marks[-1] - first.began
        threshold = self._config.federation.threshold
        for (index, pending, groups), receipt in zip(done, receipts, strict=True):
            shares = tuple(reply[index].sealed for reply in executed)
            self._succeeded(
                pending,
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

    async def _start_session(self, lane: Lane[_Collected]) -> None:
        epoch = lane.next_epoch()
        log.info("starting MPC session epoch %d (%s lane)", epoch, lane.name)
        try:
            await self._all(
                lambda name: self._links[name].start_session(
                    epoch, lane.name, SESSION_START_TIMEOUT + 5
                )
            )
        except EngineError as exc:
            raise PeerError(f"MPC session: could not start on every party ({exc})") from None
        lane.session_ok = True


def _seconds(seconds: float | None) -> str:
    """Return a duration the way an analyst gave it ("1", "2.5", "30")."""
    value = float(seconds or 0.0)
    return f"{value:.0f}" if value >= 10 or value == round(value) else f"{value:.1f}"


def _resolve(future: asyncio.Future[QueryOutcome], outcome: QueryOutcome) -> None:
    """Deliver ``outcome`` unless the analyst's wait already ended (gave up)."""
    if not future.done():
        future.set_result(outcome)


def _reject(future: asyncio.Future[QueryOutcome], error: EngineError) -> None:
    """Deliver ``error`` unless the analyst's wait already ended (gave up)."""
    if not future.done():
        future.set_exception(error)
        future.exception()  # retrieved: an analyst who left does not leave it unread
