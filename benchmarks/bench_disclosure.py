"""What disclosure control costs per query: overlap control, the dominance rule, dp noise.

    python benchmarks/bench_disclosure.py [--sizes 10000,1000000] [--history 1000] [--out F]

(a) At the owner, in-process: a grouped scan with and without the overlap sketches
    (2m − 1 power sums per group), and the history check of a 10-group release against
    0 and ``--history`` earlier releases (stored sketches of similar sizes, the worst case:
    every one is a candidate), beside DuckDB running the same SQL alone.
(b) End to end on a 3-party federation on loopback: the same grouped query over datasets
    with every control off, with the exact-mode controls on (overlap, dominance), and in
    release mode dp; before and after ``--history`` earlier releases of the controlled
    dataset. Medians; DuckDB over the pooled plaintext beside them.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import ROWS_COLUMNS, summary, write_rows

from engine.client import Client
from engine.config import load_party
from engine.demo.synthetic import SECTORS
from engine.federation_init import DatasetSpec, create_federation
from engine.launch import LocalFederation, free_port_block
from engine.local import LocalData
from engine.oracle import PlaintextOracle
from engine.overlap import PRIME, OverlapHistory, Sketch
from engine.planner import plan_query

SQL = "SELECT sector, COUNT(*), SUM(x) FROM tax.{name} WHERE k >= {threshold} GROUP BY sector"
VARIANTS = {
    "off": (("overlap_control", False), ("dominance", False)),
    "exact": (),  # the defaults: overlap control and the dominance rule on
    "dp": (
        ("release", "dp"),
        ("epsilon_per_query", 0.01),
        ("budget", 1e6),
        ("analyst_budget", 1e6),
    ),
}


def build(root: Path, sizes: list[int]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    specs = []
    for n in sizes:
        path = root / "tax" / "data" / f"rows_{n}.csv"
        write_rows(path, n, seed=n)
        for variant, options in VARIANTS.items():
            columns = dict(ROWS_COLUMNS)
            columns["x"] = {"policy": "aggregate", "decimals": 2, "bounds": [0, 1e7]}
            columns["k"] = {"policy": "aggregate", "bounds": [0, 1000]}
            specs.append(
                DatasetSpec(f"{variant}_{n}", f"data/rows_{n}.csv", columns, options=tuple(options))
            )
            files[f"tax.{variant}_{n}"] = path
    create_federation(
        root,
        ["registry", "tax", "social"],
        ["analyst0"],
        name="bench",
        base_port=free_port_block(3),
        datasets={"tax": specs},
    )
    return files


def owner_costs(root: Path, oracle: PlaintextOracle, n: int, history: int) -> dict[str, object]:
    """(a): the owner's scan with and without sketches, and the history check."""
    config = load_party(root / "tax" / "party.toml")
    data = LocalData(config)
    catalog_plan = plan_query(
        SQL.format(name=f"exact_{n}", threshold=500), _catalog(data), "analyst0"
    )
    (scan,) = catalog_plan.scans
    timings: dict[str, list[float]] = {"plain": [], "sketch": [], "duckdb": []}
    for _ in range(5):
        began = time.perf_counter()
        data.scan(scan, catalog_plan.measures, overlap=False)
        timings["plain"].append(time.perf_counter() - began)
        began = time.perf_counter()
        result = data.scan(scan, catalog_plan.measures, overlap=True)
        timings["sketch"].append(time.perf_counter() - began)
        timings["duckdb"].append(oracle.run(SQL.format(name=f"exact_{n}", threshold=500)).seconds)
    parts = list(result.sketches.values())
    checks: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = OverlapHistory(Path(tmp) / "overlap.sqlite")
        rng = random.Random(n)
        for count in (0, history):
            if count:
                for i in range(count):  # earlier parts of similar sizes: all candidates
                    near = parts[i % len(parts)]
                    fake = Sketch(
                        near.rows + rng.randint(-5, 5),
                        tuple(rng.randrange(PRIME) for _ in near.sums),
                    )
                    store.check_and_record("exact", 10, f"q{i}", [fake])
            began = time.perf_counter()
            store.check_and_record("exact", 10, "probe", parts)
            checks[f"after_{count}"] = time.perf_counter() - began
        store.close()
    row = {
        "rows": n,
        "scan_s": summary(timings["plain"]),
        "scan_with_sketch_s": summary(timings["sketch"]),
        "duckdb_s": summary(timings["duckdb"]),
        "history_check_s": checks,
        "groups": len(parts),
    }
    print(
        f"  {n:>9,} rows: scan {statistics.median(timings['plain']) * 1000:7.1f} ms, with "
        f"sketches {statistics.median(timings['sketch']) * 1000:7.1f} ms (DuckDB alone "
        f"{statistics.median(timings['duckdb']) * 1000:6.1f} ms); history check of "
        f"{len(parts)} parts: {checks['after_0'] * 1000:.2f} ms with none earlier, "
        f"{checks[f'after_{history}'] * 1000:.1f} ms after {history}",
        flush=True,
    )
    return row


def _catalog(data: LocalData):  # type: ignore[no-untyped-def]
    from engine.catalog import Catalog

    return Catalog(data.catalog())


def end_to_end(
    root: Path, oracle: PlaintextOracle, sizes: list[int], history: int, repeat: int
) -> list[dict[str, object]]:
    """(b): the same query per variant, before and after ``history`` earlier releases."""
    rows = []
    rng = random.Random(7)
    with LocalFederation(root), Client(root / "analysts" / "analyst0") as client:
        for n in sizes:
            for variant in VARIANTS:
                name = f"{variant}_{n}"
                client.query(SQL.format(name=name, threshold=0))  # warm up
                measured: dict[str, object] = {"rows": n, "variant": variant}
                for label in ("before", "after"):
                    if label == "after" and variant == "exact":
                        for _ in range(history):  # earlier releases to compare with
                            client.query(SQL.format(name=name, threshold=rng.randint(0, 999)))
                    elif label == "after":
                        continue
                    secure = []
                    for _ in range(repeat):
                        sql = SQL.format(name=name, threshold=rng.randint(0, 999))
                        secure.append(client.query(sql).elapsed)
                    measured[f"secure_{label}_s"] = summary(secure)
                plain = [
                    oracle.run(SQL.format(name=name, threshold=rng.randint(0, 999))).seconds
                    for _ in range(repeat)
                ]
                measured["duckdb_s"] = summary(plain)
                rows.append(measured)
                before = measured["secure_before_s"]
                after = measured.get("secure_after_s")
                assert isinstance(before, dict)
                text = f"  {n:>9,} rows, {variant:<5}: {before['median'] * 1000:7.1f} ms"
                if isinstance(after, dict):
                    text += f", after {history} releases {after['median'] * 1000:7.1f} ms"
                print(f"{text}   (DuckDB {statistics.median(plain) * 1000:6.2f} ms)", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="jointstat-disclosure-") as tmp:
        root = Path(tmp)
        print(f"building a 3-party federation with datasets of {sizes} rows ...", flush=True)
        files = build(root, sizes)
        oracle = PlaintextOracle(files)
        print("(a) at the owner (in-process, medians of 5):", flush=True)
        owner = [owner_costs(root, oracle, n, args.history) for n in sizes]
        print(f"(b) end to end (medians of {args.repeat}):", flush=True)
        full = end_to_end(root, oracle, sizes, args.history, args.repeat)
    report = {"owner": owner, "end_to_end": full, "sectors": len(SECTORS)}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
