"""The suite's SQL workloads, and the naive MPyC baseline's spec for each.

Every workload is a query template over the tables of :mod:`benchmarks.suite.data`, with
the positions of its group and exact columns for :func:`engine.oracle.compare`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.demo.synthetic import DISTRICTS, REGIONS

from .data import Fixture


@dataclass(frozen=True)
class Workload:
    """A query over tables of size ``n`` (rows, or citizens for joins)."""

    name: str
    title: str
    template: str  # "{n}" is the size
    groups: tuple[int, ...]
    exact: tuple[int, ...]
    tables: tuple[str, ...]  # "party.dataset_{n}", for row counts
    min_group_size: int = 10

    def sql(self, n: int) -> str:
        """Return the query at size ``n``."""
        return self.template.format(n=n)

    def table_names(self, n: int) -> list[str]:
        """Return the qualified names of the tables read at size ``n``."""
        return [t.format(n=n) for t in self.tables]


AGGREGATE = Workload(
    "aggregate",
    "single-agency grouped aggregate",
    "SELECT region, COUNT(*), AVG(x), STDDEV_SAMP(x) FROM tax.rows_{n} GROUP BY region",
    (0,),
    (1,),
    ("tax.rows_{n}",),
)
UNION = Workload(
    "union",
    "cross-region aggregate (UNION ALL of two agencies)",
    "SELECT region, COUNT(*), AVG(x), STDDEV_SAMP(x) FROM (SELECT * FROM tax.half_{n} "
    "UNION ALL SELECT * FROM social.half_{n}) AS u GROUP BY region",
    (0,),
    (1,),
    ("tax.half_{n}", "social.half_{n}"),
)
JOIN2 = Workload(
    "join2",
    "2-agency join, filtered, grouped (20 districts)",
    "SELECT p.district, COUNT(*), AVG(t.income), STDDEV_SAMP(t.income) "
    "FROM registry.people_{n} p JOIN tax.income_{n} t ON p.citizen_id = t.citizen_id "
    "WHERE p.birth_year < 1975 AND t.sector IN ('manufacturing', 'retail', 'health') "
    "GROUP BY p.district",
    (0,),
    (1,),
    ("registry.people_{n}", "tax.income_{n}"),
)
JOIN3 = Workload(
    "join3",
    "3-agency join, filtered, grouped (5 regions)",
    "SELECT t.region, COUNT(*), AVG(t.income), AVG(s.medical_claims) "
    "FROM tax.income_{n} t JOIN social.benefits_{n} s ON t.citizen_id = s.citizen_id "
    "JOIN registry.people_{n} p ON p.citizen_id = t.citizen_id "
    "WHERE p.sex = 'F' AND t.sector <> 'public' GROUP BY t.region",
    (0,),
    (1,),
    ("tax.income_{n}", "social.benefits_{n}", "registry.people_{n}"),
)
HISTOGRAM = Workload(
    "histogram",
    "10-bin histogram of income over joined rows",
    "SELECT width_bucket(t.income, 0, 150000, 10) AS bucket, COUNT(*) AS n, "
    "AVG(p.birth_year) FROM tax.income_{n} t JOIN registry.people_{n} p "
    "ON t.citizen_id = p.citizen_id GROUP BY bucket",
    (0,),
    (1,),
    ("tax.income_{n}", "registry.people_{n}"),
)
MEDIAN_JOIN = Workload(
    "median_join",
    "exact MEDIAN of income over joined rows",
    "SELECT MEDIAN(t.income) FROM tax.income_{n} t JOIN registry.people_{n} p "
    "ON t.citizen_id = p.citizen_id WHERE p.sex = 'F'",
    (),
    (),
    ("tax.income_{n}", "registry.people_{n}"),
)
MEDIAN_ONE = Workload(
    "median_one",
    "exact MEDIAN per region at one agency (computed by the owner)",
    "SELECT region, MEDIAN(x) FROM tax.rows_{n} GROUP BY region",
    (0,),
    (),
    ("tax.rows_{n}",),
)
SMALL = Workload(  # bench_engine's small throughput query, at one sector
    "small",
    "small filtered aggregate",
    "SELECT COUNT(*), AVG(x) FROM tax.rows_{n} WHERE sector = 'retail'",
    (),
    (0,),
    ("tax.rows_{n}",),
)
BUCKETS = list(range(12))  # width_bucket(v, 0, 150000, 10): 0 below, 11 above the range


def naive_spec(workload: Workload, n: int, fixture: Fixture) -> dict[str, Any] | None:
    """Return the naive MPyC baseline's spec for ``workload`` at size ``n`` (None: none)."""
    files = fixture.files
    index = {name: i for i, name in enumerate(fixture.parties)}

    def part(table: str, select: str) -> dict[str, Any]:
        path = files[table.format(n=n)]
        return {
            "party": index[table.split(".")[0]],
            "file": str(path),
            "rows": _rows(path),
            "select": select,
        }

    stats: list[list[str]] = [["count"], ["avg", "v"], ["stddev", "v"]]
    plain = "SELECT 1 AS f, region AS g, x AS v FROM t"
    if workload is AGGREGATE:
        return _spec("union", [part("tax.rows_{n}", plain)], list(REGIONS), stats, 96)
    if workload is UNION:
        parts = [part("tax.half_{n}", plain), part("social.half_{n}", plain)]
        return _spec("union", parts, list(REGIONS), stats, 96)
    if workload is JOIN2:
        hub = part(
            "registry.people_{n}",
            "SELECT citizen_id AS id, (birth_year < 1975)::INT AS f, district AS g FROM t",
        )
        spoke = part(
            "tax.income_{n}",
            "SELECT citizen_id AS id, (sector IN ('manufacturing', 'retail', 'health'))::INT "
            "AS f, income AS v FROM t",
        )
        return _spec("join", [hub, spoke], list(DISTRICTS), stats, 64)
    if workload is JOIN3:
        hub = part(
            "tax.income_{n}",
            "SELECT citizen_id AS id, (sector <> 'public')::INT AS f, region AS g, "
            "income AS v FROM t",
        )
        social = part(
            "social.benefits_{n}", "SELECT citizen_id AS id, 1 AS f, medical_claims AS w FROM t"
        )
        people = part(
            "registry.people_{n}", "SELECT citizen_id AS id, (sex = 'F')::INT AS f FROM t"
        )
        outputs = [["count"], ["avg", "v"], ["avg", "w"]]
        return _spec("join", [hub, social, people], list(REGIONS), outputs, 64)
    if workload is HISTOGRAM:
        hub = part(
            "tax.income_{n}",
            "SELECT citizen_id AS id, 1 AS f, CASE WHEN income < 0 THEN 0 WHEN income >= 150000 "
            "THEN 11 ELSE CAST(floor(income / 15000) AS INT) + 1 END AS g FROM t",
        )
        people = part(
            "registry.people_{n}", "SELECT citizen_id AS id, 1 AS f, birth_year AS v FROM t"
        )
        return _spec("join", [hub, people], BUCKETS, [["count"], ["avg", "v"]], 64)
    return None


def _spec(
    mode: str, parts: list[dict[str, Any]], groups: list[Any], outputs: list[list[str]], bits: int
) -> dict[str, Any]:
    return {
        "mode": mode,
        "parts": parts,
        "groups": groups,
        "outputs": outputs,
        "scale": {"v": 100, "w": 100},
        "bits": bits,
    }


def _rows(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle) - 1
