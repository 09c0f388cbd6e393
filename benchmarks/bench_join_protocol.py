"""Benchmark of the helper-aligned private join (engine.mpc._join, hidden membership).

Three processes linked by MPyC on 127.0.0.1 (plain TCP; production adds TLS): the hub A
and the other owner B hold ``rows`` rows each, half of them on common keys; C helps. For
each size it reports the time of the join; of COUNT = Σ f_A·f_B and SUM = Σ f_A·(f_B·v) on
the joined rows (dot products and opening: the other side's columns are 0 off matches);
the bytes each party sent during the join; each party's peak memory; and the plaintext
baseline (a Python dict join and the same sums), beside JOIN.md's prototype figures.

    python benchmarks/bench_join_protocol.py [--rows 10000 100000] [--million]
        [--hub-columns 2] [--other-columns 2] [--bits 32] [--json results.json]

Times are the slowest party's, each phase between two round trips (all parties in step).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

DUMMIES = 100
EPSILON = Fraction(1, 2)
PROTOTYPE = {100_000: "1.8-2.0 s, 20 MB", 1_000_000: "24.6 s, 198 MB"}  # JOIN.md


def _keys(first: int, count: int) -> list[bytes]:
    return [f"citizen-{i:09d}".encode() for i in range(first, first + count)]


def _side(role: str, rows: int, width: int) -> tuple[list[bytes], list[Any]]:
    """Return an owner's keys and columns: a 0/1 filter, then values already filtered.

    The owner multiplies its own filter into its values (a local step the planner pushes
    down), so that COUNT and SUM are dot products of a hub column and an other column.
    """
    import numpy as np

    first = 0 if role == "hub" else rows // 2  # half of the keys are common
    rng = np.random.default_rng(1 if role == "hub" else 2)
    keep = (rng.random(rows) < 0.9).astype(np.int64)
    columns = [keep] + [keep * rng.integers(-1000, 100_000, rows) for _ in range(width - 1)]
    return _keys(first, rows), columns  # int64 arrays


def plaintext(rows: int, hub_width: int, other_width: int) -> tuple[float, list[int]]:
    """Return the seconds of the same join and sums on pooled plaintext, and the sums."""
    hub_keys, hub_columns = _side("hub", rows, hub_width)
    other_keys, other_columns = _side("other", rows, other_width)
    start = time.perf_counter()
    f_a, f_b, v = (column.tolist() for column in [*hub_columns[:1], *other_columns[:2]])
    row_of = {key: j for j, key in enumerate(other_keys)}
    count = total = 0
    for i, key in enumerate(hub_keys):
        j = row_of.get(key)
        if j is not None and f_a[i] and f_b[j]:
            count += 1
            total += v[j]
    return time.perf_counter() - start, [count, total]


def party(spec: dict[str, Any], index: int) -> dict[str, Any]:
    """Run one party of one size; return its timings, bytes sent and peak memory."""
    sys.argv = [sys.argv[0], "-I", str(index), "-T", "1", "--no-log"]
    for port in spec["ports"]:
        sys.argv += ["-P", f"127.0.0.1:{port}"]
    from mpyc.runtime import mpc

    from engine.mpc._join import JoinNoise, JoinSide, aligned_join

    loop = mpc._loop
    create_server = loop.create_server

    async def loopback_server(factory: Any, host: Any = None, *args: Any, **kw: Any) -> Any:
        return await create_server(factory, host or "127.0.0.1", *args, **kw)

    loop.create_server = loopback_server  # MPyC would bind every interface
    rows, hub_width, other_width = spec["rows"], spec["hub_width"], spec["other_width"]
    role = {0: "hub", 1: "other"}.get(index)
    side = JoinSide(*_side(role, rows, hub_width if index == 0 else other_width)) if role else None

    async def run() -> dict[str, Any]:
        await mpc.start()
        secint = mpc.SecInt(spec["bits"])
        await mpc.output(secint(0))  # a round trip: every party starts from here
        sent = _bytes_sent(mpc)
        start = time.perf_counter()
        joined = await aligned_join(
            mpc,
            secint,
            hub=0,
            other=1,
            helper=2,
            my_side=side,
            hub_width=hub_width,
            other_width=other_width,
            padded_length=rows + 2 * DUMMIES,
            noise=JoinNoise(DUMMIES, EPSILON),
        )
        join_bytes = _bytes_sent(mpc) - sent
        await mpc.output(secint(0))  # a round trip: every party has finished the join
        joined_at = time.perf_counter()
        f_a, (f_b, v) = joined.hub_columns[0], joined.other_columns[:2]
        # The other side's columns are 0 off real matches: two dot products, no w.
        count, total = await mpc.output([f_a @ f_b, f_a @ v])
        done = time.perf_counter()
        await mpc.shutdown()
        return {
            "join_s": joined_at - start,
            "aggregate_s": done - joined_at,
            "join_bytes": join_bytes,
            "result": [count, total],
            "noisy": joined.noisy_match_count,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }

    return mpc.run(run())  # type: ignore[no-any-return]


def _bytes_sent(mpc: Any) -> int:
    return sum(p.protocol.nbytes_sent for p in mpc.parties if p.pid != mpc.pid)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def measure(rows: int, hub_width: int, other_width: int, bits: int) -> dict[str, Any]:
    """Run the three parties for ``rows`` rows per owner; return the merged figures."""
    with tempfile.TemporaryDirectory() as directory:
        spec: dict[str, Any] = {"rows": rows, "hub_width": hub_width, "other_width": other_width}
        spec.update(bits=bits, ports=_free_ports(3))
        path = Path(directory) / "spec.json"
        path.write_text(json.dumps(spec))
        processes = [
            subprocess.Popen(
                [sys.executable, __file__, "--party", str(i), "--spec", str(path)],
                stdout=subprocess.PIPE,
            )
            for i in range(3)
        ]
        outputs = [p.communicate(timeout=3600)[0] for p in processes]
        if any(p.returncode for p in processes):
            raise SystemExit(f"a party failed at {rows} rows")
    parties = [json.loads(out.decode().strip().splitlines()[-1]) for out in outputs]
    baseline, want = plaintext(rows, hub_width, other_width)
    if any(p["result"] != want for p in parties):
        raise SystemExit(f"wrong result at {rows} rows: got {parties[0]['result']}, want {want}")
    return {
        "rows": rows,
        "join_s": max(p["join_s"] for p in parties),
        "aggregate_s": max(p["aggregate_s"] for p in parties),
        "join_mb_sent": [round(p["join_bytes"] / 1e6, 2) for p in parties],
        "peak_mb": [round(p["peak_mb"]) for p in parties],
        "plaintext_s": baseline,
        "matches": want[0],
        "helper_count": parties[2]["noisy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--million", action="store_true", help="also run 10^6 rows")
    parser.add_argument("--hub-columns", type=int, default=2)
    parser.add_argument("--other-columns", type=int, default=2)
    parser.add_argument("--bits", type=int, default=32, help="secure integer bits")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--party", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.party is not None:
        print(json.dumps(party(json.loads(args.spec.read_text()), args.party)))
        return
    if min(args.hub_columns, args.other_columns) < 2:
        parser.error("--hub-columns and --other-columns: want >= 2 (a filter and a value)")
    sizes = args.rows + ([1_000_000] if args.million else [])
    print(f"helper-aligned join, hidden mode, 3 parties on one machine ({os.cpu_count()} cores),")
    print(f"D = {DUMMIES}, ε = {EPSILON}, SecInt({args.bits}), columns: hub {args.hub_columns}, "
          f"other {args.other_columns}")  # fmt: skip
    header = (
        f"{'rows':>9} {'join s':>8} {'COUNT+SUM s':>12} {'MB sent A/B/H':>20} "
        f"{'peak MB A/B/H':>16} {'plaintext s':>12}  JOIN.md prototype"
    )
    print(header)
    figures = []
    for rows in sizes:
        result = measure(rows, args.hub_columns, args.other_columns, args.bits)
        figures.append(result)
        sent = "/".join(f"{mb:g}" for mb in result["join_mb_sent"])
        peak = "/".join(str(mb) for mb in result["peak_mb"])
        print(
            f"{rows:>9} {result['join_s']:>8.2f} {result['aggregate_s']:>12.2f} {sent:>20} "
            f"{peak:>16} {result['plaintext_s']:>12.3f}  {PROTOTYPE.get(rows, '-')}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"dummies": DUMMIES, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
