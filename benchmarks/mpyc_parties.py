"""What the benchmarks that run MPyC parties directly share: ports, the runtime, bytes sent.

Imported by ``bench_join_protocol``, ``bench_order_protocol`` and ``naive_mpyc`` (each
party is one process of the script, with ``benchmarks/`` on its path).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free TCP ports on 127.0.0.1."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def mpyc_runtime(index: int, ports: list[int], threshold: int | None = None) -> Any:
    """Return MPyC's runtime as party ``index`` of parties on loopback ``ports``.

    Must run before anything imports MPyC (it reads ``sys.argv`` then). MPyC would bind
    every interface; its server is kept on 127.0.0.1.
    """
    sys.argv = [sys.argv[0], "-I", str(index), "--no-log"]
    if threshold is not None:
        sys.argv += ["-T", str(threshold)]
    for port in ports:
        sys.argv += ["-P", f"127.0.0.1:{port}"]
    from mpyc.runtime import mpc

    loop = mpc._loop
    create_server = loop.create_server

    async def loopback_server(factory: Any, host: Any = None, *args: Any, **kw: Any) -> Any:
        return await create_server(factory, host or "127.0.0.1", *args, **kw)

    loop.create_server = loopback_server
    return mpc


def run_parties(script: str, spec: dict[str, Any], what: str) -> list[dict[str, Any]]:
    """Run three parties ``script --party i --spec FILE`` on ``spec`` (with fresh ports);
    return the JSON object each printed last. Exits naming ``what`` if a party fails."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "spec.json"
        path.write_text(json.dumps({**spec, "ports": free_ports(3)}))
        processes = [
            subprocess.Popen(
                [sys.executable, script, "--party", str(i), "--spec", str(path)],
                stdout=subprocess.PIPE,
            )
            for i in range(3)
        ]
        outputs = [p.communicate(timeout=3600)[0] for p in processes]
        if any(p.returncode for p in processes):
            raise SystemExit(f"a party failed at {what}")
    return [json.loads(out.decode().strip().splitlines()[-1]) for out in outputs]


def bytes_sent(mpc: Any) -> int:
    """Return the bytes this party has sent to the others so far."""
    return sum(p.protocol.nbytes_sent for p in mpc.parties if p.pid != mpc.pid)
