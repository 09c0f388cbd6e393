"""What the MPC worker does with the bytes other parties' workers send it.

Used only by :mod:`engine.mpc._worker` (this module does not import MPyC; it is handed
MPyC's objects). Three pieces:

- :func:`receive_frames` reads MPyC 0.11's framing of peer messages (program counter as
  int64, payload length as uint32, payload; see ``mpyc.asyncoro.MessageExchanger``) in
  place of MPyC's own loop: a frame longer than MAX_FRAME, or a second frame for a program
  counter whose first is still waiting, is refused; every payload is a
  :class:`PeerPayload` that remembers the sender's index;
- :class:`PeerMarshal` stands in for the ``pickle`` module that ``mpyc.runtime`` calls to
  marshal secure-array shares: :mod:`engine.mpc.share_codec` both ways, so nothing a peer
  sends is unpickled;
- :class:`Refusals` ends the session on a refused message: it logs one line (the party,
  the size, the reason; never the bytes), sends the daemon a JobFailure naming the party
  for the job under way, and exits the worker (MPyC cannot go on after a lost message,
  and a peer that sends garbage is not one to continue with).

What it reveals: to the daemon and its log, which party sent a refused message and its
size; nothing of the message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import socket
import struct
from collections.abc import Sequence
from typing import Any, NoReturn

from engine.errors import PeerError
from engine.mpc import share_codec
from engine.mpc.job import JobFailure

log = logging.getLogger("engine.mpc.worker")

FRAME = struct.Struct("<qI")  # MPyC 0.11: program counter, payload length
MAX_FRAME = share_codec.MAX_BYTES
REFUSED_EXIT = 5  # the worker's exit status after refusing a peer's message
_CONTROL_HEADER = struct.Struct(">I")  # the daemon's control channel (engine.mpc.session)


class PeerPayload(bytes):
    """The payload of one frame from a peer; ``peer`` is the sender's party index."""

    peer: int = -1


class Refusals:
    """Ends the session when a peer's message is refused (see the module docstring)."""

    def __init__(self, names: Sequence[str]) -> None:
        self._names = list(names)
        self._control: socket.socket | None = None
        self.job_id: str | None = None  # the job under way, if any

    def attach(self, control: socket.socket) -> None:
        """Report refusals over ``control``, the daemon's control socket."""
        self._control = control

    def party(self, index: int | None) -> str:
        """Return the name of party ``index`` (or its index if the name is not known)."""
        if index is not None and 0 <= index < len(self._names):
            return self._names[index]
        return f"#{index}" if index is not None else "(unknown)"

    def refuse(self, peer: int | None, size: int, reason: str) -> NoReturn:
        """Log, report and end the session: party ``peer`` sent a message that is refused."""
        name = self.party(peer)
        log.error(
            "MPC message from party %s (index %s) refused (%d bytes): %s; ending the session",
            name,
            peer,
            size,
            reason,
        )
        if self._control is not None and self.job_id is not None:
            failure = JobFailure(
                self.job_id,
                f"party {name} sent an MPC message that is not a share message "
                f"({size} bytes; {reason}): refused, session ended",
            )
            body = pickle.dumps(failure, protocol=pickle.HIGHEST_PROTOCOL)  # to our daemon
            try:
                self._control.setblocking(True)
                self._control.sendall(_CONTROL_HEADER.pack(len(body)) + body)
            except OSError:
                pass  # the daemon is gone; it will see the worker exit
        os._exit(REFUSED_EXIT)


class PeerMarshal:
    """What ``mpyc.runtime`` calls ``pickle``: share messages both ways, never pickles."""

    def __init__(self, refusals: Refusals) -> None:
        self._refusals = refusals

    def dumps(self, value: object, *_: Any, **__: Any) -> bytes:
        """Return the share message of ``value`` (see share_codec.encode)."""
        return share_codec.encode(value)

    def loads(self, data: bytes, *_: Any, **__: Any) -> Any:
        """Return the value in share message ``data``; refuse anything else."""
        try:
            return share_codec.decode(data)
        except PeerError as exc:
            self._refusals.refuse(getattr(data, "peer", None), len(data), str(exc))


def receive_frames(link: Any, data: bytes, refusals: Refusals) -> None:
    """Add ``data`` to the link's buffer and deliver every complete frame in it.

    ``link`` is MPyC's MessageExchanger of one peer, past the handshake: ``bytes`` (a
    bytearray of what is not yet a whole frame), ``buffers`` (program counter -> payload,
    or the Future a receiver waits on) and ``peer_pid``.
    """
    buffer: bytearray = link.bytes
    buffer.extend(data)
    peer: int = link.peer_pid
    waiting: dict[int, Any] = link.buffers
    start, filled = 0, len(buffer)
    with memoryview(buffer) as view:
        while filled - start >= FRAME.size:
            pc, length = FRAME.unpack_from(buffer, start)
            if length > MAX_FRAME:
                refusals.refuse(peer, length, f"MPC frame: got {length} bytes, want <= {MAX_FRAME}")
            end = start + FRAME.size + length
            if end > filled:
                break
            payload = PeerPayload(view[start + FRAME.size : end])
            payload.peer = peer
            start = end
            receiver = waiting.pop(pc, None)
            if receiver is None:
                waiting[pc] = payload
            elif isinstance(receiver, asyncio.Future) and not receiver.done():
                receiver.set_result(payload)
            else:
                refusals.refuse(
                    peer, length, f"MPC frame: got a second message for program counter {pc}"
                )
    del buffer[:start]


def tag_buffered(link: Any) -> None:
    """Mark the payloads MPyC framed itself (with the handshake) as from the link's peer."""
    for pc, payload in list(link.buffers.items()):
        if isinstance(payload, bytes) and not isinstance(payload, PeerPayload):
            tagged = PeerPayload(payload)
            tagged.peer = link.peer_pid
            link.buffers[pc] = tagged
