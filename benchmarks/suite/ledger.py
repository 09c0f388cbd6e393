"""Section ``ledger``: cosigned appends/s and the per-query overhead of anchoring.

Reuses bench_ledger_federation: (a) the sequencer's own ledger writer, run in this
process, appends signed entries in batches of 1..1000, each batch mirrored and cosigned
by the two other daemons over gRPC with mutual TLS (3 witnesses); (b) the same small
query from one analyst on a federation with the ledger on and one with it off
(``ledger = false``, a benchmark-only switch), both running at once, the queries
alternating between them; the overhead is the difference of medians.
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
    # Both federations run at once and the queries alternate between them, so that both
    # see the same load from whatever else the machine runs.
    roots = {on: workdir / ("ledger-on" if on else "ledger-off") for on in (False, True)}
    for on, where in roots.items():
        ledger_bench.make_federation(where, 2_000, on)
    with LocalFederation(roots[False]), LocalFederation(roots[True]):
        for where in roots.values():
            _wait_for_datasets(where)
        samples, _ = ledger_bench.query_latencies(roots, plan.ledger_queries)
    latencies = {"on" if on else "off": samples[on] for on in roots}
    for name, values in latencies.items():
        progress(f"  ledger {name:<3}: query median {statistics.median(values) * 1000:.1f} ms")
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


def _wait_for_datasets(where: Path) -> None:
    """Return once a query succeeds: datasets register shortly after the daemons are up."""
    with Client(where / "analysts" / "alice") as client:
        for _ in range(100):
            try:
                client.query(ledger_bench.QUERY)
                return
            except EngineError:  # retried until the owner has registered its datasets
                time.sleep(0.3)
