"""Every party's latest checkpoints, asked over the Analyst service (``GetCheckpoint``).

Callable with an analyst's or a party's certificate; used by ``ledger verify`` to compare a
copy with what others signed (engine.anchor.freshness). The notes are returned as they
came: verifying them is the caller's business.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from engine.config import Federation
from engine.errors import EngineError
from engine.rpc import jointstat_pb2 as pb
from engine.rpc import jointstat_pb2_grpc as pb_grpc
from engine.rpc.options import channel_options
from engine.rpc.status import error_from_rpc

CHECKPOINT_TIMEOUT = 5.0  # seconds per party


def party_checkpoints(
    federation: Federation, credentials: grpc.ChannelCredentials, skip: Iterable[str] = ()
) -> dict[str, tuple[str, str] | EngineError]:
    """Ask every party but ``skip`` for its latest cosigned checkpoint and its witness's
    (the Analyst service's GetCheckpoint, callable with an analyst's or a party's
    certificate); return per party the two notes, or the EngineError of the failed call.
    The notes are not verified here (see engine.anchor.freshness)."""
    out: dict[str, tuple[str, str] | EngineError] = {}
    for party in federation.parties:
        if party.name in skip:
            continue
        options = [*channel_options(), ("grpc.ssl_target_name_override", party.name)]
        with grpc.secure_channel(party.address, credentials, options=options) as channel:
            try:
                reply = pb_grpc.AnalystStub(channel).GetCheckpoint(
                    pb.GetCheckpointRequest(), timeout=CHECKPOINT_TIMEOUT
                )
            except grpc.RpcError as exc:
                out[party.name] = error_from_rpc(exc, party.name)
                continue
        out[party.name] = (reply.note, reply.witness_note)
    return out
