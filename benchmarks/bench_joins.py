"""Join benchmark: 3-agency joins, histograms and medians over joined rows, vs DuckDB.

Starts a local three-party federation (real daemons, mutual TLS, MPyC over TLS, ledger on)
over the demo agencies' synthetic data and reports, beside DuckDB on the pooled plaintext:

(a) a 3-agency join (registry ⋈ tax ⋈ social on citizen_id) followed by a filtered,
    grouped AVG, for 10^4, 10^5 (and 10^6 with --sizes) citizens per agency;
(b) a 10-bin histogram (GROUP BY width_bucket) over the joined rows;
(c) an exact median over the joined rows.

    python benchmarks/bench_joins.py [--sizes 10000,100000] [--repeat 3] [--out F]
        [--only histogram_10_bins,...] [--keep DIR]

``--keep DIR`` keeps each federation (its daemons' logs give the time of every stage).

Targets on a 2-core machine: 10^5 join + aggregate ≤ 30 s; 10^6 ≤ 5 min; 10-bin histogram
over 10^6 joined rows ≤ 60 s; exact median of 10^5 ≤ 2 min.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from engine.client import Client
from engine.demo.synthetic import PARTIES, generate
from engine.errors import EngineError
from engine.federation_init import create_federation
from engine.launch import LocalFederation, free_port_block
from engine.oracle import PlaintextOracle, compare

QUERIES = {
    "join3_grouped_avg": (
        "SELECT p.district, COUNT(*), AVG(t.income) FROM registry.people p "
        "JOIN tax.income t ON p.citizen_id = t.citizen_id "
        "JOIN social.benefits s ON s.citizen_id = t.citizen_id "
        "WHERE p.birth_year < 1965 AND s.medical_claims > 100 GROUP BY p.district",
        (0,),
        (1,),
    ),
    "histogram_10_bins": (
        "SELECT width_bucket(t.income, 0, 150000, 10) AS bin, COUNT(*) FROM tax.income t "
        "JOIN registry.people p ON p.citizen_id = t.citizen_id GROUP BY bin",
        (0,),
        (1,),
    ),
    "median_joined": (
        "SELECT MEDIAN(t.income) FROM tax.income t JOIN registry.people p "
        "ON p.citizen_id = t.citizen_id WHERE p.sex = 'F'",
        (),
        (),
    ),
}


def run(
    size: int, repeat: int, only: list[str] | None = None, keep: Path | None = None
) -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="jointstat-joins-") as tmp:
        root = Path(tmp) if keep is None else keep / f"citizens-{size}"
        began = time.perf_counter()
        data = generate(root, size, seed=5)
        create_federation(
            root,
            list(PARTIES),
            ["alice"],
            name="bench",
            base_port=free_port_block(3),
            datasets=data.datasets,
        )
        oracle = PlaintextOracle(data.files)
        print(
            f"  {size:,} citizens: data and keys in {time.perf_counter() - began:.1f} s", flush=True
        )
        with LocalFederation(root), Client(root / "analysts" / "alice") as client:
            for name, (sql, groups, exact) in QUERIES.items():
                if only and name not in only:
                    continue
                secure: list[float] = []
                status = "ok"
                try:
                    for _ in range(repeat):
                        result = client.query(sql, timeout=900)
                        secure.append(result.elapsed)
                    reference = oracle.run(sql)
                    problems = compare(result, reference, groups, 10, exact)
                    if problems:
                        status = "MISMATCH: " + "; ".join(problems[:3])
                except EngineError as exc:
                    status = f"not available: {exc}"
                    reference = None
                plain = [oracle.run(sql).seconds for _ in range(repeat)] if reference else []
                row: dict[str, object] = {"query": name, "citizens": size, "status": status}
                if secure:
                    row.update(
                        secure_s=statistics.median(secure),
                        secure_min=min(secure),
                        secure_max=max(secure),
                    )
                if plain:
                    row.update(duckdb_s=statistics.median(plain))
                rows.append(row)
                shown = (
                    f"secure {statistics.median(secure):7.2f} s  DuckDB "
                    f"{statistics.median(plain) * 1000:7.1f} ms  "
                    f"ratio {statistics.median(secure) / statistics.median(plain):7.0f}x"
                    if secure and plain
                    else ""
                )
                print(f"    {name:<20} {shown}  {status}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--only", help=f"comma-separated, of {', '.join(QUERIES)}")
    parser.add_argument("--keep", type=Path, help="keep the federations in this directory")
    args = parser.parse_args()
    only = args.only.split(",") if args.only else None
    if only and not set(only) <= set(QUERIES):
        parser.error(f"--only: got {args.only}, want names from {', '.join(QUERIES)}")
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        results += run(size, args.repeat, only, args.keep)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
