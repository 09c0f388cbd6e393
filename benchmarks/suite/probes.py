"""Per-party resource probes: bytes sent on TCP and peak memory, of the daemon and its children.

- Bytes: the kernel's ``tcp_info.bytes_sent`` of every TCP socket owned by a party's
  processes (the daemon and its MPC worker), read with ``ss -tinpH`` in the party's network
  namespace, before and after a workload. This is TCP payload (TLS records included,
  IP/TCP headers not), including retransmissions, of gRPC and MPyC links alike; a socket
  opened and closed entirely inside the window is missed (the links are long-lived).
- Memory: ``VmHWM`` (peak resident set) from ``/proc/<pid>/status`` of each process, reset
  before the workload by writing 5 to ``/proc/<pid>/clear_refs``; reported as the sum of
  the daemon's and its children's peaks (an upper bound of their joint peak).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_PID = re.compile(r"pid=(\d+)")
_SENT = re.compile(r"bytes_sent:(\d+)")


def family(pid: int) -> list[int]:
    """Return ``pid`` and all its descendants that are still alive."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                continue
    return found


def socket_bytes(prefix: list[str]) -> dict[tuple[str, int], int]:
    """Return bytes sent per (socket, pid) of TCP sockets, from ``ss`` run with ``prefix``."""
    done = subprocess.run(
        [*prefix, "ss", "-tinpH"], capture_output=True, text=True, check=False, timeout=30
    )
    table: dict[tuple[str, int], int] = {}
    current: tuple[str, list[int]] | None = None
    for line in done.stdout.splitlines():
        if not line.startswith((" ", "\t")):
            fields = line.split()
            key = " ".join(fields[3:5]) if len(fields) >= 5 else line
            current = (key, [int(p) for p in _PID.findall(line)])
            continue
        if current is None:
            continue
        sent = _SENT.search(line)
        if current[1]:
            table[(current[0], current[1][0])] = int(sent.group(1)) if sent else 0
    return table


@dataclass
class PartyProbe:
    """Bytes and peak memory of one party's processes over a window."""

    name: str
    pid: int
    prefix: list[str]  # runs a command in the party's network namespace ([] on loopback)

    def pids(self) -> set[int]:
        return set(family(self.pid))


class Window:
    """Measure every party's bytes sent and peak memory between ``start`` and ``stop``."""

    def __init__(self, parties: list[PartyProbe]) -> None:
        self.parties = parties
        self._before: dict[str, dict[tuple[str, int], int]] = {}

    def _bytes(self) -> dict[str, dict[tuple[str, int], int]]:
        per_prefix: dict[tuple[str, ...], dict[tuple[str, int], int]] = {}
        result = {}
        for party in self.parties:
            key = tuple(party.prefix)
            if key not in per_prefix:
                per_prefix[key] = socket_bytes(party.prefix)
            pids = party.pids()
            result[party.name] = {k: v for k, v in per_prefix[key].items() if k[1] in pids}
        return result

    def start(self) -> None:
        """Reset peak memory and take the first byte counts."""
        for party in self.parties:
            for pid in party.pids():
                with contextlib.suppress(OSError):  # the process may have just exited
                    Path(f"/proc/{pid}/clear_refs").write_text("5")
        self._before = self._bytes()

    def stop(self) -> dict[str, dict[str, float]]:
        """Return ``{party: {"bytes_sent", "peak_mb"}}`` for the window."""
        after = self._bytes()
        figures = {}
        for party in self.parties:
            before = self._before.get(party.name, {})
            sent = sum(v - before.get(k, 0) for k, v in after[party.name].items())
            figures[party.name] = {"bytes_sent": float(max(sent, 0)), "peak_mb": _peak(party)}
        return figures


def _peak(party: PartyProbe) -> float:
    total = 0.0
    for pid in party.pids():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        if match:
            total += int(match.group(1)) / 1024
    return round(total, 1)


def probes_for(
    processes: dict[str, subprocess.Popen[bytes]], prefix: Callable[[str], list[str]]
) -> list[PartyProbe]:
    """Return a probe per running daemon; ``prefix(name)`` runs a command in its namespace."""
    return [PartyProbe(name, p.pid, prefix(name)) for name, p in processes.items()]
