"""The daemon's handle on its MPC worker: start a session, run jobs, tear down on failure.

One long-lived session per federation epoch. A job that fails, times out, or finds the
worker gone ends the session (it may be out of step with the peers); the sequencer then
asks every party to start a new epoch. MPyC never runs in the daemon's process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

from engine.config import PartyConfig
from engine.errors import PeerError
from engine.mpc.job import JobFailure, JobResult, JoinJob, MpcJob, SessionReady

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")


def prepare_tls_directory(config: PartyConfig, workdir: Path) -> None:
    """Lay out the files MPyC's ``--ssl`` reads in ``workdir/.config``."""
    target = workdir / ".config"
    target.mkdir(parents=True, exist_ok=True)
    index = config.me.index
    shutil.copyfile(config.tls_certificate, target / f"party_{index}.crt")
    key_path = target / f"party_{index}.key"
    key_path.touch(mode=0o600, exist_ok=True)
    key_path.chmod(0o600)
    shutil.copyfile(config.tls_key, key_path)
    shutil.copyfile(config.federation.ca_certificate, target / "mpyc_ca.crt")


class MpcSession:
    """A running (or startable) MPC worker for one party."""

    # How the worker is started (``python <worker_argv> CONFIG``); tests start other workers.
    worker_argv: tuple[str, ...] = ("-m", "engine.mpc._worker")

    def __init__(
        self, config: PartyConfig, workdir: Path, *, tls: bool = True, lane: str = "small"
    ) -> None:
        self._config = config
        self.lane = lane  # which MPC link of every party this session uses
        self._workdir = workdir
        self._tls = tls
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None
        self.epoch = -1
        self.ready = False
        workdir.mkdir(parents=True, exist_ok=True)
        if tls:
            prepare_tls_directory(config, workdir)

    async def start(self, epoch: int, timeout: float) -> float:
        """Start a worker for ``epoch`` and wait until all MPC links are up.

        Returns the seconds it took. Raises PeerError if the links are not up within
        ``timeout`` (a peer is down or started another epoch).
        """
        await self.stop()
        began = time.perf_counter()
        federation = self._config.federation
        parent, child = socket.socketpair()
        config = {
            "index": self._config.me.index,
            "threshold": federation.threshold,
            "parties": ["{}:{}".format(*p.mpc_link(self.lane)) for p in federation.parties],
            "names": [p.name for p in federation.parties],
            "control_fd": child.fileno(),
            "workdir": str(self._workdir),
            "epoch": epoch,
            "tls": self._tls,
        }
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            *self.worker_argv,
            json.dumps(config),
            pass_fds=(child.fileno(),),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
        )
        child.close()
        self._reader, self._writer = await asyncio.open_connection(sock=parent)
        self.epoch = epoch
        try:
            message = await asyncio.wait_for(self._read(), timeout)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            await self.stop()
            raise PeerError(
                f"MPC session epoch {epoch}: links not up within {timeout:.0f} s, "
                "want every party's worker connected (is a party down?)"
            ) from None
        if not isinstance(message, SessionReady) or message.epoch != epoch:
            await self.stop()
            raise PeerError(f"MPC session epoch {epoch}: got an unexpected first message")
        self.ready = True
        self._watch = asyncio.create_task(self._watch_exit(self._process, epoch))
        elapsed = time.perf_counter() - began
        log.info("MPC session epoch %d ready in %.2f s", epoch, elapsed)
        return elapsed

    async def run(self, job: MpcJob | JoinJob, inputs: Any, timeout: float) -> JobResult:
        """Run ``job`` with this party's ``inputs``; return this party's shares.

        Raises PeerError if the session is not ready, the worker fails, or the job does
        not finish within ``timeout`` seconds; the session is then stopped.
        """
        async with self._lock:
            if not self.ready or self._writer is None:
                raise PeerError(f"MPC session: got none ready, want a live session ({job.job_id})")
            import pickle

            body = pickle.dumps((job, inputs), protocol=pickle.HIGHEST_PROTOCOL)
            try:
                self._writer.write(_HEADER.pack(len(body)) + body)
                await self._writer.drain()
                message = await asyncio.wait_for(self._read(), timeout)
            except TimeoutError:
                await self.stop()
                raise PeerError(
                    f"MPC job {job.job_id}: got no result within {timeout:.0f} s, "
                    "want every party to take part (a party may have died)"
                ) from None
            except (asyncio.IncompleteReadError, ConnectionError):
                await self.stop()
                raise PeerError(
                    f"MPC job {job.job_id}: the MPC session ended mid-job "
                    "(a party disconnected); want all parties alive"
                ) from None
            if isinstance(message, JobFailure):
                await self.stop()
                raise PeerError(f"MPC job {job.job_id}: {self._failure_reason(message)}")
            if not isinstance(message, JobResult) or message.job_id != job.job_id:
                await self.stop()
                raise PeerError(f"MPC job {job.job_id}: got an unexpected reply from the worker")
            return message

    async def _watch_exit(self, process: asyncio.subprocess.Process, epoch: int) -> None:
        """Mark the session not ready as soon as its worker exits (a peer's link dropped),
        so that the parties report it at the next Prepare and a new session is started
        before the next job instead of failing it."""
        code = await process.wait()
        if self._process is process and self.ready:
            self.ready = False
            log.info(
                "MPC session epoch %d (%s lane) ended (worker exit %d)", epoch, self.lane, code
            )

    def _failure_reason(self, failure: JobFailure) -> str:
        """Return the worker's reason, naming the party whose MPC link was lost."""
        parties = self._config.federation.parties
        if 0 <= failure.lost_party < len(parties):
            name = parties[failure.lost_party].name
            return (
                f"the MPC link to party {name} was lost mid-job (is {name} down?); "
                "want all parties alive"
            )
        return failure.reason

    async def _read(self) -> object:
        assert self._reader is not None
        import pickle

        header = await self._reader.readexactly(_HEADER.size)
        (length,) = _HEADER.unpack(header)
        return pickle.loads(await self._reader.readexactly(length))

    async def stop(self) -> None:
        """Stop the worker (if any) and mark the session not ready."""
        self.ready = False
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._reader = None
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            try:
                process.terminate()
                await asyncio.wait_for(process.wait(), 3)
            except TimeoutError:
                process.kill()
                await process.wait()
            except ProcessLookupError:
                pass
