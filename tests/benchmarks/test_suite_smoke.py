"""Smoke test of the benchmark suite: ``benchmarks/run.py --smoke`` end to end.

Runs every section at the smallest sizes (real daemons, real MPyC, namespaces where root
is available), into a temporary directory, and checks that results.json has every
section, that every secure result equals DuckDB over the pooled plaintext (checked here
again with engine.oracle.compare, from the released cells kept in results.json), and that
the naive MPyC baselines agree too. Takes about 1.5 minutes on 2 cores: marked slow (run
it with ``pytest -m slow tests/benchmarks``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.client import SUPPRESSED, Cell, Result
from engine.oracle import PlaintextOracle, compare

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "benchmarks")]

from suite.plan import SECTIONS  # noqa: E402
from suite.workloads import (  # noqa: E402
    AGGREGATE,
    HISTOGRAM,
    JOIN2,
    JOIN3,
    MEDIAN_JOIN,
    MEDIAN_ONE,
    UNION,
    Workload,
)

WORKLOADS: dict[str, Workload] = {
    w.name: w for w in (AGGREGATE, UNION, JOIN2, JOIN3, HISTOGRAM, MEDIAN_JOIN, MEDIAN_ONE)
}


def _result(body: dict[str, Any]) -> Result:
    suppressed = {tuple(p) for p in body["suppressed"]}
    rows: list[tuple[Cell, ...]] = [
        tuple(SUPPRESSED if (r, c) in suppressed else v for c, v in enumerate(row))
        for r, row in enumerate(body["rows"])
    ]
    return Result(body["query_id"], tuple(body["columns"]), tuple(rows), body["seconds"])


def _oracle(directory: Path) -> PlaintextOracle:
    files = {
        f"{path.parent.parent.name}.{path.stem}": path for path in directory.glob("*/data/*.csv")
    }
    return PlaintextOracle(files)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("results")
    keep = tmp_path_factory.mktemp("federations")
    command = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke"]
    done = subprocess.run(
        [*command, "--out", str(out), "--keep", str(keep)],
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (out / "report.md").exists()
    return json.loads((out / "results.json").read_text()), keep


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_results_have_every_section(smoke: tuple[dict[str, Any], Path]) -> None:
    results, _ = smoke
    assert set(results["sections"]) == set(SECTIONS)
    for name, body in results["sections"].items():
        assert body.get("status") != "failed", f"section {name}: {body.get('error')}"
    assert {t["target"] for t in results["targets"]}
    assert results["sections"]["throughput"]["figures"][0]["queries_per_s"] > 0
    assert results["sections"]["ledger"]["best_appends_per_s"] > 0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_secure_results_equal_duckdb(smoke: tuple[dict[str, Any], Path]) -> None:
    results, keep = smoke
    oracles = {"main": _oracle(keep / "main"), "network": _oracle(keep / "network")}
    checked = 0
    for section in ("aggregates", "joins", "histogram", "median", "network"):
        oracle = oracles["network" if section == "network" else "main"]
        for figure in results["sections"][section]["figures"]:
            if figure["status"] == "not available":
                assert "not supported yet" in figure["error"]
                continue
            assert figure["status"] == "ok", figure.get("problems")
            workload = WORKLOADS[figure["workload"]]
            reference = oracle.run(figure["sql"])
            got = _result(figure["result"])
            assert compare(got, reference, workload.groups, 10, workload.exact) == []
            checked += 1
    assert checked >= 10


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_naive_baselines_equal_duckdb(smoke: tuple[dict[str, Any], Path]) -> None:
    results, _ = smoke
    naive = [
        n for s in ("aggregates", "joins", "histogram") for n in results["sections"][s]["naive"]
    ]
    assert {n["workload"] for n in naive} == {"aggregate", "union", "join2", "join3", "histogram"}
    for row in naive:
        assert row["status"] == "ok", row
        assert row["seconds"] > 0
