"""Delay TCP traffic between network namespaces in user space, where netem is missing.

Some kernels (this benchmark machine's among them) are built without ``sch_netem``, so
``tc qdisc ... netem delay`` fails. Then every party's peers are reached through this
relay: in each client namespace the relay listens on the peers' addresses (added to that
namespace's loopback as /32), and forwards each connection from the root namespace over
the bridge to the real party, holding every chunk for half the round-trip time in each
direction. Chunks keep their order; the TCP handshake itself is not delayed.

    python -m benchmarks.suite.relay SPEC.json     # runs until SIGTERM

SPEC: ``{"delay_ms": 20, "listeners": [[namespace, host, port], ...]}``; a listener in
namespace ``ns`` on ``host:port`` forwards to ``host:port`` as seen from the root
namespace. Prints ``ready`` on stdout once every listener is bound.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import socket
import sys
from collections import deque
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/var/run/netns")


def enter_namespace(path: Path) -> None:
    """Move the calling thread into the network namespace at ``path``.

    Raises OSError if the namespace does not exist or setns fails (not root).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns {path}: {os.strerror(errno)}")
    finally:
        os.close(fd)


class _Half(asyncio.Protocol):
    """One side of a relayed connection: what it receives is written to the other side late."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.transport: asyncio.Transport | None = None
        self.peer: _Half | None = None
        self.pending: deque[tuple[float, bytes]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.pending.append((loop.time() + self.delay, data))
        if self.timer is None:
            self.timer = loop.call_at(self.pending[0][0], self._flush)

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        self.timer = None
        now = loop.time()
        peer = self.peer.transport if self.peer else None
        while self.pending and self.pending[0][0] <= now:
            _, data = self.pending.popleft()
            if peer is not None and not peer.is_closing():
                peer.write(data)
        if self.pending:
            self.timer = loop.call_at(self.pending[0][0], self._flush)
        elif self.closing and peer is not None:
            peer.close()

    def eof_received(self) -> bool:
        self.closing = True
        if not self.pending and self.peer and self.peer.transport:
            self.peer.transport.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if not self.pending and self.peer and self.peer.transport:
            self.peer.transport.close()

    def pause_writing(self) -> None:
        if self.peer and self.peer.transport:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer and self.peer.transport:
            self.peer.transport.resume_reading()


def _accepting(host: str, port: int, delay: float) -> type[_Half]:
    class Accepted(_Half):
        def __init__(self) -> None:
            super().__init__(delay)
            self.connecting: asyncio.Future[None] | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            assert self.transport is not None
            self.transport.pause_reading()
            self.connecting = asyncio.ensure_future(self._connect())

        async def _connect(self) -> None:
            loop = asyncio.get_running_loop()
            try:
                _, upstream = await loop.create_connection(lambda: _Half(delay), host, port)
            except OSError:
                assert self.transport is not None
                self.transport.close()
                return
            upstream.peer, self.peer = self, upstream
            assert self.transport is not None
            self.transport.resume_reading()

    return Accepted


def bind_listeners(listeners: list[tuple[str, str, int]]) -> list[tuple[socket.socket, str, int]]:
    """Return a listening socket for each ``(namespace, host, port)``, made in that namespace."""
    bound = []
    home = Path(f"/proc/self/fd/{os.open('/proc/self/ns/net', os.O_RDONLY)}")
    try:
        for namespace, host, port in listeners:
            enter_namespace(NETNS_DIR / namespace)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(256)
            sock.setblocking(False)
            bound.append((sock, host, port))
    finally:
        enter_namespace(home)
        os.close(int(home.name))
    return bound


async def serve(spec: dict[str, object]) -> None:
    """Relay every listener in ``spec`` until SIGTERM or SIGINT."""
    delay = float(spec["delay_ms"]) / 2000  # type: ignore[arg-type]  # half the RTT each way
    raw = spec["listeners"]
    assert isinstance(raw, list)
    bound = bind_listeners([(str(n), str(h), int(p)) for n, h, p in raw])
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(_accepting(host, port, delay), sock=sock)
        for sock, host, port in bound
    ]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    """Run the relay described by the JSON file named on the command line."""
    asyncio.run(serve(json.loads(Path(sys.argv[1]).read_text())))


if __name__ == "__main__":
    main()
