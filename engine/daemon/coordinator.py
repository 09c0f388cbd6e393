"""The coordinator: the party an analyst sent a query to.

It authenticates the request (TLS client certificate and signature must name the same
registered analyst), refuses at once what it can already see is malformed or forbidden,
and hands the query to the sequencer (itself, or over the Federation service).
"""

from __future__ import annotations

import time

from engine.config import PartyConfig
from engine.daemon.party import Party
from engine.daemon.peers import Peers
from engine.daemon.sequencer import Sequencer
from engine.explain import explain
from engine.request import SignedRequest, verify
from engine.rpc import jointstat_pb2 as pb
from engine.sql.parse import is_explain
from engine.wire import signed_to_pb


class Coordinator:
    """Accepts analysts' queries at one party."""

    def __init__(
        self, config: PartyConfig, party: Party, peers: Peers, sequencer: Sequencer | None
    ) -> None:
        self._config = config
        self._party = party
        self._peers = peers
        self._sequencer = sequencer

    async def query(self, signed: SignedRequest, analyst: str) -> pb.QueryResult:
        """Run one query for the analyst authenticated as ``analyst``."""
        federation = self._config.federation
        request = verify(signed, federation, peer_analyst=analyst, now=time.time())
        plan = await self._party.plan(request.sql, request.analyst)  # refuse early, with reason
        if is_explain(request.sql):
            # Plans and checks every policy, but touches no data and runs nothing.
            text = explain(plan, federation, request.sql)
            return pb.QueryResult(query_id=signed.query_id, explanation=text, limit=-1)
        if self._sequencer is not None:
            outcome = await self._sequencer.submit(signed, (request, plan))
            return outcome.to_pb()
        timeout = federation.query_timeout_seconds + 5
        message = signed_to_pb(signed)
        result: pb.QueryResult = await self._peers.call_reconnecting(
            federation.sequencer, lambda stub: stub.Submit(message, timeout=timeout)
        )
        return result
