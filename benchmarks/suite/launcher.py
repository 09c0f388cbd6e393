"""Start a federation's daemons on loopback or each in its own network namespace.

:class:`NamespacedFederation` is engine.launch.LocalFederation with every daemon started
under ``ip netns exec`` in its party's namespace, after federation.toml has been rewritten
to the namespaces' addresses. Health checks run from the root namespace over the bridge.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from engine.client import Client
from engine.errors import EngineError, PeerError
from engine.launch import LocalFederation

from .data import Fixture, rewrite_addresses
from .netns import Topology


class NamespacedFederation(LocalFederation):
    """The daemons of a federation directory, each in its party's network namespace."""

    def __init__(self, directory: Path, topology: Topology, log_dir: Path | None = None) -> None:
        super().__init__(directory, log_dir)
        self.topology = topology

    def start_party(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        """Start party ``name`` in its namespace; wait until healthy if asked."""
        running = self.processes.get(name)
        if running is not None and running.poll() is None:
            raise PeerError(f"party {name}: already running (pid {running.pid})")
        config = self.directory / name / "party.toml"
        with (self.log_dir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [
                    *self.topology.exec_prefix(name),
                    sys.executable,
                    "-m",
                    "engine.cli",
                    "party",
                    "serve",
                    "--config",
                    str(config),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        if wait:
            self.wait_healthy(name, timeout)


def in_namespaces(fixture: Fixture, topology: Topology) -> NamespacedFederation:
    """Rewrite ``fixture``'s addresses to ``topology`` and return its (unstarted) daemons."""
    ports = rewrite_addresses(fixture, {p: topology.address(p) for p in fixture.parties})
    topology.start_relay(ports)
    return NamespacedFederation(fixture.root, topology)


def wait_catalog(fixture: Fixture, timeout: float = 120.0) -> None:
    """Block until every dataset of ``fixture`` is listed to analyst 0 (owners registered).

    Raises PeerError when some dataset is still missing after ``timeout`` seconds.
    """
    want = set(fixture.files)
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    with Client(fixture.identity()) as client:
        while time.monotonic() < deadline:
            try:
                seen = {f"{d['owner']}.{d['name']}" for d in client.datasets()}
            except EngineError:
                seen = set()
            if want <= seen:
                return
            time.sleep(0.3)
    raise PeerError(f"catalog: got {len(seen & want)} of {len(want)} datasets, want all")
