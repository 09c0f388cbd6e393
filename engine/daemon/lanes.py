"""MPC lanes: a long-lived session for small jobs, a second one for large jobs.

A job that the cost estimate (:mod:`engine.cost`) marks large runs in the *large* lane: its
own MPC session, in a second worker process at every party, linked on each party's second
MPC port (``mpc_large_address``, by default the MPC port + 1000). Small queries keep
moving in the *small* lane while a large job runs. Within each lane MPC jobs run strictly
one after another in the order of their requests on the ledger, and each party checks that
order per lane (:meth:`engine.anchor.party_ledger.PartyLedger.check_order`).

Every batch takes a *ticket* (the ledger index of its first request) in both lanes before
its owners scan; once scanned, each lane gets the batch's queries that belong to it (or
gives the ticket up), so that a lane never runs a job ahead of an earlier batch that may
still bring it one.

What a lane reveals: which lane a query ran in follows from its cost estimate, which
depends on public quantities only (the plan, the number of agreed groups, a join's padded
length), all of which every party already sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Generic, TypeVar

SMALL = "small"
LARGE = "large"
LANES = (SMALL, LARGE)
MERGE_WAIT = 0.005  # seconds a lane waits for a batch about to be collected

P = TypeVar("P")


class Lane(Generic[P]):
    """One MPC lane at the sequencer: its tickets in flight, collected parts, session."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._in_flight: set[int] = set()  # tickets between anchoring and MPC
        self._ready: dict[int, P] = {}
        self._ordered = asyncio.Condition()
        self.epoch = int(time.time()) * 2 + LANES.index(name)  # fresh across restarts
        self.session_ok = False
        self.running = 0  # queries in this lane's MPC job right now

    async def take(self, ticket: int) -> None:
        """Hold ``ticket``: no later ticket runs until it is given a part or dropped."""
        async with self._ordered:
            self._in_flight.add(ticket)

    async def drop(self, ticket: int) -> None:
        """Give ``ticket`` up (its batch has nothing for this lane)."""
        async with self._ordered:
            self._in_flight.discard(ticket)
            self._ordered.notify_all()

    async def put(self, ticket: int, part: P) -> None:
        """Hand this lane the collected part of the batch holding ``ticket``."""
        async with self._ordered:
            self._ready[ticket] = part
            self._ordered.notify_all()

    async def next_parts(self) -> Sequence[P]:
        """Wait for the next collected parts, in ticket (ledger) order.

        Takes every part whose ticket is next in line, so that parts collected while the
        previous job ran join one MPC job; waits a few milliseconds for a part that is
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

    @property
    def idle(self) -> bool:
        return not self._in_flight and not self._ready and self.running == 0

    def next_epoch(self) -> int:
        """Return a new epoch for this lane's session (lanes never share an epoch)."""
        self.epoch += len(LANES)
        return self.epoch
