"""Start and stop a local federation: one party daemon per process, on loopback.

Used by ``jointstat demo``, the integration tests and the benchmarks. Each daemon is a real
``jointstat party serve`` process with its own log file; readiness is checked with the
standard gRPC health service over mutual TLS.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine.config import Federation, load_federation
from engine.errors import PeerError
from engine.pki import read_pem


def free_port_block(count: int, attempts: int = 200) -> int:
    """Return a base port such that base+i, base+100+i, base+200+i and base+1100+i
    (i < count: the Analyst, MPC, Federation and large-lane MPC ports of
    engine.federation_init) are free on 127.0.0.1."""
    import random

    for _ in range(attempts):
        base = random.randint(20_000, 55_000)
        ports = [base + offset + i for offset in (0, 100, 200, 1100) for i in range(count)]
        if all(_free(p) for p in ports):
            return base
    raise PeerError("ports: got none free, want a free block on 127.0.0.1")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class LocalFederation:
    """The daemons of a federation directory, as child processes."""

    def __init__(
        self,
        directory: Path,
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
        *,
        allow_unavailable: bool = False,
    ) -> None:
        """Prepare to run the parties of ``directory`` (nothing starts yet).

        ``allow_unavailable`` starts each daemon with ``--allow-unavailable`` (a dataset
        whose file cannot be loaded is served as unavailable instead of stopping it).
        """
        self.directory = directory
        self.federation: Federation = load_federation(directory / "federation.toml")
        self.log_dir = log_dir or directory / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._env = env
        self._serve_flags = ["--allow-unavailable"] if allow_unavailable else []

    def __enter__(self) -> LocalFederation:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> None:
        """Start every party and wait until all are healthy."""
        for party in self.federation.parties:
            self.start_party(party.name, wait=False)
        for party in self.federation.parties:
            self.wait_healthy(party.name, timeout)

    def start_party(
        self,
        name: str,
        *,
        wait: bool = True,
        timeout: float = 60.0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """Start party ``name`` (not already running here); wait until healthy if asked.

        ``extra_env`` adds variables to this party's environment (tests: test pauses).
        """
        running = self.processes.get(name)
        if running is not None and running.poll() is None:
            raise PeerError(f"party {name}: already running (pid {running.pid})")
        config = self.directory / name / "party.toml"
        log = (self.log_dir / f"{name}.log").open("ab")
        env = dict(os.environ if self._env is None else self._env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(extra_env or {})
        self.processes[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "party",
                "serve",
                "--config",
                str(config),
                *self._serve_flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        log.close()
        if wait:
            self.wait_healthy(name, timeout)

    def wait_healthy(self, name: str, timeout: float) -> None:
        """Block until party ``name`` reports SERVING; raise PeerError on exit or timeout."""
        party = self.federation.party(name)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read_pem(self.federation.ca_certificate, "CA"),
            private_key=read_pem(self.directory / name / "tls.key", "key"),
            certificate_chain=read_pem(self.directory / name / "tls.crt", "certificate"),
        )
        deadline = time.monotonic() + timeout
        with grpc.secure_channel(
            party.address, credentials, options=[("grpc.ssl_target_name_override", name)]
        ) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                process = self.processes.get(name)
                if process is not None and process.poll() is not None:
                    raise PeerError(
                        f"party {name}: exited with code {process.returncode} while starting; "
                        f"see {self.log_dir / (name + '.log')}"
                    )
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise PeerError(f"party {name}: not healthy within {timeout:.0f} s")

    def kill_party(self, name: str) -> None:
        """Kill party ``name`` abruptly (SIGKILL), as a crash would."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def suspend_party(self, name: str) -> None:
        """Freeze party ``name`` (SIGSTOP), as a hung machine would look."""
        self.processes[name].send_signal(signal.SIGSTOP)

    def resume_party(self, name: str) -> None:
        """Let a frozen party ``name`` go on (SIGCONT)."""
        self.processes[name].send_signal(signal.SIGCONT)

    def stop_party(self, name: str, timeout: float = 15.0) -> int:
        """Stop party ``name`` gracefully (SIGTERM) and return its exit code."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return -9

    def stop(self) -> None:
        """Stop every party still running."""
        for name in list(self.processes):
            if self.processes[name].poll() is None:
                self.processes[name].send_signal(signal.SIGTERM)
        for name in list(self.processes):
            try:
                self.processes[name].wait(15)
            except subprocess.TimeoutExpired:
                self.processes[name].kill()
                self.processes[name].wait()
            del self.processes[name]
