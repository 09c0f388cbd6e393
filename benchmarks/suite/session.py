"""A running federation under one network condition, with its analyst process and probes.

with running(fixture, rtt_ms=None) as fed:       # loopback
    answer = fed.query(sql, repeat=3)
with running(fixture, rtt_ms=20.0) as fed:       # namespaces, 20 ms round trips
    ...
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.launch import LocalFederation

from .data import Fixture
from .launcher import in_namespaces, wait_catalog
from .netns import Topology
from .probes import Window, probes_for

REPO = Path(__file__).resolve().parents[2]
ANALYSTS = "analysts"  # the namespace member that runs the analyst processes


@dataclass
class Running:
    """Daemons that are up, and a connected analyst process."""

    fixture: Fixture
    launcher: LocalFederation
    network: str  # "loopback", or "netns 20 ms (relay)" ...
    analyst: subprocess.Popen[str]
    topology: Topology | None

    def command(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send one command to the analyst process and return its answer."""
        assert self.analyst.stdin is not None and self.analyst.stdout is not None
        self.analyst.stdin.write(json.dumps(body) + "\n")
        self.analyst.stdin.flush()
        line = self.analyst.stdout.readline()
        if not line:
            raise RuntimeError(f"analyst process exited with code {self.analyst.poll()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def query(self, sql: str, repeat: int = 1, timeout: float = 1800.0) -> dict[str, Any]:
        """Run ``sql`` ``repeat`` times in the analyst process (see analyst.run_sql)."""
        return self.command({"sql": sql, "repeat": repeat, "timeout": timeout})

    def window(self) -> Window:
        """Return a probe window over every party's processes."""

        def prefix(name: str) -> list[str]:
            return self.topology.exec_prefix(name) if self.topology else []

        return Window(probes_for(self.launcher.processes, prefix))


def _analyst_process(fixture: Fixture, prefix: list[str]) -> subprocess.Popen[str]:
    path = os.pathsep.join([str(REPO), str(REPO / "benchmarks")])
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "benchmarks.suite.analyst", str(fixture.identity())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path},
    )


@contextmanager
def running(fixture: Fixture, rtt_ms: float | None = None) -> Iterator[Running]:
    """Start ``fixture``'s daemons (loopback, or namespaces with ``rtt_ms``) and an analyst."""
    topology = None
    launcher: LocalFederation | None = None
    analyst = None
    try:
        if rtt_ms is None:
            launcher, network = LocalFederation(fixture.root), "loopback"
        else:
            # A topology is made before the daemons exist, so that they start inside it.
            topology = Topology([*fixture.parties, ANALYSTS], rtt_ms)
            topology.create()
            launcher = in_namespaces(fixture, topology)
            network = f"netns {rtt_ms:g} ms RTT ({topology.mechanism})"
        launcher.start(timeout=120)
        wait_catalog(fixture)
        prefix = topology.exec_prefix(ANALYSTS) if topology else []
        analyst = _analyst_process(fixture, prefix)
        yield Running(fixture, launcher, network, analyst, topology)
    finally:
        if analyst is not None:
            if analyst.stdin:
                analyst.stdin.close()
            try:
                analyst.wait(30)
            except subprocess.TimeoutExpired:
                analyst.kill()
                analyst.wait()
        if launcher is not None:
            launcher.stop()
        if topology is not None:
            topology.close()
