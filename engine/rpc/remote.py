"""Another party as the sequencer calls it: the protocol's steps over gRPC.

Converts the dataclasses of :mod:`engine.protocol` into messages and back
(:mod:`engine.rpc.convert`), and failures into EngineError (:mod:`engine.rpc.peers`).
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.protocol import Collected, ExecuteOrder, Outcome, Prepared
from engine.request import SignedRequest
from engine.rpc import convert
from engine.rpc import jointstat_pb2 as pb
from engine.rpc.peers import Peers


class RemoteParty:
    """One other party's Federation service (implements engine.daemon.links.PartyLink)."""

    def __init__(self, peers: Peers, name: str) -> None:
        self._peers = peers
        self._name = name

    async def prepare(
        self,
        batch_id: str,
        queries: Sequence[SignedRequest],
        digests: Sequence[str],
        timeout: float,
    ) -> Prepared:
        request = convert.prepare_to_pb(batch_id, queries, digests)
        # Prepare is the first call of a query's life: a party that just came back may
        # still be in its channel's reconnect backoff, so it gets one wait.
        reply = await self._peers.call_reconnecting(
            self._name, lambda s: s.Prepare(request, timeout=timeout)
        )
        return convert.prepared_from_pb(reply)

    async def collect(
        self,
        batch_id: str,
        query_ids: Sequence[str],
        request_indices: Sequence[int],
        timeout: float,
    ) -> list[Collected]:
        request = convert.collect_to_pb(batch_id, query_ids, request_indices)
        reply = await self._peers.call(self._name, lambda s: s.Collect(request, timeout=timeout))
        return convert.collected_from_pb(reply)

    async def execute(self, order: ExecuteOrder, timeout: float) -> list[Outcome]:
        request = convert.order_to_pb(order)
        reply = await self._peers.call(self._name, lambda s: s.Execute(request, timeout=timeout))
        return convert.outcomes_from_pb(reply)

    async def start_session(self, epoch: int, lane: str, timeout: float) -> float:
        request = pb.StartSessionRequest(epoch=epoch, lane=lane)
        reply = await self._peers.call(
            self._name, lambda s: s.StartSession(request, timeout=timeout)
        )
        return float(reply.seconds)
