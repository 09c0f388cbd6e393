"""Section ``parties``: cost against the number of parties (3, 5, 7), on loopback.

The three agencies hold the data; the extra parties are compute-only (no datasets) and
take part in every MPC job. The threshold is t = 1 at every size: the engine's
helper-aligned join tolerates one corrupt party only and fails a join with the default
t = (n - 1) // 2 ("threshold: got 2, want 1"). The same single-agency aggregate and
2-agency join run at each size of federation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine.oracle import PlaintextOracle

from .data import build
from .measure import secure
from .plan import Plan
from .session import running
from .workloads import AGGREGATE, JOIN2


def run_section(workdir: Path, plan: Plan, progress: Any) -> dict[str, Any]:
    """Return one figure per (number of parties, workload)."""
    figures = []
    for count in plan.parties:
        fixture = build(
            workdir / f"parties-{count}",
            parties=count,
            rows=(plan.party_rows,),
            citizens=(plan.party_citizens,),
        )
        path = fixture.root / "federation.toml"
        path.write_text(re.sub(r"(?m)^threshold = \d+$", "threshold = 1", path.read_text()))
        oracle = PlaintextOracle(fixture.files)
        with running(fixture) as fed:
            for workload, n in ((AGGREGATE, plan.party_rows), (JOIN2, plan.party_citizens)):
                fed.query(workload.sql(n))  # warm: the MPC session of this federation
                figure = secure(fed, oracle, workload, n, plan.repeat)
                figure["parties_count"] = count
                figures.append(figure)
                if "secure_s" in figure:
                    progress(
                        f"  {count} parties, {workload.name} n={n:,}: "
                        f"{figure['secure_s']['median']:.3f} s ({figure['status']})"
                    )
                else:
                    progress(f"  {count} parties, {workload.name}: {figure['status']}")
    return {"figures": figures}
