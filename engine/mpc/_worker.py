"""The MPC worker process: the only module of jointstat that imports MPyC.

A party daemon starts one worker per MPC session (``python -m engine.mpc._worker CONFIG``)
and talks to it over a private socket pair (file descriptor in the config): length-prefixed
pickles of :mod:`engine.mpc.job` objects, between a daemon and its own child only. The
worker links with the other parties' workers through MPyC's TLS, hardened here in ways
MPyC does not do itself:

- only the federation CA is trusted (not the system store);
- a connecting peer must present the certificate of the party index it claims
  (its certificate names ``MPyC party <index>``), so one party cannot pose as another;
- nothing a peer sends is unpickled. MPyC 0.11 itself unpickles peer bytes on every
  secure-array path (``mpc.input``, ``mpc.output``, ``mpc._reshare``: ``marshal =
  pickle.dumps; unmarshal = pickle.loads``) and in ``mpc.transfer``; before any job the
  worker replaces the ``pickle`` that ``mpyc.runtime`` calls with the typed share codec
  (:mod:`engine.mpc.share_codec`), the only module-level name through which MPyC decodes
  peer data (``tests/engine/test_peer_codec.py`` checks MPyC's source for any other).
  The join's own messages are fixed-width integers checked by their receivers
  (:mod:`engine.mpc._join_links`); scalar shares go through ``field.from_bytes``, which
  only reads integers;
- MPyC's framing of peer messages (program counter, length, payload) is read here too:
  a frame above MAX_MESSAGE bytes or a second frame for one program counter is refused,
  and every payload remembers which party sent it.

A peer message that the codec or the framing refuses ends the session: the worker logs it
once (party, size and reason, never the bytes), reports a JobFailure naming the party to
its daemon, and exits; the daemon's next job starts a new epoch.

Importing MPyC parses ``sys.argv`` and creates a global runtime, so the worker builds its
own argv before the import. MPyC 0.11 is pinned: this module relies on its private
``_reshare``, on ``asyncoro.MessageExchanger`` (its ``bytes`` and ``buffers``) and on the
``pickle`` name in ``mpyc.runtime``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import pickle
import signal
import socket
import ssl
import struct
import sys
from typing import Any

from engine.mpc._joined import run_join_job
from engine.mpc._peer_links import PeerMarshal, Refusals, receive_frames, tag_buffered
from engine.mpc._release import PowerPool, run_cells_job
from engine.mpc.job import JobFailure, JobResult, JoinJob, MpcJob, SessionReady

log = logging.getLogger("engine.mpc.worker")

_HEADER = struct.Struct(">I")
MAX_MESSAGE = 1 << 30


def _federation_context(purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH, **_: Any) -> ssl.SSLContext:
    """Return a TLS context that trusts nothing until MPyC loads the federation CA."""
    if purpose == ssl.Purpose.SERVER_AUTH:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies hostname and chain
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the daemon that started it dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


async def _read_message(reader: asyncio.StreamReader) -> Any:
    header = await reader.readexactly(_HEADER.size)
    (length,) = _HEADER.unpack(header)
    if length > MAX_MESSAGE:
        raise ValueError(f"control message: got {length} bytes, want <= {MAX_MESSAGE}")
    return pickle.loads(await reader.readexactly(length))


def _write_message(writer: asyncio.StreamWriter, message: object) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_HEADER.pack(len(body)) + body)


def main() -> None:
    """Run the worker described by the JSON config in ``sys.argv[1]``."""
    _die_with_parent()
    config = json.loads(sys.argv[1])
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s worker[{config['index']}] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    argv = ["jointstat-mpc-worker", "-I", str(config["index"]), "-T", str(config["threshold"])]
    for address in config["parties"]:
        argv += ["-P", address]
    if config.get("tls", True):
        argv.append("--ssl")
    argv += ["--no-log", "--no-uvloop"]
    sys.argv = argv
    ssl.create_default_context = _federation_context

    refusals = Refusals(config.get("names", ()))
    from mpyc import asyncoro

    class BoundExchanger(asyncoro.MessageExchanger):  # type: ignore[misc]
        """MPyC's message exchanger, refusing peers whose certificate names another index,
        and reading their frames with :func:`engine.mpc._peer_links.receive_frames`."""

        def data_received(self, data: bytes) -> None:
            if self.peer_pid is not None:
                receive_frames(self, data, refusals)
                return
            # This party listens: the peer's index (and PRSS keys) come first.
            if len(self.bytes) + len(data) >= 2:
                claimed = int.from_bytes((bytes(self.bytes) + data)[:2], "little")
                if not _certificate_names_index(self.transport, claimed):
                    log.error("MPC link refused: peer certificate does not match index %d", claimed)
                    self.transport.close()
                    return
            super().data_received(data)  # MPyC reads the handshake (and frames after it)
            if self.peer_pid is not None:
                tag_buffered(self)

        def connection_lost(self, exc: Exception | None) -> None:
            if exc is not None or not _shutting_down:
                _link_lost(self.peer_pid)
            super().connection_lost(exc)

    asyncoro.MessageExchanger = BoundExchanger
    import mpyc.runtime
    from mpyc.runtime import mpc

    install_peer_codec(mpyc.runtime, refusals)
    _listen_on_own_address(mpc, config["parties"][config["index"]])
    os.chdir(config["workdir"])
    control = socket.socket(fileno=config["control_fd"])
    refusals.attach(control)
    mpc.run(_serve(mpc, control, config["epoch"], config.get("tls", True), refusals))


def install_peer_codec(runtime: Any, refusals: Refusals) -> None:
    """Make ``mpyc.runtime`` marshal peer messages with the share codec, never pickle.

    Raises SystemExit if the runtime has no ``pickle`` to replace (not MPyC 0.11).
    """
    if getattr(runtime, "pickle", None) is not pickle:
        raise SystemExit("mpyc.runtime: got no module-level pickle to replace, want MPyC 0.11")
    runtime.pickle = PeerMarshal(refusals)


_shutting_down = False
_POOL = PowerPool()
_control: asyncio.StreamWriter | None = None  # to the daemon, once the session is up
_job_id: str | None = None  # the job under way, if any


def _link_lost(peer: int | None) -> None:
    """End the session because the MPC link to party ``peer`` dropped.

    Mid-job this is a failure: logged as an error and reported to the daemon, which names
    the party to the analyst. Between jobs it is how a peer that stops (or restarts)
    looks: logged as a warning; the daemon starts a new session before the next job.
    """
    if _job_id is not None:
        log.error("MPC link to party %s lost during job %s; ending session", peer, _job_id)
        if _control is not None:
            reason = f"MPC link to party {peer} lost"
            failure = JobFailure(_job_id, reason, -1 if peer is None else int(peer))
            with contextlib.suppress(Exception):
                _write_message(_control, failure)
    else:
        log.warning("MPC link to party %s closed between jobs; ending session", peer)
    os._exit(3)


def _listen_on_own_address(mpc: Any, address: str) -> None:
    """Make MPyC listen on this party's MPC host only (it would bind every interface)."""
    host = address.rpartition(":")[0]
    loop = mpc._loop
    create_server = loop.create_server

    async def bound_create_server(factory: Any, host_: Any = None, *args: Any, **kw: Any) -> Any:
        return await create_server(factory, host_ or host, *args, **kw)

    loop.create_server = bound_create_server


def _certificate_names_index(transport: Any, index: int) -> bool:
    if transport.get_extra_info("sslcontext") is None:
        return True  # plain TCP (tests of the worker alone); TLS is the default
    cert = transport.get_extra_info("peercert") or {}
    names = {value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"}
    return f"MPyC party {index}" in names


async def _serve(
    mpc: Any, control: socket.socket, epoch: int, tls: bool, refusals: Refusals
) -> None:
    global _shutting_down, _control, _job_id
    reader, writer = await asyncio.open_connection(sock=control)
    _control = writer
    await mpc.start()
    log.info("MPC session epoch %d up (%d parties, tls=%s)", epoch, len(mpc.parties), tls)
    _write_message(writer, SessionReady(epoch))
    await writer.drain()
    types: dict[int, Any] = {}
    while True:
        try:
            message = await _read_message(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            log.info("daemon closed the control channel; stopping")
            _shutting_down = True
            os._exit(0)
        if not isinstance(message, tuple) or len(message) != 2:
            raise SystemExit("control message: got an unexpected object, want (job, inputs)")
        job, inputs = message
        _job_id = refusals.job_id = job.job_id
        try:
            result: JobResult | JobFailure = await _run_job(mpc, types, job, inputs)
        except Exception as exc:  # report, then end the session: it may be out of step
            log.exception("MPC job %s failed", job.job_id)
            _write_message(writer, JobFailure(job.job_id, f"{type(exc).__name__} in MPC job"))
            await writer.drain()
            os._exit(4)
        _job_id = refusals.job_id = None
        _write_message(writer, result)
        await writer.drain()


async def _run_job(
    mpc: Any, types: dict[int, Any], job: MpcJob | JoinJob, inputs: Any
) -> JobResult:
    """Run one job; ``inputs`` is (totals, flags) for an MpcJob, a JoinInput or None for a
    JoinJob."""
    secint = types.get(job.field_bits)
    if secint is None:
        secint = types[job.field_bits] = mpc.SecInt(job.field_bits)
    if isinstance(job, JoinJob):
        join_type = types.get(job.join_bits)
        if join_type is None:
            join_type = types[job.join_bits] = mpc.SecInt(job.join_bits)
        return await run_join_job(mpc, secint, job, inputs, _POOL, join_type)
    return await run_cells_job(mpc, secint, job, inputs, _POOL)


if __name__ == "__main__":
    main()
