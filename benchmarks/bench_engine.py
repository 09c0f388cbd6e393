"""Engine benchmark: single-dataset aggregate latency and small-query throughput.

Starts a local three-party federation (real daemons, mutual TLS, MPyC over TLS) and
reports, beside DuckDB on the pooled plaintext:

(a) end-to-end latency of a grouped aggregate over one dataset of 10^4, 10^5, 10^6 rows;
(b) sustained throughput of small aggregate queries from concurrent analysts.

    python benchmarks/bench_engine.py [--sizes 10000,100000,1000000] [--repeat 7]
        [--analysts 4] [--duration 10] [--out results.json]

Targets on a 2-core machine: 10^6-row aggregate end to end <= 1 s; >= 100 queries/s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.client import Client
from engine.demo.synthetic import REGIONS, SECTORS
from engine.federation_init import DatasetSpec, create_federation
from engine.launch import LocalFederation, free_port_block
from engine.oracle import PlaintextOracle

LATENCY_SQL = "SELECT region, COUNT(*), AVG(x), STDDEV_SAMP(x) FROM tax.rows_{n} GROUP BY region"
SMALL_SQL = "SELECT COUNT(*), AVG(x) FROM tax.rows_{n} WHERE sector = '{sector}'"


ROWS_COLUMNS: dict[str, str | dict[str, object]] = {
    "region": {"policy": "group_by", "domain": list(REGIONS)},
    "sector": {"policy": "group_by", "domain": list(SECTORS)},
    # The suite measures MEDIAN(x): exact order statistics are the owner's explicit choice.
    "x": {"policy": "aggregate", "decimals": 2, "order_statistics": True},
    "k": "aggregate",
}


def write_rows(path: Path, rows: int, seed: int) -> None:
    """Write a CSV of ``rows`` rows: region, sector, x (two decimals), k (integer)."""
    rng = np.random.default_rng(seed)
    region = np.array(REGIONS)[rng.integers(0, len(REGIONS), rows)]
    sector = np.array(SECTORS)[rng.integers(0, len(SECTORS), rows)]
    x = np.round(rng.lognormal(10, 0.6, rows), 2)
    k = rng.integers(0, 1000, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write("region,sector,x,k\n")
        for r, s, v, w in zip(region, sector, x, k, strict=True):
            out.write(f"{r},{s},{v:.2f},{w}\n")


def build(root: Path, sizes: list[int], analysts: int, ledger: bool = True) -> dict[str, Path]:
    files = {}
    specs = []
    for n in sizes:
        path = root / "tax" / "data" / f"rows_{n}.csv"
        write_rows(path, n, seed=n)
        files[f"tax.rows_{n}"] = path
        specs.append(
            DatasetSpec(
                f"rows_{n}",
                f"data/rows_{n}.csv",
                ROWS_COLUMNS,
            )
        )
    names = [f"analyst{i}" for i in range(analysts)]
    create_federation(
        root,
        ["registry", "tax", "social"],
        names,
        name="bench",
        base_port=free_port_block(3),
        datasets={"tax": specs},
    )
    if not ledger:
        disable_ledger(root)
    return files


def disable_ledger(root: Path) -> None:
    """Turn the federation in ``root`` to ``ledger = false`` (a benchmark-only switch, to
    measure what anchoring costs)."""
    path = root / "federation.toml"
    path.write_text(path.read_text().replace("[federation]\n", "[federation]\nledger = false\n", 1))


def summary(samples: list[float]) -> dict[str, float]:
    """Return the median, min, max and number of ``samples``."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "runs": len(samples),
    }


def latency(root: Path, oracle: PlaintextOracle, sizes: list[int], repeat: int) -> list[dict]:  # type: ignore[type-arg]
    rows = []
    with Client(root / "analysts" / "analyst0") as client:
        for n in sizes:
            sql = LATENCY_SQL.format(n=n)
            client.query(sql)  # warm: catalog, plan cache, MPC session
            secure = [client.query(sql).elapsed for _ in range(repeat)]
            plain = [oracle.run(sql).seconds for _ in range(repeat)]
            rows.append(
                {
                    "rows": n,
                    "secure_s": summary(secure),
                    "duckdb_s": summary(plain),
                    "ratio": statistics.median(secure) / statistics.median(plain),
                }
            )
            print(
                f"  {n:>9,} rows: secure {statistics.median(secure) * 1000:8.1f} ms   "
                f"DuckDB {statistics.median(plain) * 1000:7.2f} ms   "
                f"ratio {rows[-1]['ratio']:.0f}x",
                flush=True,
            )
    return rows


def _analyst(identity: str, n: int, duration: float, seed: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    done = 0
    latencies = []
    with Client(identity) as client:
        client.query(SMALL_SQL.format(n=n, sector=SECTORS[0]))
        end = time.perf_counter() + duration
        while time.perf_counter() < end:
            sql = SMALL_SQL.format(n=n, sector=SECTORS[int(rng.integers(0, len(SECTORS)))])
            result = client.query(sql)
            latencies.append(result.elapsed)
            done += 1
    out.put((done, latencies))


def throughput(root: Path, oracle: PlaintextOracle, n: int, analysts: int, duration: float) -> dict:  # type: ignore[type-arg]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(
            target=_analyst, args=(str(root / "analysts" / f"analyst{i}"), n, duration, i, queue)
        )
        for i in range(analysts)
    ]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=duration + 120) for _ in workers]
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - began
    count = sum(r[0] for r in results)
    latencies = [x for r in results for x in r[1]]
    # Plaintext baseline: the same small queries, one after another, in DuckDB.
    plain_count = 0
    end = time.perf_counter() + min(duration, 3.0)
    start = time.perf_counter()
    while time.perf_counter() < end:
        oracle.execute(SMALL_SQL.format(n=n, sector=SECTORS[plain_count % len(SECTORS)]))
        plain_count += 1
    plain_rate = plain_count / (time.perf_counter() - start)
    rate = count / duration
    print(
        f"  {analysts} analysts x {duration:.0f} s: {rate:7.1f} queries/s "
        f"(median latency {statistics.median(latencies) * 1000:.0f} ms; wall {wall:.1f} s)   "
        f"DuckDB {plain_rate:8.0f} queries/s",
        flush=True,
    )
    return {
        "analysts": analysts,
        "queries": count,
        "duration_s": duration,
        "queries_per_s": rate,
        "latency_s": summary(latencies),
        "duckdb_queries_per_s": plain_rate,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--analysts", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--directory", type=Path, help="keep the federation (and logs) here")
    parser.add_argument(
        "--no-ledger",
        action="store_true",
        help="turn anchoring off (benchmark only) to measure its cost",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="jointstat-bench-") as tmp:
        root = args.directory or Path(tmp)
        print(f"building a 3-party federation with datasets of {sizes} rows ...", flush=True)
        files = build(root, sizes, args.analysts, ledger=not args.no_ledger)
        oracle = PlaintextOracle(files)
        with LocalFederation(root):
            print(
                f"(a) grouped aggregate latency, end to end (median of {args.repeat}):", flush=True
            )
            lat = latency(root, oracle, sizes, args.repeat)
            print("(b) small-query throughput:", flush=True)
            thr = throughput(root, oracle, min(sizes), args.analysts, args.duration)
    report = {"latency": lat, "throughput": thr, "machine_cpus": multiprocessing.cpu_count()}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
