"""The sequencer's second stage: one MPC job after another on each lane.

Per lane (engine.daemon.lanes), the collected batches run strictly in ticket (ledger)
order: the lane's MPC session is (re)started in a new epoch when a party reported it not
live, every party runs the job, and each party's commitment to its sealed shares is queued
for the ledger; the third stage (engine.daemon.release_stage) releases the results once
anchored, while the next job runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable

from engine.anchor.queries import QueryReceipts
from engine.daemon.batch import CollectedPart, Crew
from engine.daemon.lanes import LARGE, Lane
from engine.daemon.lifecycle import Stage
from engine.daemon.pauses import pause_at
from engine.daemon.release_stage import release
from engine.errors import EngineError, PeerError
from engine.protocol import Domain, ExecuteOrder

log = logging.getLogger(__name__)

SESSION_START_TIMEOUT = 30.0


class ExecuteStage:
    """Runs each lane's MPC jobs in order and hands their results to the release stage."""

    def __init__(self, crew: Crew) -> None:
        self._crew = crew
        self._releasing: set[asyncio.Task[None]] = set()  # stage 3: results being anchored
        self.batches_run = 0

    async def cancel_releases(self) -> None:
        """Cancel the results still being anchored (at stop)."""
        tasks = list(self._releasing)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self, lane: Lane[CollectedPart]) -> None:
        while True:
            parts = list(await lane.next_parts())
            for part in parts:
                part.ready = self._crew.going_on_ready(part.ready)
            parts = [part for part in parts if part.ready]
            if not parts:
                continue
            batch = [pending for part in parts for pending, _ in part.ready]
            lane.running = len(batch)
            try:
                with self._crew.ending_on_failure(batch, "batch"):
                    await self._execute(parts, lane)
            finally:
                lane.running = 0
            self.batches_run += 1

    async def _execute(self, parts: list[CollectedPart], lane: Lane[CollectedPart]) -> None:
        timeout = self._crew.config.federation.query_timeout_seconds
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
            executed = await self._crew.all_parties(
                lambda name: self._crew.links[name].execute(execute, timeout)
            )
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
        if self._crew.anchor is not None and done:
            names = self._crew.names()
            anchoring = self._crew.anchor.results(
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
            release(self._crew, execute.job_id, parts, len(ready), done, executed, anchoring, marks)
        )
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _start_session(self, lane: Lane[CollectedPart]) -> None:
        epoch = lane.next_epoch()
        log.info("starting MPC session epoch %d (%s lane)", epoch, lane.name)
        try:
            await self._crew.all_parties(
                lambda name: self._crew.links[name].start_session(
                    epoch, lane.name, SESSION_START_TIMEOUT + 5
                )
            )
        except EngineError as exc:
            raise PeerError(f"MPC session: could not start on every party ({exc})") from None
        lane.session_ok = True
