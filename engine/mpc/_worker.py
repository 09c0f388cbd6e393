"""The MPC worker process: the only module of jointstat that imports MPyC.

A party daemon starts one worker per MPC session (``python -m engine.mpc._worker CONFIG``)
and talks to it over a private socket pair (file descriptor in the config): length-prefixed
pickles of :mod:`engine.mpc.job` objects, between a daemon and its own child only —
nothing a peer sends is ever unpickled. The worker links with the other parties' workers
through MPyC's TLS, hardened here in two ways MPyC does not do itself:

- only the federation CA is trusted (not the system store);
- a connecting peer must present the certificate of the party index it claims
  (its certificate names ``MPyC party <index>``), so one party cannot pose as another.

Importing MPyC parses ``sys.argv`` and creates a global runtime, so the worker builds its
own argv before the import. MPyC 0.11 is pinned: this module relies on its private
``_reshare`` and on ``asyncoro.MessageExchanger``.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import pickle
import secrets
import signal
import socket
import ssl
import struct
import sys
from typing import Any

from engine.cells import CellKind
from engine.mpc.job import JobFailure, JobResult, MpcJob, SessionReady

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
    argv.append("--no-log")
    sys.argv = argv
    ssl.create_default_context = _federation_context

    from mpyc import asyncoro

    class BoundExchanger(asyncoro.MessageExchanger):  # type: ignore[misc]
        """MPyC's message exchanger, refusing peers whose certificate names another index."""

        def data_received(self, data: bytes) -> None:
            if self.peer_pid is None and len(self.bytes) + len(data) >= 2:
                claimed = int.from_bytes((bytes(self.bytes) + data)[:2], "little")
                if not _certificate_names_index(self.transport, claimed):
                    log.error("MPC link refused: peer certificate does not match index %d", claimed)
                    self.transport.close()
                    return
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            if exc is not None or not _shutting_down:
                log.error("MPC link to party %s lost; ending session", self.peer_pid)
                os._exit(3)
            super().connection_lost(exc)

    asyncoro.MessageExchanger = BoundExchanger
    from mpyc.runtime import mpc

    os.chdir(config["workdir"])
    control = socket.socket(fileno=config["control_fd"])
    mpc.run(_serve(mpc, control, config["epoch"], config.get("tls", True)))


_shutting_down = False


def _certificate_names_index(transport: Any, index: int) -> bool:
    if transport.get_extra_info("sslcontext") is None:
        return True  # plain TCP (tests of the worker alone); TLS is the default
    cert = transport.get_extra_info("peercert") or {}
    names = {value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"}
    return f"MPyC party {index}" in names


async def _serve(mpc: Any, control: socket.socket, epoch: int, tls: bool) -> None:
    global _shutting_down
    reader, writer = await asyncio.open_connection(sock=control)
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
        try:
            result: JobResult | JobFailure = await _run_job(mpc, types, job, inputs)
        except Exception as exc:  # report, then end the session: it may be out of step
            log.exception("MPC job %s failed", job.job_id)
            _write_message(writer, JobFailure(job.job_id, f"{type(exc).__name__} in MPC job"))
            await writer.drain()
            os._exit(4)
        _write_message(writer, result)
        await writer.drain()


async def _run_job(mpc: Any, types: dict[int, Any], job: MpcJob, inputs: list[int]) -> JobResult:
    import numpy as np

    secint = types.get(job.field_bits)
    if secint is None:
        secint = types[job.field_bits] = mpc.SecInt(job.field_bits)
    field = secint.field
    modulus = field.order
    cells = job.cells
    m = len(cells)
    length = job.input_length
    if len(inputs) != length:
        raise ValueError(f"inputs: got {len(inputs)}, want {length}")
    masks = [secrets.randbelow(modulus - 1) + 1 for _ in range(2 * m)]
    own = np.array([v % modulus for v in inputs] + masks + [0], dtype=object)
    shared = mpc.input(secint.array(own), senders=list(range(len(mpc.parties))))
    total = shared[0]
    for other in shared[1:]:
        total = total + other
    zero = length + 2 * m  # index of the constant 0 appended to the vector
    r1 = total[length : length + m]
    r2 = total[length + m : length + 2 * m]
    n = total[np.array(cells.n_index, dtype=int)]
    s = total[np.array([i if i >= 0 else zero for i in cells.s_index], dtype=int)]
    q = total[np.array([i if i >= 0 else zero for i in cells.q_index], dtype=int)]

    # Suppression: P = prod_{j < min_size}(n - j) is zero exactly when n < min_size.
    width = max(cells.min_size)
    offsets = np.array(
        [[j if j < size else 0 for j in range(width)] for size in cells.min_size], dtype=object
    )
    active = np.array(
        [[1 if j < size else 0 for j in range(width)] for size in cells.min_size], dtype=object
    )
    n_column = n.reshape(m, 1)
    factors = (n_column - offsets) * active + (1 - active)  # inactive factors are 1 (public)
    p = mpc.np_prod(mpc.np_transpose(factors), axis=0)

    kinds = np.array([int(k) for k in cells.kinds], dtype=int)

    def onehot(*wanted: CellKind) -> Any:
        return np.isin(kinds, [int(w) for w in wanted]).astype(object)

    # One round of products for all formulas.
    pairs = mpc.np_stack([n, s, n, n])
    other = mpc.np_stack([q, s, n, n - 1])
    products = pairs * other
    nq, ss, nn, nn1 = products[0], products[1], products[2], products[3]
    variance_num = nq - ss
    num = (
        n * onehot(CellKind.COUNT)
        + s * onehot(CellKind.SUM, CellKind.AVG)
        + variance_num * onehot(CellKind.VAR_POP, CellKind.VAR_SAMP)
    )
    den = (
        onehot(CellKind.COUNT, CellKind.SUM)
        + n * onehot(CellKind.AVG)
        + nn * onehot(CellKind.VAR_POP)
        + nn1 * onehot(CellKind.VAR_SAMP)
    )
    z = r1 * p
    released = mpc.np_stack([z, z, r2]) * mpc.np_stack([num, den, p])
    released = mpc._reshare(released)
    shares = await mpc.gather(released)
    values = shares.value
    return JobResult(
        job_id=job.job_id,
        modulus=modulus,
        x=mpc.pid + 1,
        num=tuple(int(v) for v in values[0]),
        den=tuple(int(v) for v in values[1]),
        flag=tuple(int(v) for v in values[2]),
    )


if __name__ == "__main__":
    main()
