"""Section ``network``: the distributed workloads on loopback and across namespaces.

Each party runs in its own network namespace, joined to the others by veth links on a
bridge, with an emulated round-trip time of 1 ms and 20 ms (netem where the kernel has it,
else the user-space relay of :mod:`benchmarks.suite.relay`); the analysts run in a
namespace of their own. The same workloads also run on loopback, in the same section, for
the comparison. Where namespaces cannot be made, those rows say why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.oracle import PlaintextOracle

from .data import Fixture, build
from .measure import secure
from .netns import unavailable
from .plan import Plan
from .session import running
from .workloads import AGGREGATE, HISTOGRAM, JOIN2, JOIN3, MEDIAN_JOIN, UNION

WORKLOADS = (AGGREGATE, UNION, JOIN2, JOIN3, HISTOGRAM, MEDIAN_JOIN)


def _size(plan: Plan, name: str) -> int:
    return plan.net_rows if name in ("aggregate", "union") else plan.net_citizens


def _conditions(
    fixture: Fixture, oracle: PlaintextOracle, plan: Plan, rtt: float | None, progress: Any
) -> list[dict[str, Any]]:
    figures = []
    with running(fixture, rtt) as fed:
        progress(f"  {fed.network}:")
        for workload in WORKLOADS:
            n = _size(plan, workload.name)
            fed.query(workload.sql(n))  # warm: MPC session and links under this network
            figure = secure(fed, oracle, workload, n, plan.repeat)
            figure["rtt_ms"] = rtt or 0.0
            figures.append(figure)
            if "secure_s" in figure:
                progress(
                    f"    {workload.name} n={n:,}: {figure['secure_s']['median']:.3f} s "
                    f"[{figure['secure_s']['min']:.3f}-{figure['secure_s']['max']:.3f}] "
                    f"({figure['status']})"
                )
            else:
                progress(f"    {workload.name}: {figure['status']}")
    return figures


def run_section(workdir: Path, plan: Plan, progress: Any) -> dict[str, Any]:
    """Return the figures per network condition; rows say why a condition is missing."""
    fixture = build(workdir / "network", rows=(plan.net_rows,), citizens=(plan.net_citizens,))
    oracle = PlaintextOracle(fixture.files)
    figures = _conditions(fixture, oracle, plan, None, progress)
    missing = []
    why = unavailable()
    for rtt in plan.rtts:
        if why is not None:
            missing.append({"rtt_ms": rtt, "status": "not available", "error": why})
            progress(f"  {rtt:g} ms RTT: not available: {why}")
            continue
        try:
            figures += _conditions(fixture, oracle, plan, rtt, progress)
        except Exception as exc:
            missing.append(
                {"rtt_ms": rtt, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            )
            progress(f"  {rtt:g} ms RTT: failed: {exc}")
    return {"figures": figures, "missing": missing}
