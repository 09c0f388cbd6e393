"""The sequencer's first stage: Prepare and Collect, batch by batch.

Queries waiting in the queue form a batch (up to MAX_BATCH; CONCURRENT_BATCHES batches at
once). Every party checks every request (Prepare); the requests and every party's decision
go on the ledger before any data is touched; the owners scan in plaintext (Collect); each
query's cost is checked against the federation's limits; the batch is then queued on its
MPC lane in ticket (ledger) order for the second stage (engine.daemon.execute_stage).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time

from engine import cost as costs
from engine.anchor.queries import RequestToAnchor
from engine.daemon.batch import CollectedPart, Crew, PendingQuery
from engine.daemon.lanes import LARGE, SMALL
from engine.daemon.lifecycle import Stage
from engine.daemon.pauses import pause_at
from engine.errors import CapacityError, EngineError
from engine.labels import Label
from engine.mpc.join_layout import padded_length
from engine.plan import JoinPlan

log = logging.getLogger(__name__)

MAX_BATCH = 256
CONCURRENT_BATCHES = 4  # batches in Prepare/Collect at once


class PrepareStage:
    """Takes queued queries in batches through Prepare and Collect onto the MPC lanes."""

    def __init__(self, crew: Crew, queue: asyncio.Queue[PendingQuery]) -> None:
        self._crew = crew
        self._queue = queue
        self._tickets = itertools.count()
        self._counter = itertools.count()

    async def run(self) -> None:
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

    async def _prepare_batch(self, batch: list[PendingQuery], slots: asyncio.Semaphore) -> None:
        """Prepare and collect one batch (several run at once), then queue it for MPC."""
        try:
            with self._crew.ending_on_failure(batch, "batch"):
                await self._prepare_and_collect(batch)
        finally:
            slots.release()

    async def _prepare_and_collect(self, batch: list[PendingQuery]) -> None:
        timeout = self._crew.config.federation.query_timeout_seconds
        batch_id = f"b{next(self._counter)}-{secrets.token_hex(4)}"
        began = time.perf_counter()
        # A batch prepared while a session is starting sees parties not ready yet: its
        # reports say nothing about the new session (-1: ignored), else every batch
        # prepared during a restart would force another one.
        epochs_seen = {
            n: lane.epoch if lane.session_ok else -1 for n, lane in self._crew.lanes.items()
        }

        # 1. Prepare: every party checks every request itself.
        signed = [p.signed for p in batch]
        digests = [p.plan.digest() for p in batch]
        replies = await self._crew.all_parties(
            lambda name: self._crew.links[name].prepare(batch_id, signed, digests, timeout)
        )
        marks = [time.perf_counter()]
        refusals: dict[str, EngineError] = {}
        for index, pending in enumerate(batch):
            for reply in replies:
                decision = reply.decisions[index]
                if decision.error is not None:
                    refusals[pending.signed.query_id] = decision.error
                    break
        if self._crew.anchor is not None:
            # The requests and every decision go on the ledger before any data is touched.
            items = [
                RequestToAnchor(
                    p.signed.query_id,
                    p.request.analyst,
                    p.signed.body,
                    p.signed.signature,
                    [
                        (name, reply.decisions[i].entry)
                        for name, reply in zip(self._crew.names(), replies, strict=True)
                    ],
                    [
                        (name, bytes(charge))
                        for name, reply in zip(self._crew.names(), replies, strict=True)
                        for charge in reply.decisions[i].charges
                    ],
                )
                for i, p in enumerate(batch)
            ]
            for pending, index in zip(batch, await self._crew.anchor.requests(items), strict=True):
                pending.life.index = index
        marks.append(time.perf_counter())
        live = []
        for pending in batch:
            refusal = refusals.get(pending.signed.query_id)
            if refusal is not None:
                self._crew.refused(pending, refusal)
            else:
                pending.life.advance(Stage.ANCHORED)
                live.append(pending)
        await pause_at("approved")
        live = self._crew.going_on(live)
        if not live:
            return
        ticket = (
            min(p.index for p in live) if self._crew.anchor is not None else next(self._tickets)
        )
        for lane in self._crew.lanes.values():
            await lane.take(ticket)
        try:
            ready = self._crew.going_on_ready(await self._collect(batch_id, live, timeout))
        except BaseException:
            for lane in self._crew.lanes.values():
                await lane.drop(ticket)
            raise
        marks.append(time.perf_counter())
        for name, lane in self._crew.lanes.items():
            mine = [(p, g) for p, g in ready if self._lane_of(p) == name]
            if not mine:
                await lane.drop(ticket)
                continue
            sessions = {(r.sessions[name].epoch, r.sessions[name].ready) for r in replies}
            part = CollectedPart(batch_id, ticket, mine, sessions, epochs_seen[name], began, marks)
            await lane.put(ticket, part)

    def _lane_of(self, pending: PendingQuery) -> str:
        # Exact joins run in the large lane whatever their size: under overlap control every
        # party must compare each with the same earlier join releases, so they run one after
        # another, in ledger order (engine.join_overlap_store).
        if isinstance(pending.plan, JoinPlan) and pending.plan.release == "exact":
            return LARGE
        limits = self._crew.config.federation.limits
        return LARGE if pending.operations > limits.large_job_operations else SMALL

    async def _collect(
        self, batch_id: str, live: list[PendingQuery], timeout: float
    ) -> list[tuple[PendingQuery, list[Label]]]:
        """Owners scan in plaintext (off the serial MPC stage; the groups are the plan's);
        each query's cost is then estimated and checked against the federation's limits."""
        ids = [p.signed.query_id for p in live]
        indices = [p.index for p in live]
        collected = await self._crew.all_parties(
            lambda name: self._crew.links[name].collect(batch_id, ids, indices, timeout)
        )
        ready: list[tuple[PendingQuery, list[Label]]] = []
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
                self._crew.failed(pending, failure)
                continue
            if isinstance(pending.plan, JoinPlan):
                pending.padded_length = padded_length(rows)
            groups = list(pending.plan.groups)
            try:
                self._check_cost(pending, len(groups))
            except CapacityError as exc:
                self._crew.failed(pending, exc)
                continue
            pending.life.advance(Stage.COLLECTED)
            ready.append((pending, groups))
        return ready

    def _check_cost(self, pending: PendingQuery, groups: int) -> None:
        """Estimate the query's secure operations; raise CapacityError over a limit."""
        plan = pending.plan
        minimum = self._crew.overlap_minimum
        overlap = (
            minimum(plan) if minimum is not None else plan.min_group_size,
            self._crew.config.federation.join_overlap_window,
        )
        estimate = costs.estimate(plan, groups, pending.padded_length, overlap)
        analyst = pending.request.analyst
        others = sum(
            p.operations
            for p in self._crew.lives.by_analyst(analyst)
            if p is not pending.life and p.stage >= Stage.COLLECTED
        )
        costs.check(estimate, self._crew.config.federation.limits, analyst, others)
        pending.operations = estimate.operations
        pending.life.operations = estimate.operations
