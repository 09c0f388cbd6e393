"""The issue's performance targets, checked against a results document.

Each target names the figure it reads; a missing figure (section not run, size not in
the mode, query not supported yet) is reported as not measured, with the reason.
"""

from __future__ import annotations

from typing import Any


def _figure(
    results: dict[str, Any], section: str, workload: str, size: int
) -> dict[str, Any] | None:
    body = results["sections"].get(section, {})
    for figure in body.get("figures", []):
        if figure.get("workload") == workload and figure.get("size") == size:
            return figure  # type: ignore[no-any-return]
    return None


def _latency(
    results: dict[str, Any], section: str, workload: str, size: int, limit: float, what: str
) -> dict[str, Any]:
    figure = _figure(results, section, workload, size)
    row: dict[str, Any] = {"target": what, "want": f"<= {limit:g} s"}
    if figure is None:
        row.update(status="not measured", got=f"size {size:,} not run in this mode")
    elif "secure_s" not in figure:
        row.update(status="not available", got=figure.get("error", figure["status"])[:120])
    else:
        got = figure["secure_s"]["median"]
        row.update(
            got=f"{got:.2f} s",
            status="met" if got <= limit else f"missed by {got / limit:.1f}x",
            value=got,
        )
    return row


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one row per target: what, wanted, measured, met or by how much it was missed."""
    rows = []
    throughput = results["sections"].get("throughput", {}).get("figures", [])
    row: dict[str, Any] = {
        "target": "small aggregate queries, ledger on (best of 1/4/16 analysts)",
        "want": ">= 200 queries/s",
    }
    if throughput:
        best = max(f["queries_per_s"] for f in throughput)
        row.update(
            got=f"{best:.0f} queries/s",
            status="met" if best >= 200 else f"missed by {200 / max(best, 1e-9):.1f}x",
            value=best,
        )
    else:
        row.update(status="not measured", got="section not run")
    rows.append(row)
    rows.append(
        _latency(
            results, "aggregates", "aggregate", 1_000_000, 1.0, "10^6-row single-agency aggregate"
        )
    )
    rows.append(
        _latency(
            results,
            "joins",
            "join3",
            100_000,
            30.0,
            "3-agency join, 10^5 citizens, filtered aggregate",
        )
    )
    rows.append(
        _latency(
            results,
            "joins",
            "join3",
            1_000_000,
            300.0,
            "3-agency join, 10^6 citizens, filtered aggregate",
        )
    )
    histogram = _latency(
        results,
        "histogram",
        "histogram",
        1_000_000,
        60.0,
        "10-bin histogram over joined rows (10^6 citizens)",
    )
    figure = _figure(results, "histogram", "histogram", 1_000_000)
    if figure and figure.get("joined_rows"):
        histogram["target"] += f"; {figure['joined_rows']:,} joined rows"
    rows.append(histogram)
    rows.append(
        _latency(
            results,
            "median",
            "median_join",
            100_000,
            120.0,
            "exact MEDIAN over joined rows, 10^5 citizens",
        )
    )
    ledger = results["sections"].get("ledger", {})
    row = {
        "target": "cosigned ledger appends (3 witnesses, best batch size)",
        "want": ">= 2,000 /s",
    }
    if "best_appends_per_s" in ledger:
        best = ledger["best_appends_per_s"]
        row.update(
            got=f"{best:,.0f} /s",
            status="met" if best >= 2000 else f"missed by {2000 / best:.1f}x",
            value=best,
        )
    else:
        row.update(status="not measured", got="section not run")
    rows.append(row)
    return rows
