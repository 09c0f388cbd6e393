"""Sections ``aggregates``, ``joins``, ``histogram``, ``median``: latency against size.

Each runs its workloads on a running federation at every size of the plan, beside DuckDB
(in :func:`benchmarks.suite.measure.secure`) and the naive MPyC baseline at the plan's
naive sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.oracle import PlaintextOracle

from .measure import naive, secure
from .plan import Plan
from .session import Running
from .workloads import AGGREGATE, HISTOGRAM, JOIN2, JOIN3, MEDIAN_JOIN, MEDIAN_ONE, UNION, Workload

Progress = Callable[[str], None]

SECTION_WORKLOADS: dict[str, tuple[tuple[Workload, str], ...]] = {
    "aggregates": ((AGGREGATE, "rows"), (UNION, "rows")),
    "joins": ((JOIN2, "citizens"), (JOIN3, "citizens")),
    "histogram": ((HISTOGRAM, "citizens"),),
    "median": ((MEDIAN_JOIN, "citizens"), (MEDIAN_ONE, "rows")),
}


def _line(figure: dict[str, Any]) -> str:
    name = f"{figure['workload']} n={figure['size']:,}"
    if figure["status"] in ("not available", "failed"):
        return f"  {name}: {figure['status']}: {figure.get('error', '')[:100]}"
    if "secure_s" in figure:
        return (
            f"  {name} ({figure['rows']:,} rows): secure {figure['secure_s']['median']:.3f} s "
            f"[{figure['secure_s']['min']:.3f}-{figure['secure_s']['max']:.3f}], DuckDB "
            f"{figure['duckdb_s']['median'] * 1000:.1f} ms, ratio {figure['ratio']:,.0f}x "
            f"({figure['status']})"
        )
    return f"  {name}: naive MPyC {figure['seconds']:.2f} s ({figure['status']})"


def run_section(
    section: str, fed: Running, oracle: PlaintextOracle, plan: Plan, progress: Progress
) -> dict[str, Any]:
    """Run one latency section and return ``{"figures": [...], "naive": [...]}``."""
    figures, baselines = [], []
    for workload, axis in SECTION_WORKLOADS[section]:
        sizes = plan.rows if axis == "rows" else plan.citizens
        naive_sizes = plan.naive_rows if axis == "rows" else plan.naive_join_rows
        for n in sizes:
            repeat = plan.big_repeat if n >= 1_000_000 else plan.repeat
            figure = secure(fed, oracle, workload, n, repeat)
            figures.append(figure)
            progress(_line(figure))
            if figure["status"] == "not available":
                break  # the same refusal at every size
        for n in naive_sizes:
            baseline = _naive_at(fed, oracle, workload, n, axis)
            if baseline is None:
                break
            baselines.append(baseline)
            progress(_line(baseline))
    return {"figures": figures, "naive": baselines}


def _naive_at(
    fed: Running, oracle: PlaintextOracle, workload: Workload, n: int, axis: str
) -> dict[str, Any] | None:
    """Return the naive baseline at size ``n``, with the engine's figure at the same size.

    Join baselines run on their own small populations (tables ``*_<n>`` must exist).
    """
    if f"tax.rows_{n}" not in fed.fixture.files and axis == "rows":
        return None
    if axis == "citizens" and f"tax.income_{n}" not in fed.fixture.files:
        return None
    baseline = naive(oracle, fed, workload, n)
    if baseline is None:
        return None
    engine = secure(fed, oracle, workload, n, 1)
    baseline["engine_s"] = engine.get("secure_s", {}).get("median")
    return baseline
