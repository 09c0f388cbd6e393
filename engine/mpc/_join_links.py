"""Byte messages between the parties of a join, over the MPC session's own links.

See docs/join-protocol.md, "Setting and roles".

The join never pickles: every message is a run of fixed-width little-endian integers whose
length is fixed by the public parameters, and the receiver checks it. Messages travel on
MPyC's per-peer links (TLS in production), each labelled with the program counter of an
MPyC coroutine, exactly as ``mpc.transfer`` does it but without ``pickle``.

Every party must call :func:`exchange` and :func:`spawn` the same number of times in the
same order (whether or not it sends or receives anything in that exchange): each call takes
the next program counter, and a peer's message is matched by that counter.

Pinned private API of MPyC 0.11, used nowhere else in the join:
``Runtime._send_message(peer, bytes)`` and ``Runtime._receive_message(peer)`` (a payload or a
Future of one), labelled with ``Runtime._program_counter``; the public ``mpc.coroutine`` and
``mpc.returnType`` give each exchange its own program counter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from engine.errors import PeerError
from engine.mpc._join_prf import IndexVector

MPYC_VERSION = "0.11"  # the version whose private messaging API this module relies on

T = TypeVar("T")


def check_runtime(mpc: Any) -> None:
    """Raise ValueError unless ``mpc`` is the MPyC version whose private API we use."""
    version = getattr(mpc, "version", None)
    if version != MPYC_VERSION:
        raise ValueError(f"MPyC runtime: got version {version!r}, want {MPYC_VERSION!r}")


@dataclass
class _Outcome(Generic[T]):
    value: T | None
    error: BaseException | None


def spawn(mpc: Any, make: Callable[[], Awaitable[T]]) -> Awaitable[T]:
    """Run ``make()`` as an MPyC coroutine with its own program counter; return its result.

    Exceptions raised by ``make()`` are re-raised when the result is awaited (MPyC itself
    would stop the event loop and lose them).
    """

    async def body() -> _Outcome[T]:
        await mpc.returnType(asyncio.Future)  # the placeholder MPyC returns at once
        try:
            return _Outcome(await make(), None)
        except Exception as exc:
            return _Outcome(None, exc)

    # MPyC derives the placeholder's type from the annotations of the function it wraps;
    # the lambda has none, so the placeholder is the Future declared above.
    future = mpc.coroutine(lambda: body())()

    async def result() -> T:
        outcome: _Outcome[T] = await future
        if outcome.error is not None:
            raise outcome.error
        return outcome.value  # type: ignore[return-value]

    return result()


async def _send_and_receive(
    mpc: Any, outgoing: Mapping[int, bytes], sources: Sequence[int]
) -> dict[int, bytes]:
    for peer, payload in outgoing.items():
        mpc._send_message(peer, payload)  # private MPyC 0.11 API
    pending = [mpc._receive_message(peer) for peer in sources]  # private MPyC 0.11 API
    received = [await p if isinstance(p, asyncio.Future) else p for p in pending]
    return dict(zip(sources, received, strict=True))


async def exchange(
    mpc: Any, outgoing: Mapping[int, bytes], sources: Sequence[int]
) -> Awaitable[dict[int, bytes]]:
    """Send ``outgoing[peer]`` to each peer; return an awaitable of one message per source.

    Every party calls this at the same step of the protocol, with its own sends and receives
    (possibly none). The messages are on their way when this returns, so that the caller's
    next local computation does not delay them. Requires that no peer is this party itself.
    """
    if mpc.pid in outgoing or mpc.pid in sources:
        raise ValueError(f"exchange: got own index {mpc.pid} as a peer, want other parties")
    received = spawn(mpc, lambda: _send_and_receive(mpc, outgoing, sources))
    await asyncio.sleep(0)  # let the exchange's task run its sends now
    return received


def encode_permutation(permutation: IndexVector) -> bytes:
    """Return a permutation of range(N) as N little-endian uint32 values."""
    return permutation.astype("<u4").tobytes()


def decode_permutation(payload: bytes, length: int, what: str) -> IndexVector:
    """Return the permutation of range(length) in ``payload``; PeerError if it is not one."""
    expect_size(payload, 4 * length, what)
    permutation = np.frombuffer(payload, dtype="<u4").astype(np.int64)
    seen = np.zeros(length, dtype=bool)
    if length and permutation.max() >= length:
        raise PeerError(f"{what}: got an index >= {length}, want a permutation")
    seen[permutation] = True
    if not seen.all():
        raise PeerError(f"{what}: got repeated indices, want a permutation")
    return permutation


def expect_size(payload: bytes, size: int, what: str) -> None:
    """Raise PeerError unless ``payload`` has exactly ``size`` bytes."""
    if len(payload) != size:
        raise PeerError(f"{what}: got {len(payload)} bytes, want {size}")
