"""How a party's gRPC servers take requests in: decoded here, malformed bodies refused.

gRPC's generated registration decodes a request before the servicer sees it: a body that
is not valid protobuf then fails inside gRPC (status UNKNOWN "Unexpected DecodeError",
and a traceback in the daemon's log for each one). :func:`add_service` registers a
service with handlers that take the raw bytes instead, refuse bytes that do not decode
as the method's message (INVALID_ARGUMENT, with the engine's error class), and call the
servicer with the decoded message exactly as gRPC would.

Sizes are bounded before this, by the transport: the Analyst and Federation services
run on two servers (two ports, engine.config), the Analyst one refusing any message above
ANALYST_MAX_REQUEST_BYTES from its length prefix, before reading it (measured: four
60 MiB bodies refused by a per-method check after gRPC had read them still left a daemon
at 524 MiB instead of 120), the Federation one accepting the 64 MiB that joins and ledger
catch-up need.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from engine.errors import RequestError
from engine.rpc import jointstat_pb2 as pb
from engine.rpc.status import abort_with

PACKAGE = "jointstat.v1"

Servicer = Any  # a generated servicer subclass: one coroutine method per RPC


def add_service(server: grpc.aio.Server, name: str, servicer: Servicer) -> None:
    """Register ``servicer`` as service ``name`` ("Analyst" or "Federation") of ``server``."""
    service = pb.DESCRIPTOR.services_by_name[name]
    handlers = {
        method.name: _handler(
            getattr(servicer, method.name),
            getattr(pb, method.input_type.name),
            getattr(pb, method.output_type.name),
        )
        for method in service.methods
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(f"{PACKAGE}.{name}", handlers),)
    )


def _handler(
    method: Callable[[Any, Any], Awaitable[Message]],
    request_type: type[Message],
    reply_type: type[Message],
) -> grpc.RpcMethodHandler:
    what = request_type.DESCRIPTOR.full_name

    async def handle(body: bytes, context: Any) -> Message:
        try:
            request = request_type.FromString(body)
        except DecodeError:
            await abort_with(
                context,
                RequestError(f"request: got {len(body)} bytes that are not a {what}, want one"),
            )
        return await method(request, context)

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=None, response_serializer=reply_type.SerializeToString
    )
