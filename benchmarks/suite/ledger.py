"""Section ``ledger``: cosigned appends/s and the per-query overhead of anchoring.

Reuses bench_ledger_federation: (a) the sequencer's own ledger writer, run in this
process, appends signed entries in batches of 1..1000, each batch mirrored and cosigned
by the two other daemons over gRPC with mutual TLS (3 witnesses); (b) the same small
query from one analyst on a federation with the ledger on and one with it off
(``ledger = false``, a benchmark-only switch); the overhead is the difference of medians.
Loopback only.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import bench_ledger_federation as ledger_bench

from engine.client import Client
from engine.errors import EngineError
from engine.launch import LocalFederation

from .measure import summary
from .plan import Plan


def run_section(workdir: Path, plan: Plan, progress: Any) -> dict[str, Any]:
    """Return the append rates by batch size and the query latency with the ledger on and off."""
    latencies: dict[str, list[float]] = {}
    for on in (False, True):
        where = workdir / ("ledger-on" if on else "ledger-off")
        ledger_bench.make_federation(where, 2_000, on)
        with LocalFederation(where):
            samples, _ = _queries(where, plan.ledger_queries)
        latencies["on" if on else "off"] = samples
        progress(
            f"  ledger {'on ' if on else 'off'}: query median "
            f"{statistics.median(samples) * 1000:.1f} ms"
        )
    overhead = statistics.median(latencies["on"]) - statistics.median(latencies["off"])
    progress(f"  per-query ledger overhead: {overhead * 1000:.1f} ms (difference of medians)")

    where = workdir / "ledger-appends"
    ledger_bench.make_federation(where, 200, True)
    launcher = LocalFederation(where)
    for party in ("tax", "social"):
        launcher.start_party(party, wait=False)
    try:
        for party in ("tax", "social"):
            launcher.wait_healthy(party, 60)
        rows, _ = asyncio.run(ledger_bench.appends(where, plan.appends))
    finally:
        launcher.stop()
    return {
        "query_s": {k: summary(v) for k, v in latencies.items()},
        "overhead_s": overhead,
        "query": ledger_bench.QUERY,
        "appends": rows,
        "best_appends_per_s": max(r["appends_per_s"] for r in rows),
    }


def _queries(where: Path, count: int) -> tuple[list[float], object]:
    """Run bench_ledger_federation's query loop once the catalog is complete."""
    with Client(where / "analysts" / "alice") as client:
        for _ in range(100):  # datasets register shortly after the daemons are healthy
            try:
                client.query(ledger_bench.QUERY)
                break
            except EngineError:  # retried until the owner has registered its datasets
                time.sleep(0.3)
    return ledger_bench.query_latencies(where, count)  # type: ignore[no-any-return]
