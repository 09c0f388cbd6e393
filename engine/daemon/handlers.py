"""The Federation protocol's handlers, shared by the gRPC servicer and the local path.

The sequencer calls these directly for its own party (no loopback TLS round trip) and
through gRPC for the others; both paths run the same code on the same messages.
"""

from __future__ import annotations

import asyncio
import logging

from engine.anchor.party import PartyLedger
from engine.daemon.party import Domain, Party
from engine.daemon.pauses import pause_at
from engine.errors import AuthError, PeerError, UnreachableError
from engine.rpc import jointstat_pb2 as pb
from engine.wire import failure_to_pb, sealed_to_pb, signed_from_pb
from ledger import LedgerError

log = logging.getLogger(__name__)

SESSION_START_SECONDS = 30.0


async def prepare(party: Party, request: pb.PrepareRequest) -> pb.PrepareReply:
    await pause_at("prepare")
    if party.draining:
        raise UnreachableError(
            f"party {party.config.name}: stopping (finishing the queries under way), "
            "want it back before new queries (retry shortly)"
        )
    if len(request.plan_digests) != len(request.queries):
        raise AuthError("prepare: got digests and queries of different lengths, want equal")
    decisions = await party.prepare(
        request.batch_id,
        [signed_from_pb(q) for q in request.queries],
        list(request.plan_digests),
    )
    return pb.PrepareReply(
        decisions=[
            pb.Decision(
                query_id=d.query_id,
                approved=d.error is None,
                refusal=failure_to_pb(d.error) if d.error is not None else None,
                entry=d.entry,
                charges=list(d.charges),
            )
            for d in decisions
        ],
        session_epoch=party.session.epoch,
        session_ready=party.session.ready,
        large_session_epoch=party.sessions["large"].epoch,
        large_session_ready=party.sessions["large"].ready,
    )


async def collect(party: Party, request: pb.CollectRequest) -> pb.CollectReply:
    with party.serving():
        await pause_at("collect")
        results = await party.collect(
            request.batch_id, list(request.query_ids), list(request.request_indices)
        )
    return pb.CollectReply(
        queries=[
            pb.QueryLabels(
                query_id=query_id,
                failure=failure_to_pb(result.error) if result.error is not None else None,
                rows=result.rows,
            )
            for query_id, result in zip(request.query_ids, results, strict=True)
        ]
    )


async def execute(party: Party, request: pb.ExecuteRequest, timeout: float) -> pb.ExecuteReply:
    with party.serving():
        return await _execute(party, request, timeout)


async def _execute(party: Party, request: pb.ExecuteRequest, timeout: float) -> pb.ExecuteReply:
    await pause_at("execute")
    if request.lane == "large":
        await pause_at("execute-large")
    domains = [Domain(q.query_id, q.request_index, q.padded_length) for q in request.queries]
    batch_ids = list(request.batch_ids) or [request.job_id]
    outcomes = await party.execute(
        request.job_id, batch_ids, request.epoch, domains, timeout, request.lane or "small"
    )
    return pb.ExecuteReply(
        shares=[sealed_to_pb(o.sealed) for o in outcomes],
        result_entries=[o.entry for o in outcomes],
        openings=[o.opening for o in outcomes],
    )


async def cosign(party: Party, request: pb.CosignRequest) -> pb.CosignReply:
    party.contacted()
    ledger = _ledger(party)
    try:
        outcome = await asyncio.to_thread(
            ledger.cosign,
            list(request.entries),
            request.from_size,
            request.note,
            request.old_size,
            list(request.proof),
            apply_only=request.apply_only,
            cosigned_note=request.cosigned_note,
        )
    except LedgerError as exc:
        log.error("ledger: %s refused to cosign: %s", party.config.name, exc)
        raise AuthError(f"ledger: {party.config.name} refused the checkpoint ({exc})") from None
    return pb.CosignReply(
        cosignature=outcome.cosignature,
        mirror_size=outcome.mirror_size,
        witness_size=outcome.witness_size,
    )


async def get_checkpoint(party: Party) -> pb.CheckpointReply:
    """Return this party's latest quorum-cosigned checkpoint and its witness's latest."""
    ledger = _ledger(party)

    def read() -> pb.CheckpointReply:
        return pb.CheckpointReply(
            note=ledger.latest_cosigned(), witness_note=ledger.witness.latest_note() or ""
        )

    return await asyncio.to_thread(read)


def _ledger(party: Party) -> PartyLedger:
    if party.ledger is None:
        raise PeerError(f"ledger: off at {party.config.name} (federation.ledger = false)")
    return party.ledger


async def start_session(party: Party, request: pb.StartSessionRequest) -> pb.StartSessionReply:
    session = party.sessions.get(request.lane or "small")
    if session is None:
        raise PeerError(f"MPC lane: got {request.lane!r}, want small or large")
    seconds = await session.start(request.epoch, timeout=SESSION_START_SECONDS)
    return pb.StartSessionReply(seconds=seconds)
