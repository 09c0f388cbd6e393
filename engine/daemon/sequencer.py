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

This module takes queries in (submit, give up, drain, stop); the stages are
:mod:`engine.daemon.prepare_stage` (Prepare, Collect), :mod:`engine.daemon.execute_stage`
(the MPC jobs per lane) and :mod:`engine.daemon.release_stage` (results released once
anchored); :mod:`engine.daemon.batch` holds what they share and how queries end.

Each query has a :class:`~engine.daemon.lifecycle.QueryLife`: it ends exactly once, in its
result, a refusal, or an abort anchored on the ledger with the reason — also when the
analyst gave up before its MPC job started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from engine.anchor.queries import QueryAnchor, RequestToAnchor
from engine.config import PartyConfig
from engine.daemon.batch import CollectedPart, Crew, PendingQuery
from engine.daemon.execute_stage import ExecuteStage
from engine.daemon.lanes import LANES, Lane
from engine.daemon.links import PartyLink
from engine.daemon.party import Party
from engine.daemon.prepare_stage import PrepareStage
from engine.errors import AuthError, CapacityError, GaveUpError, PeerError, UnreachableError
from engine.plan import Plan
from engine.protocol import QueryOutcome
from engine.request import QueryRequest, SignedRequest, verify

log = logging.getLogger(__name__)

MAX_QUEUE = 4096
ANSWER_MARGIN = 0.5  # seconds before an analyst's deadline by which the answer is sent


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
        lanes: dict[str, Lane[CollectedPart]] = {name: Lane(name) for name in LANES}
        self._crew = Crew(config, links, anchor, lanes)
        self._queue: asyncio.Queue[PendingQuery] = asyncio.Queue(MAX_QUEUE)
        self._prepare = PrepareStage(self._crew, self._queue)
        self._execute = ExecuteStage(self._crew)
        self._tasks: list[asyncio.Task[None]] = []
        self.draining = False

    def start(self) -> None:
        crew = self._crew
        if crew.anchor is not None:
            crew.anchor.start(crew.lives.is_live, crew.lives.failure)
        self._tasks = [
            asyncio.create_task(self._prepare.run(), name="sequencer-prepare"),
            *(
                asyncio.create_task(self._execute.run(lane), name=f"sequencer-{lane.name}")
                for lane in crew.lanes.values()
            ),
        ]

    async def drain(self, timeout: float) -> bool:
        """Take no new queries; wait up to ``timeout`` s until every query under way has
        ended (its result or abort anchored). Return whether they all did."""
        self.draining = True
        try:
            await asyncio.wait_for(self._crew.idle.wait(), timeout)
        except TimeoutError:
            log.warning("sequencer: %d query(ies) still under way at stop", len(self._crew.lives))
            return False
        return True

    async def stop(self) -> None:
        if self._crew.anchor is not None:
            await self._crew.anchor.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._execute.cancel_releases()

    @property
    def in_flight(self) -> int:
        """Return how many queries the sequencer holds (queued to being released)."""
        return len(self._crew.lives)

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
        life = self._crew.lives.begin(signed.query_id, request.analyst)
        pending = PendingQuery(signed, request, plan, future, time.perf_counter(), life)
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self._crew.lives.retire(life)
            raise CapacityError(
                f"sequencer queue: got {MAX_QUEUE} waiting queries, want fewer (retry later)"
            ) from None
        self._crew.idle.clear()
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
        if self._crew.anchor is None:
            return
        request = verify(signed, self._config.federation, peer_analyst=None, now=time.time())
        if request.analyst != analyst:
            raise AuthError(f"refusal: got analyst {analyst!r}, want {request.analyst!r}")
        self._crew.anchor.refusal(
            RequestToAnchor(
                signed.query_id,
                request.analyst,
                signed.body,
                signed.signature,
                [(coordinator, decision)],
            )
        )

    def _give_up(self, pending: PendingQuery, reason: str) -> GaveUpError:
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


def _seconds(seconds: float | None) -> str:
    """Return a duration the way an analyst gave it ("1", "2.5", "30")."""
    value = float(seconds or 0.0)
    return f"{value:.0f}" if value >= 10 or value == round(value) else f"{value:.1f}"
