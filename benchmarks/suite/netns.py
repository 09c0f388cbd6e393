"""Network namespaces joined by veth links: one per party, one for the analysts.

Topology: a bridge ``jsb<pid>br`` in the root namespace (10.77.<s>.254/24, ``s`` derived
from the pid of the run) and, for each member ``k`` (parties, then the analysts), a
namespace ``jsbench-<pid>-<k>`` whose ``eth0`` (a veth whose other end ``jsb<pid><k>o`` is on
the bridge) has 10.77.<s>.<k+1>/24. Names carry the run's pid so that concurrent runs do
not collide. A round-trip delay is emulated
with ``tc qdisc add dev <bridge side> root netem delay <rtt/2>`` on every member's link
(so member-to-member traffic crosses two delayed links, one each way: RTT = rtt); on a
kernel without netem, :mod:`benchmarks.suite.relay` delays the traffic in user space.

Everything is removed by :meth:`Topology.close` (also used on failure and Ctrl-C); a
stale topology left by a killed run is removed before a new one is made. Needs root and
iproute2; :func:`unavailable` says why not when they are missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "jsbench-"
RUN = os.getpid()
PREFIX_RUN = f"{PREFIX}{RUN}-"
BRIDGE = f"jsb{RUN}br"
SUBNET = f"10.77.{RUN % 250 + 1}"
GATEWAY = f"{SUBNET}.254"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def unavailable() -> str | None:
    """Return why namespaces cannot be made here, or None if they can."""
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"{PREFIX_RUN}probe"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _dead(pid_text: str) -> bool:
    return pid_text.isdigit() and (int(pid_text) == RUN or not Path(f"/proc/{pid_text}").exists())


def remove_stale() -> None:
    """Delete namespaces, links and bridges of this run and of runs that no longer exist."""
    listed = _ip("netns", "list", check=False).stdout.split()
    for name in listed:
        if name.startswith(PREFIX) and _dead(name[len(PREFIX) :].split("-")[0]):
            _ip("netns", "del", name, check=False)
    links = _ip("-o", "link", "show", check=False).stdout.splitlines()
    for line in links:
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        match = re.fullmatch(r"jsb(\d+?)(\d)o|jsb(\d+)br", name)
        if match and _dead(match.group(1) or match.group(3)):
            _ip("link", "del", name, check=False)


@dataclass
class Topology:
    """Namespaces for ``members`` (party names and analyst namespaces) with a round-trip delay."""

    members: list[str]
    rtt_ms: float
    mechanism: str = "none"  # "netem", "relay" or "none" (no delay asked)
    _relay: subprocess.Popen[str] | None = field(default=None, repr=False)
    _relay_dir: Path | None = field(default=None, repr=False)

    def namespace(self, member: str) -> str:
        """Return the namespace name of ``member``."""
        return f"{PREFIX_RUN}{self.members.index(member)}"

    def address(self, member: str) -> str:
        """Return the IPv4 address of ``member`` in its namespace."""
        return f"{SUBNET}.{self.members.index(member) + 1}"

    def create(self) -> None:
        """Make the bridge, the namespaces and the links; raise CalledProcessError on failure."""
        remove_stale()
        try:
            _ip("link", "add", BRIDGE, "type", "bridge")
            _ip("addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
            _ip("link", "set", BRIDGE, "up")
            for k, member in enumerate(self.members):
                ns, outer = self.namespace(member), f"jsb{RUN}{k}o"
                _ip("netns", "add", ns)
                _ip("link", "add", outer, "type", "veth", "peer", "name", f"jsb{RUN}{k}i")
                _ip("link", "set", f"jsb{RUN}{k}i", "netns", ns)
                _ip("-n", ns, "link", "set", f"jsb{RUN}{k}i", "name", "eth0")
                _ip("-n", ns, "addr", "add", f"{self.address(member)}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                # The relay puts other members' addresses on lo: answer ARP for eth0's only.
                for knob in ("arp_ignore=1", "arp_announce=2"):
                    subprocess.run(
                        ["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv4.conf.all.{knob}"],
                        check=True,
                    )
                _ip("link", "set", outer, "master", BRIDGE)
                _ip("link", "set", outer, "up")
            if self.rtt_ms > 0:
                self.mechanism = "netem" if self._netem() else "relay"
        except BaseException:
            self.close()
            raise

    def _netem(self) -> bool:
        """Put rtt/2 of delay on the bridge side of every link; return False without netem."""
        half = f"{self.rtt_ms / 2:g}ms"
        for k in range(len(self.members)):
            done = subprocess.run(
                ["tc", "qdisc", "add", "dev", f"jsb{RUN}{k}o", "root", "netem", "delay", half],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                for j in range(k):
                    subprocess.run(
                        ["tc", "qdisc", "del", "dev", f"jsb{RUN}{j}o", "root"], check=False
                    )
                return False
        return True

    def start_relay(self, ports: dict[str, list[int]]) -> None:
        """Relay (with the delay) every member's connections to the ports of every other.

        ``ports`` maps each party to the TCP ports it listens on. No-op unless the
        mechanism is "relay". Raises RuntimeError if the relay does not come up.
        """
        if self.mechanism != "relay":
            return
        listeners = []
        for member in self.members:
            ns = self.namespace(member)
            for party, party_ports in ports.items():
                if party == member:
                    continue
                host = self.address(party)
                _ip("-n", ns, "addr", "add", f"{host}/32", "dev", "lo", check=False)
                listeners += [[ns, host, port] for port in party_ports]
        self._relay_dir = Path(tempfile.mkdtemp(prefix="jsbench-relay-"))
        spec = self._relay_dir / "relay.json"
        spec.write_text(json.dumps({"delay_ms": self.rtt_ms, "listeners": listeners}))
        root = str(Path(__file__).resolve().parents[2])
        self._relay = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.suite.relay", str(spec)],
            stdout=subprocess.PIPE,
            stderr=(self._relay_dir / "relay.log").open("w"),
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": root},
        )
        assert self._relay.stdout is not None
        line = self._relay.stdout.readline()
        if line.strip() != "ready":
            log = (self._relay_dir / "relay.log").read_text()
            raise RuntimeError(f"delay relay: got {line!r}, want 'ready'; log: {log[-500:]}")

    def exec_prefix(self, member: str) -> list[str]:
        """Return the command prefix that runs a program in ``member``'s namespace."""
        return ["ip", "netns", "exec", self.namespace(member)]

    def close(self) -> None:
        """Stop the relay and remove every namespace, link and the bridge (idempotent)."""
        if self._relay is not None:
            self._relay.terminate()
            try:
                self._relay.wait(10)
            except subprocess.TimeoutExpired:
                self._relay.kill()
                self._relay.wait()
            self._relay = None
        if self._relay_dir is not None:
            shutil.rmtree(self._relay_dir, ignore_errors=True)
            self._relay_dir = None
        for k in range(len(self.members)):
            _ip("netns", "del", f"{PREFIX_RUN}{k}", check=False)
            _ip("link", "del", f"jsb{RUN}{k}o", check=False)
        _ip("link", "del", BRIDGE, check=False)
        time.sleep(0.05)
