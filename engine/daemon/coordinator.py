"""The coordinator: the party an analyst sent a query to.

It authenticates the request (TLS client certificate and signature must name the same
registered analyst), refuses at once what it can already see is malformed or forbidden,
and hands the query to the sequencer (itself, or over the Federation service).

Every refusal leaves a trace. An authenticated analyst's refused query (malformed or
unsupported SQL, a column policy, a missing grant, a limit) goes on the ledger: its
request and this party's signed refusal with the rule it broke, sent to the sequencer,
which appends them in its next round (batched). An unauthenticated one (bad signature,
unknown analyst, TLS/analyst mismatch, stale or replayed) is logged here, rate-limited and
without its content, and counted (:mod:`engine.daemon.attempts`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from engine.config import PartyConfig
from engine.daemon.attempts import RefusedAttempts
from engine.daemon.party import Party
from engine.daemon.sequencer import QuerySequencer
from engine.errors import (
    AuthError,
    CapacityError,
    DataError,
    EngineError,
    PeerError,
    PolicyError,
    QueryError,
    UnreachableError,
)
from engine.explain import explain
from engine.request import QueryRequest, SignedRequest, verify
from engine.rpc import convert
from engine.rpc import jointstat_pb2 as pb
from engine.rpc.convert import signed_to_pb
from engine.rpc.peers import RECONNECT_WAIT, Peers
from engine.sql.parse import is_explain
from ledger import encode_entry

log = logging.getLogger(__name__)

REFUSALS = (QueryError, PolicyError, CapacityError, DataError)  # on the ledger
RECORD_TIMEOUT = 10.0
MAX_RECORDING = 1024  # refusals being sent to the sequencer at once (more are dropped)


class Coordinator:
    """Accepts analysts' queries at one party."""

    def __init__(
        self, config: PartyConfig, party: Party, peers: Peers, sequencer: QuerySequencer | None
    ) -> None:
        self._config = config
        self._party = party
        self._peers = peers
        self._sequencer = sequencer
        self.attempts = RefusedAttempts(config.name)
        self._recording: set[asyncio.Task[None]] = set()
        self.refusals_recorded = 0

    async def query(
        self,
        signed: SignedRequest,
        analyst: str,
        *,
        source: str = "",
        patience: float | None = None,
    ) -> pb.QueryResult:
        """Run one query for the analyst authenticated as ``analyst`` (TLS), sent from
        ``source`` (for the log); ``patience`` is how long the analyst waits (None: the
        federation's query timeout)."""
        federation = self._config.federation
        if self._party.draining:
            raise UnreachableError(
                f"party {self._config.name}: stopping, want another party or a retry shortly"
            )
        try:
            request = verify(signed, federation, peer_analyst=analyst, now=time.time())
        except (AuthError, CapacityError) as exc:
            self.attempts.refused(source or f"analyst {analyst}", type(exc).__name__, str(exc))
            raise
        try:
            plan = await self._party.plan(request.sql, request.analyst)  # refuse early
        except REFUSALS as exc:
            self._record_refusal(signed, request, exc, source or f"analyst {analyst}")
            raise
        if is_explain(request.sql):
            # Plans and checks every policy, but touches no data and runs nothing.
            text = explain(plan, federation, request.sql)
            return pb.QueryResult(query_id=signed.query_id, explanation=text, limit=-1)
        if self._sequencer is not None:
            outcome = await self._sequencer.submit(signed, (request, plan), patience=patience)
            return convert.query_result_to_pb(outcome)
        timeout = federation.query_timeout_seconds + 5
        if patience is not None:
            timeout = min(timeout, max(patience, 0.01))
        message = signed_to_pb(signed)
        # A sequencer that just came back may still be in the channel's reconnect backoff:
        # wait for the channel first, and send once (a retried Submit after a dropped
        # connection would be a replay of a request the sequencer may already hold).
        await self._peers.wait_ready(federation.sequencer, RECONNECT_WAIT)
        result: pb.QueryResult = await self._peers.call(
            federation.sequencer, lambda stub: stub.Submit(message, timeout=timeout)
        )
        return result

    def _record_refusal(
        self, signed: SignedRequest, request: QueryRequest, error: EngineError, source: str
    ) -> None:
        """Send the refused query and this party's signed refusal to the sequencer's ledger
        (in the background: the analyst's answer does not wait for the ledger)."""
        ledger = self._party.ledger
        if ledger is None:
            return
        try:
            # A refused request is refused once: sent again, it is a replay (logged only).
            self._party.nonces.remember(request.analyst, request.nonce, time.time())
        except AuthError as exc:
            self.attempts.refused(source, type(exc).__name__, str(exc))
            return
        if len(self._recording) >= MAX_RECORDING:
            log.warning("query %s: refusal not recorded (too many being recorded)", signed.query_id)
            return
        reason = f"{type(error).__name__}: {error}"
        decision = encode_entry(ledger.decide(signed.query_id, signed.body, reason))
        task = asyncio.create_task(self._send_refusal(signed, request.analyst, decision))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    async def _send_refusal(self, signed: SignedRequest, analyst: str, decision: bytes) -> None:
        try:
            if self._sequencer is not None:
                self._sequencer.record_refusal(signed, analyst, self._config.name, decision)
            else:
                message = pb.RefusalRequest(query=signed_to_pb(signed), decision=decision)
                await self._peers.call(
                    self._config.federation.sequencer,
                    lambda stub: stub.RecordRefusal(message, timeout=RECORD_TIMEOUT),
                )
            self.refusals_recorded += 1
        except (PeerError, AuthError) as exc:
            log.warning("query %s: refusal not recorded on the ledger: %s", signed.query_id, exc)
