"""The one place that maps engine errors to gRPC status codes and back.

Servers call :func:`abort_with` for an EngineError; clients and relaying parties call
:func:`error_from_rpc` to turn a failed call back into the matching EngineError, so that
a refusal decided by a remote party reaches the analyst with its class and message intact.
"""

from __future__ import annotations

from typing import NoReturn

import grpc

from engine.errors import (
    AuthError,
    CapacityError,
    CatalogMissError,
    ConfigError,
    DataError,
    EngineError,
    GaveUpError,
    PeerError,
    PolicyError,
    QueryError,
    RequestError,
    UnreachableError,
    UnsupportedError,
)

# Most specific classes first: UnsupportedError is a QueryError.
CODES: tuple[tuple[type[EngineError], grpc.StatusCode], ...] = (
    (UnsupportedError, grpc.StatusCode.INVALID_ARGUMENT),
    (CatalogMissError, grpc.StatusCode.INVALID_ARGUMENT),
    (QueryError, grpc.StatusCode.INVALID_ARGUMENT),
    (RequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (PolicyError, grpc.StatusCode.PERMISSION_DENIED),
    (AuthError, grpc.StatusCode.UNAUTHENTICATED),
    (DataError, grpc.StatusCode.FAILED_PRECONDITION),
    (CapacityError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (GaveUpError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (UnreachableError, grpc.StatusCode.UNAVAILABLE),
    (PeerError, grpc.StatusCode.UNAVAILABLE),
    (ConfigError, grpc.StatusCode.INTERNAL),
    (EngineError, grpc.StatusCode.INTERNAL),
)

BY_NAME: dict[str, type[EngineError]] = {cls.__name__: cls for cls, _ in CODES}
_METADATA_KEY = "jointstat-error"


def status_of(error: EngineError) -> grpc.StatusCode:
    """Return the gRPC status code for ``error``."""
    for cls, code in CODES:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


def error_of(code_name: str, message: str) -> EngineError:
    """Return an EngineError of the class named ``code_name`` (EngineError if unknown)."""
    return BY_NAME.get(code_name, EngineError)(message)


async def abort_with(context: grpc.aio.ServicerContext, error: EngineError) -> NoReturn:
    """Abort the current RPC with the status of ``error`` and its class in metadata."""
    context.set_trailing_metadata(((_METADATA_KEY, type(error).__name__),))
    await context.abort(status_of(error), str(error))
    raise AssertionError("unreachable")  # context.abort raises


def error_from_rpc(exc: grpc.RpcError, peer: str) -> EngineError:
    """Translate a failed call to ``peer`` into the EngineError it carries."""
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    name = ""
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == _METADATA_KEY:
            name = str(value)
    if name in BY_NAME:
        return BY_NAME[name](details or "")
    if code is grpc.StatusCode.UNAVAILABLE:
        return UnreachableError(f"party {peer}: unreachable ({details})")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return PeerError(f"party {peer}: no answer in time ({details})")
    if code is grpc.StatusCode.CANCELLED:
        return PeerError(f"party {peer}: call cancelled ({details})")
    return PeerError(f"party {peer}: failed with {code.name if code else 'error'}: {details}")
