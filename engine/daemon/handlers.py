"""The Federation protocol's steps at a party, on dataclasses.

The sequencer calls these in-process for its own party (engine.daemon.links.LocalParty) and
through gRPC for the others: the servicer (engine.daemon.services) converts the messages at
the edge (engine.rpc.convert) and calls the same functions, so both paths run the same code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from engine.anchor.errors import engine_error
from engine.anchor.party_ledger import CosignOutcome, PartyLedger
from engine.daemon.party import Party
from engine.daemon.pauses import pause_at
from engine.errors import AuthError, PeerError, UnreachableError
from engine.protocol import Collected, CosignCall, ExecuteOrder, LaneSession, Outcome, Prepared
from engine.request import SignedRequest
from ledger import LedgerError

log = logging.getLogger(__name__)

SESSION_START_SECONDS = 30.0


async def prepare(
    party: Party, batch_id: str, queries: Sequence[SignedRequest], digests: Sequence[str]
) -> Prepared:
    """Check every request of a batch (engine.daemon.party.Party.prepare)."""
    await pause_at("prepare")
    if party.draining:
        raise UnreachableError(
            f"party {party.config.name}: stopping (finishing the queries under way), "
            "want it back before new queries (retry shortly)"
        )
    if len(digests) != len(queries):
        raise AuthError("prepare: got digests and queries of different lengths, want equal")
    decisions = await party.prepare(batch_id, list(queries), list(digests))
    sessions = {
        lane: LaneSession(session.epoch, session.ready) for lane, session in party.sessions.items()
    }
    return Prepared(tuple(decisions), sessions)


async def collect(
    party: Party, batch_id: str, query_ids: Sequence[str], request_indices: Sequence[int]
) -> list[Collected]:
    """Run the owners' plaintext step of a batch's approved queries."""
    with party.serving():
        await pause_at("collect")
        return await party.collect(batch_id, list(query_ids), list(request_indices))


async def execute(party: Party, order: ExecuteOrder, timeout: float) -> list[Outcome]:
    """Run this party's part of one MPC job."""
    with party.serving():
        await pause_at("execute")
        if order.lane == "large":
            await pause_at("execute-large")
        batch_ids = list(order.batch_ids) or [order.job_id]
        return await party.execute(
            order.job_id, batch_ids, order.epoch, list(order.domains), timeout, order.lane
        )


async def start_session(party: Party, epoch: int, lane: str) -> float:
    """Start (or restart) this party's MPC session of ``lane`` in ``epoch``."""
    session = party.sessions.get(lane)
    if session is None:
        raise PeerError(f"MPC lane: got {lane!r}, want small or large")
    return await session.start(epoch, timeout=SESSION_START_SECONDS)


async def cosign(party: Party, call: CosignCall) -> CosignOutcome:
    """Mirror the entries and cosign the checkpoint if it extends what this party signed."""
    party.contacted()
    ledger = _ledger(party)
    try:
        return await asyncio.to_thread(
            ledger.cosign,
            list(call.entries),
            call.from_size,
            call.note,
            call.old_size,
            list(call.proof),
            apply_only=call.apply_only,
            cosigned_note=call.cosigned_note,
        )
    except LedgerError as exc:
        log.error("ledger: %s refused to cosign: %s", party.config.name, exc)
        what = f"ledger: {party.config.name} refused the checkpoint"
        raise engine_error(exc, what, AuthError) from None


async def checkpoints(party: Party) -> tuple[str, str]:
    """Return this party's latest quorum-cosigned checkpoint and its witness's latest."""
    ledger = _ledger(party)

    def read() -> tuple[str, str]:
        return ledger.latest_cosigned(), ledger.witness.latest_note() or ""

    return await asyncio.to_thread(read)


def _ledger(party: Party) -> PartyLedger:
    if party.ledger is None:
        raise PeerError(f"ledger: off at {party.config.name} (federation.ledger = false)")
    return party.ledger
