"""How the sequencer reaches a party: the steps of a query's life as calls on dataclasses.

The sequencer's own party is called in-process (:class:`LocalParty`), every other party
through gRPC (:class:`engine.rpc.remote.RemoteParty`, which converts messages at the edge);
both end in the same handlers (:mod:`engine.daemon.handlers`) at the party, so the two paths
run the same code. Nothing here knows protobuf.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from engine.daemon import handlers
from engine.daemon.party import Party
from engine.protocol import Collected, ExecuteOrder, Outcome, Prepared
from engine.request import SignedRequest


class PartyLink(Protocol):
    """One party as the sequencer calls it."""

    async def prepare(
        self,
        batch_id: str,
        queries: Sequence[SignedRequest],
        digests: Sequence[str],
        timeout: float,
    ) -> Prepared: ...

    async def collect(
        self,
        batch_id: str,
        query_ids: Sequence[str],
        request_indices: Sequence[int],
        timeout: float,
    ) -> list[Collected]: ...

    async def execute(self, order: ExecuteOrder, timeout: float) -> list[Outcome]: ...

    async def start_session(self, epoch: int, lane: str, timeout: float) -> float: ...


class LocalParty:
    """The sequencer's own party, called in-process (no loopback TLS round trip)."""

    def __init__(self, party: Party) -> None:
        self._party = party

    async def prepare(
        self,
        batch_id: str,
        queries: Sequence[SignedRequest],
        digests: Sequence[str],
        timeout: float,
    ) -> Prepared:
        return await handlers.prepare(self._party, batch_id, queries, digests)

    async def collect(
        self,
        batch_id: str,
        query_ids: Sequence[str],
        request_indices: Sequence[int],
        timeout: float,
    ) -> list[Collected]:
        return await handlers.collect(self._party, batch_id, query_ids, request_indices)

    async def execute(self, order: ExecuteOrder, timeout: float) -> list[Outcome]:
        return await handlers.execute(self._party, order, timeout)

    async def start_session(self, epoch: int, lane: str, timeout: float) -> float:
        return await handlers.start_session(self._party, epoch, lane)
