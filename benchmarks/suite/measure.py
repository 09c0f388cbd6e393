"""Measure one workload at one size: secure runs, DuckDB's, the naive MPyC baseline's.

A figure is the median of ``repeat`` timed runs with their min and max (end to end, as
the analyst sees it), each party's bytes sent and peak memory over those runs, the same
query's time in DuckDB over the pooled plaintext, and the ratio of the two medians. The
secure result of the last run is checked against DuckDB with engine.oracle.compare.
A query the engine refuses as "not supported yet" gives a row marked not available with
the engine's message, so that it starts counting as soon as the engine supports it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import naive_mpyc
from bench_engine import summary

from engine.client import SUPPRESSED, Cell, Result
from engine.oracle import PlaintextOracle, compare

from .session import Running
from .workloads import Workload, naive_spec


def result_from_json(body: dict[str, Any], elapsed: float) -> Result:
    """Rebuild a client Result from Result.to_json() (suppressed cells back as SUPPRESSED)."""
    suppressed = {tuple(p) for p in body["suppressed"]}
    rows: list[tuple[Cell, ...]] = []
    for r, row in enumerate(body["rows"]):
        rows.append(tuple(SUPPRESSED if (r, c) in suppressed else v for c, v in enumerate(row)))
    return Result(
        body["query_id"],
        tuple(body["columns"]),
        tuple(rows),
        body["seconds"],
        elapsed,
        tuple((r, c) for r, c in sorted(suppressed)),
    )


def table_rows(oracle: PlaintextOracle, tables: list[str]) -> int:
    """Return the total number of rows of ``tables`` (read by the query)."""
    return sum(int(oracle.execute(f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables)  # type: ignore[call-overload]


def secure(
    fed: Running, oracle: PlaintextOracle, workload: Workload, n: int, repeat: int
) -> dict[str, Any]:
    """Return the figure of ``workload`` at size ``n`` on ``fed`` (see module doc)."""
    sql = workload.sql(n)
    figure: dict[str, Any] = {
        "workload": workload.name,
        "size": n,
        "rows": table_rows(oracle, workload.table_names(n)),
        "network": fed.network,
        "sql": sql,
    }
    window = fed.window()
    window.start()
    answer = fed.query(sql, repeat)
    parties = window.stop()
    if not answer["ok"]:
        available = "not supported yet" in answer["error"]
        figure.update(status="not available" if available else "failed", error=answer["error"])
        return figure
    plain = [oracle.run(sql) for _ in range(max(3, repeat))]
    result = result_from_json(answer["result"], answer["elapsed"][-1])
    problems = compare(result, plain[-1], workload.groups, workload.min_group_size, workload.exact)
    seconds = summary(answer["elapsed"])
    duckdb = summary([p.seconds for p in plain])
    for figures in parties.values():
        figures["bytes_per_query"] = figures.pop("bytes_sent") / repeat
    figure.update(
        status="ok" if not problems else "wrong",
        problems=problems[:5],
        secure_s=seconds,
        duckdb_s=duckdb,
        ratio=seconds["median"] / max(duckdb["median"], 1e-9),
        parties=parties,
        result_rows=len(result.rows),
        result=answer["result"],  # the released cells (small: aggregates per group)
    )
    if problems:  # keep what differed, for diagnosis
        figure["got_rows"] = [[str(v) for v in row] for row in result.rows[:30]]
        figure["want_rows"] = [[str(v) for v in row] for row in plain[-1].rows[:30]]
    if workload.name == "histogram":  # COUNT(*) per bucket adds up to the joined rows
        figure["joined_rows"] = sum(int(row[1]) for row in plain[-1].rows)  # type: ignore[call-overload]
    return figure


def naive(
    oracle: PlaintextOracle, fed: Running, workload: Workload, n: int
) -> dict[str, Any] | None:
    """Return the naive MPyC baseline of ``workload`` at size ``n``, checked against DuckDB.

    None when the workload has no naive baseline.
    """
    spec = naive_spec(workload, n, fed.fixture)
    if spec is None:
        return None
    with tempfile.TemporaryDirectory(prefix="jsbench-naive-") as directory:
        try:
            figures = naive_mpyc.measure(spec, Path(directory))
        except (RuntimeError, OSError) as exc:
            return {"workload": workload.name, "size": n, "status": "failed", "error": str(exc)}
    rows = tuple(tuple(SUPPRESSED if v is None else v for v in row) for row in figures["rows"])
    reference = oracle.run(workload.sql(n))
    # Naive MPC releases every cell; suppress small groups as the engine would, to compare.
    suppressed = tuple(
        tuple(
            SUPPRESSED if (c not in workload.groups and count < workload.min_group_size) else value
            for c, value in enumerate(row)
        )
        for row, count in zip(rows, [_count(row, workload) for row in rows], strict=True)
    )
    fake = Result("naive", reference.columns, suppressed, figures["seconds"])
    problems = compare(fake, reference, workload.groups, workload.min_group_size, workload.exact)
    return {
        "workload": workload.name,
        "size": n,
        "rows": table_rows(oracle, workload.table_names(n)),
        "status": "ok" if not problems else "wrong",
        "problems": problems[:5],
        "seconds": figures["seconds"],
        "wall": figures["wall"],
        "mb_sent": figures["mb_sent"],
        "peak_mb": figures["peak_mb"],
    }


def _count(row: tuple[Any, ...], workload: Workload) -> int:
    """Return the COUNT(*) cell of a naive row (the first output after the groups)."""
    value = row[len(workload.groups)]
    return int(value) if isinstance(value, int) else 0
