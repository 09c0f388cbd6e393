"""The Federation protocol's handlers, shared by the gRPC servicer and the local path.

The sequencer calls these directly for its own party (no loopback TLS round trip) and
through gRPC for the others; both paths run the same code on the same messages.
"""

from __future__ import annotations

from engine.daemon.party import Party
from engine.errors import AuthError
from engine.rpc import jointstat_pb2 as pb
from engine.wire import failure_to_pb, label_from_pb, labels_to_pb, sealed_to_pb, signed_from_pb

SESSION_START_SECONDS = 30.0


async def prepare(party: Party, request: pb.PrepareRequest) -> pb.PrepareReply:
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
            )
            for d in decisions
        ],
        session_epoch=party.session.epoch,
        session_ready=party.session.ready,
    )


async def collect(party: Party, request: pb.CollectRequest) -> pb.CollectReply:
    results = await party.collect(request.batch_id, list(request.query_ids))
    return pb.CollectReply(
        queries=[
            pb.QueryLabels(
                query_id=query_id,
                labels=labels_to_pb(labels),
                failure=failure_to_pb(error) if error is not None else None,
            )
            for query_id, (labels, error) in zip(request.query_ids, results, strict=True)
        ]
    )


async def execute(party: Party, request: pb.ExecuteRequest, timeout: float) -> pb.ExecuteReply:
    domains = [(q.query_id, [label_from_pb(row) for row in q.groups]) for q in request.queries]
    batch_ids = list(request.batch_ids) or [request.job_id]
    results = await party.execute(request.job_id, batch_ids, request.epoch, domains, timeout)
    return pb.ExecuteReply(
        shares=[sealed_to_pb(sealed) for sealed, _ in results],
        failures=[
            failure_to_pb(error) if error is not None else pb.Failure() for _, error in results
        ],
    )


async def start_session(party: Party, request: pb.StartSessionRequest) -> pb.StartSessionReply:
    seconds = await party.session.start(request.epoch, timeout=SESSION_START_SECONDS)
    return pb.StartSessionReply(seconds=seconds)
