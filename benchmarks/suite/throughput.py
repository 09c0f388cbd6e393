"""Section ``throughput``: small aggregate queries per second from 1, 4, 16 analysts.

Each analyst is a separate process (multiprocessing spawn, bench_engine's loop) with its
own identity and connection, sending bench_engine's small filtered aggregate over
``tax.rows_<n>`` back to back for the plan's duration, with the ledger on. The baseline
is the same queries one after another in DuckDB over the pooled plaintext.
"""

from __future__ import annotations

import time
from typing import Any

from bench_engine import SECTORS, SMALL_SQL

from engine.oracle import PlaintextOracle

from .measure import summary
from .plan import Plan
from .session import Running
from .workloads import SMALL


def duckdb_rate(oracle: PlaintextOracle, n: int, seconds: float) -> float:
    """Return DuckDB's queries/s on the same small queries, one after another."""
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        oracle.execute(SMALL_SQL.format(n=n, sector=SECTORS[count % len(SECTORS)]))
        count += 1
    return count / (time.perf_counter() - began)


def run_section(fed: Running, oracle: PlaintextOracle, plan: Plan, progress: Any) -> dict[str, Any]:
    """Return the throughput figures for each number of analysts in the plan."""
    n = plan.rows[0]
    plain = duckdb_rate(oracle, n, min(plan.duration, 3.0))
    figures = []
    for analysts in plan.analysts:
        window = fed.window()
        window.start()
        answer = fed.command(
            {"throughput": {"analysts": analysts, "duration": plan.duration, "rows": n}}
        )
        parties = window.stop()
        rate = answer["queries"] / plan.duration
        for party in parties.values():
            party["bytes_per_query"] = party.pop("bytes_sent") / max(answer["queries"], 1)
        figure = {
            "analysts": analysts,
            "rows": n,
            "queries": answer["queries"],
            "duration_s": plan.duration,
            "queries_per_s": rate,
            "latency_s": summary(answer["latency"]),
            "duckdb_queries_per_s": plain,
            "ratio": plain / max(rate, 1e-9),
            "parties": parties,
            "sql": SMALL.sql(n).replace("'retail'", "<sector>"),
        }
        figures.append(figure)
        progress(
            f"  {analysts:>2} analysts: {rate:7.1f} queries/s (median latency "
            f"{figure['latency_s']['median'] * 1000:.0f} ms); DuckDB {plain:,.0f} queries/s"
        )
    return {"figures": figures}
