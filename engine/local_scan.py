"""The SQL an owner runs in its own DuckDB for a query's plaintext step.

- :func:`aggregate_scan` — per group label, the integer components of every measure:
  counts, sums and sums of squares and products of values scaled to integers, and exact
  order statistics (MIN, MAX, QUANTILE_CONT) as fractions;
- :func:`join_scan` — per join key (and group label), the per-key columns of a join.

DuckDB's own error messages can quote data values, so they are never passed on: errors
name the dataset, the column and the rule instead.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from engine.errors import CapacityError, DataError, QueryError
from engine.plan import JoinScan, Measure, Scan

Label = tuple[object, ...]

_MAX_SCALED = "9.2e18"  # just below 2**63: a scaled value must fit a BIGINT
_RANGE_MARK = "jointstat: scaled value out of range"


def scaled(column: str, decimals: int) -> str:
    """Return SQL for ``column`` times 10**decimals as a BIGINT, failing when out of range."""
    value = f'ROUND("{column}" * {10**decimals})'
    return (
        f'CASE WHEN "{column}" IS NULL THEN NULL '
        f"WHEN ABS({value}) < {_MAX_SCALED} THEN CAST({value} AS BIGINT) "
        f"ELSE error('{_RANGE_MARK}') END"
    )


def label_value(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def run(cursor: Any, sql: str, qualified: str) -> list[tuple[Any, ...]]:
    """Run ``sql``; translate DuckDB's errors into engine errors that quote no data."""
    try:
        return list(cursor.execute(sql).fetchall())
    except duckdb.InvalidInputException as exc:
        if _RANGE_MARK in str(exc):
            raise CapacityError(
                f"scan of {qualified}: a value times 10^decimals is out of range; want "
                "|value·10^decimals| < 9.2e18 (fewer decimals?)"
            ) from None
        raise QueryError(
            f"query on {qualified}: the owner could not evaluate it ({type(exc).__name__}); "
            "want expressions over the dataset's columns"
        ) from None
    except duckdb.OutOfRangeException:
        raise CapacityError(
            f"scan of {qualified}: a scaled value or a sum is out of range; want "
            "|value·10^decimals| < 2^63 and sums < 2^127 (fewer decimals?)"
        ) from None
    except duckdb.ConversionException:
        raise QueryError(
            f"WHERE on {qualified}: a value could not be converted for a comparison; want "
            "comparisons between compatible types"
        ) from None
    except duckdb.Error as exc:
        raise QueryError(
            f"query on {qualified}: the owner could not evaluate it ({type(exc).__name__}); "
            "want expressions over the dataset's columns"
        ) from None


def hugeint(name: str) -> str:
    """Return SQL casting ``name`` to HUGEINT (sums of scaled values and their products)."""
    return f"CAST({name} AS HUGEINT)"


def component_sql(component: str, y: str, x: str | None = None) -> str:
    """Return the SQL aggregate of one measure component over the value ``y``.

    Univariate: n = COUNT(y), s = Σy, q = Σy². A pair (y, x) held by one owner counts only
    rows where both are present: n, s = Σx, q = Σx², sy = Σy, syy = Σy², sxy = Σxy.
    """
    h = hugeint
    if x is None:
        return {"n": f"COUNT({y})", "s": f"SUM({h(y)})", "q": f"SUM({h(y)} * {h(y)})"}[component]
    both = f"({x} IS NOT NULL AND {y} IS NOT NULL)"
    return {
        "n": f"SUM(CASE WHEN {both} THEN 1 ELSE 0 END)",
        "s": f"SUM(CASE WHEN {both} THEN {h(x)} END)",
        "q": f"SUM(CASE WHEN {both} THEN {h(x)} * {h(x)} END)",
        "sy": f"SUM(CASE WHEN {both} THEN {h(y)} END)",
        "syy": f"SUM(CASE WHEN {both} THEN {h(y)} * {h(y)} END)",
        "sxy": f"SUM(CASE WHEN {both} THEN {h(x)} * {h(y)} END)",
    }[component]


def _components(index: int, measure: Measure) -> list[str]:
    """Return SQL aggregates of one measure's components, over values v{index}/w{index}."""
    v = f"v{index}"
    if measure.column is None:
        return ["COUNT(*)"]
    if measure.order is not None:
        return [f"COUNT({v})", "0", "0"]  # the fraction comes from order_statistics()
    w = f"w{index}" if measure.second is not None else None
    return [component_sql(c, v, w) for c in measure.components]


def aggregate_scan(
    cursor: Any, table: str, qualified: str, scan: Scan, measures: Sequence[Measure]
) -> dict[Label, list[int]]:
    """Return, per group label, the integer components of every measure (plan order)."""
    groups = [f"{sql} AS g{i}" for i, sql in enumerate(scan.group_sql)]
    keys = [f"g{i}" for i in range(len(scan.group_sql))]
    inner = list(groups)
    outer = list(keys)
    for i, (measure, (column, second)) in enumerate(
        zip(measures, scan.measure_columns, strict=True)
    ):
        if column is not None:
            inner.append(f"{scaled(column, measure.decimals)} AS v{i}")
        if second is not None:
            inner.append(f"{scaled(second, measure.second_decimals)} AS w{i}")
        outer.extend(_components(i, measure))
    where = f" WHERE {scan.filter_sql}" if scan.filter_sql else ""
    source = f'(SELECT {", ".join(inner) or "1 AS one"} FROM "{table}"{where})'
    sql = f"SELECT {', '.join(outer)} FROM {source}"
    if keys:
        sql += f" GROUP BY {', '.join(keys)}"
    width = len(keys)
    out: dict[Label, list[int]] = {}
    for row in run(cursor, sql, qualified):
        label = tuple(label_value(v) for v in row[:width])
        out[label] = [int(v) if v is not None else 0 for v in row[width:]]
    offset = 0
    for i, measure in enumerate(measures):
        if measure.order is not None:
            fractions = order_statistics(cursor, source, keys, i, measure, qualified)
            for label, (num, den) in fractions.items():
                if label in out:
                    out[label][offset + 1] = num
                    out[label][offset + 2] = den
        offset += len(measure.components)
    return out


def order_statistics(
    cursor: Any, source: str, keys: list[str], index: int, measure: Measure, qualified: str
) -> dict[Label, tuple[int, int]]:
    """Return, per group, the measure's MIN/MAX/QUANTILE_CONT as an exact fraction.

    Only the (at most two) values around the quantile's position leave DuckDB.
    """
    assert measure.fraction is not None
    a, b = measure.fraction
    v = f"v{index}"
    partition = f"PARTITION BY {', '.join(keys)}" if keys else ""
    select_keys = "".join(f"{k}, " for k in keys)
    sql = (
        f"SELECT {select_keys}k, n, {v} FROM ("
        f"SELECT {select_keys}{v}, row_number() OVER ({partition} ORDER BY {v}) - 1 AS k, "
        f"COUNT(*) OVER ({partition}) AS n FROM {source} WHERE {v} IS NOT NULL) "
        f"WHERE k = ({a} * (n - 1)) // {b} OR k = ({a} * (n - 1)) // {b} + 1"
    )
    around: dict[Label, dict[int, int]] = {}
    counts: dict[Label, int] = {}
    width = len(keys)
    for row in run(cursor, sql, qualified):
        label = tuple(label_value(x) for x in row[:width])
        k, n, value = row[width:]
        around.setdefault(label, {})[int(k)] = int(value)
        counts[label] = int(n)
    out = {}
    for label, values in around.items():
        low, rest = divmod(a * (counts[label] - 1), b)
        x_low = values[low]
        x_high = values.get(low + 1, x_low) if rest else x_low
        # QUANTILE_CONT: x_low + (rest / b)·(x_high − x_low), as an exact fraction.
        out[label] = (b * x_low + rest * (x_high - x_low), b)
    return out


@dataclass(frozen=True)
class JoinTable:
    """An owner's side of a join: per key (and group label), its per-key columns."""

    keys: list[bytes]
    labels: list[Label]  # one per row; () when this owner has no group keys
    columns: list[list[int]]  # columns[j][row]
    values: list[list[int | None]] = field(default_factory=list)  # order_sql[j][row]


def key_bytes(value: object) -> bytes:
    """Return the canonical bytes of a join key value (type-tagged: 1 and '1' differ)."""
    if isinstance(value, bool):
        return b"b:" + str(int(value)).encode()
    if isinstance(value, int):
        return b"i:" + str(value).encode()
    if isinstance(value, float) and value.is_integer():
        return b"i:" + str(int(value)).encode()
    return b"s:" + str(label_value(value)).encode()


def join_scan(cursor: Any, table: str, qualified: str, scan: JoinScan) -> JoinTable:
    """Return the owner's per-key columns for a join (rows with a NULL key never join)."""
    # The dataset's own columns stay visible: per-key conditions may read them.
    groups = [f"{sql} AS __g{i}" for i, sql in enumerate(scan.group_sql)]
    keys = [f"__g{i}" for i in range(len(scan.group_sql))]
    values = [f"{sql} AS {name}" for name, sql in scan.value_sql]
    inner = ["*", f'"{scan.key}" AS __join_key', *groups, *values]
    where = [f'"{scan.key}" IS NOT NULL']
    if scan.filter_sql:
        where.append(f"({scan.filter_sql})")
    source = f'(SELECT {", ".join(inner)} FROM "{table}" WHERE {" AND ".join(where)})'
    outer = ["__join_key", *keys, *(c.sql for c in scan.columns), *scan.order_sql]
    grouping = ", ".join(["__join_key", *keys])
    sql = f"SELECT {', '.join(outer)} FROM {source} GROUP BY {grouping}"
    rows = run(cursor, sql, qualified)
    width = 1 + len(keys)
    if scan.one_row_per_key:
        seen = [row[0] for row in rows]
        several = len(set(seen)) != len(seen) or any(row[width] != 1 for row in rows)
        if several:
            raise DataError(
                f"join on {qualified}: a WHERE condition on columns of several agencies, or "
                "MIN, MAX, MEDIAN or QUANTILE_CONT of its values, needs one row per "
                f"{scan.key!r} here, got a key with several rows"
            )
    first = width + len(scan.columns)
    return JoinTable(
        keys=[key_bytes(row[0]) for row in rows],
        labels=[tuple(label_value(v) for v in row[1:width]) for row in rows],
        columns=[
            [int(row[width + j]) if row[width + j] is not None else 0 for row in rows]
            for j in range(len(scan.columns))
        ],
        values=[
            [None if row[first + j] is None else int(row[first + j]) for row in rows]
            for j in range(len(scan.order_sql))
        ],
    )
