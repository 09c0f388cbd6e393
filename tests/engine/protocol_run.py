"""Run protocol scenarios in real party processes (``tests.engine.join_party``) on loopback.

Shared by the join and order-statistics protocol tests: each party is its own Python process
linked to the others over TCP; each writes its results and the bytes it received.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    """What the processes of one run wrote: per-party results and received bytes."""

    results: list[dict[str, Any]]
    received: list[bytes]


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free TCP ports on 127.0.0.1."""
    sockets = []
    for _ in range(count):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        sockets.append(probe)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_parties(
    directory: Path, parties: int, scenarios: list[dict[str, Any]], timeout: float
) -> Run:
    """Run ``scenarios`` in ``parties`` processes; fail the test if any process fails."""
    spec = directory / "spec.json"
    spec.write_text(json.dumps({"ports": free_ports(parties), "scenarios": scenarios}))
    start = time.monotonic()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.engine.join_party", str(spec), str(i)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(parties)
    ]
    outputs = []
    try:
        for process in processes:
            remaining = max(1.0, timeout - (time.monotonic() - start))
            outputs.append(process.communicate(timeout=remaining)[0].decode(errors="replace"))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for i, process in enumerate(processes):
        assert process.returncode == 0, f"party {i} failed:\n{outputs[i][-3000:]}"
    return Run(
        results=[json.loads((directory / f"result_{i}.json").read_text()) for i in range(parties)],
        received=[(directory / f"received_{i}.bin").read_bytes() for i in range(parties)],
    )
