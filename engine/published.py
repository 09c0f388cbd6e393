"""What an owner checks in its data at start-up, and the few facts about it that it publishes.

Everything a query may later fail on is checked here, once, before any query runs, so that
no refusal or error a query gets can depend on the data it reads (an analyst could
otherwise learn one bit per query from whether a row exists that makes it fail):

- every value of a group_by column lies in its domain (the declared labels or range);
- every value of an aggregate column lies in its declared ``bounds``, and, scaled by
  ``10**decimals``, fits a signed 64-bit integer (the form in which owners sum values);
- the column types match the policy (aggregate columns are numeric).

A problem makes the dataset unavailable with a message that names the column and the first
offending data row, never a value. What is published per column (in the catalogue, hashed
on the ledger) is the declared policy plus facts read from the data, each a deliberate and
documented disclosure: whether the column holds a NULL, whether a join key is unique, and,
for ``domain = "data"``, the column's distinct values. Row counts are not published.
"""

from __future__ import annotations

from typing import Any

import duckdb

from engine.catalog import DEFAULT_FLOAT_DECIMALS, ColumnInfo, ColumnType, LabelValue
from engine.config import MAX_DOMAIN_LABELS, ColumnConfig, ColumnPolicy, DomainSpec
from engine.errors import DataError
from engine.labels import label_value, value_sort_key

MAX_SCALED = 9.2e18  # just below 2**63: a scaled value must fit a BIGINT


def _first_row(db: Any, table: str, condition: str) -> int | None:
    """Return the 1-based data row of the first row where ``condition`` holds (or None)."""
    row = db.execute(
        f'SELECT r FROM (SELECT row_number() OVER () AS r, * FROM "{table}") '
        f"WHERE {condition} ORDER BY r LIMIT 1"
    ).fetchone()
    return None if row is None else int(row[0])


def column_info(
    db: Any, table: str, qualified: str, column: ColumnConfig, kind: ColumnType
) -> ColumnInfo:
    """Check one loaded column against its policy; return what is published about it.

    Raises DataError naming the column and the first offending data row.
    """
    name = column.name
    quoted = f'"{name}"'
    decimals = column.decimals
    if decimals is None:
        decimals = 0 if kind is ColumnType.INTEGER else DEFAULT_FLOAT_DECIMALS
    if not kind.numeric:
        decimals = 0
    if column.policy is ColumnPolicy.AGGREGATE and not kind.numeric:
        where = _first_row(
            db, table, f"{quoted} IS NOT NULL AND TRY_CAST({quoted} AS DOUBLE) IS NULL"
        )
        raise DataError(
            f"dataset {qualified}: column {name!r} is an aggregate column but holds "
            f"{kind.value} values{_at(where)}; want numbers or empty cells"
        )
    (count, present) = db.execute(f'SELECT COUNT(*), COUNT({quoted}) FROM "{table}"').fetchone()
    nullable = present < count
    if kind.numeric and column.policy in (ColumnPolicy.AGGREGATE, ColumnPolicy.GROUP_BY):
        where = _first_row(db, table, f"ABS(ROUND({quoted} * {10**decimals})) >= {MAX_SCALED}")
        if where is not None:
            raise DataError(
                f"dataset {qualified}: column {name!r} holds a value that, times "
                f"10^{decimals}, is out of range{_at(where)}; want |value·10^decimals| < "
                "9.2e18 (fewer decimals?)"
            )
    if column.bounds is not None:
        low, high = column.bounds
        where = _first_row(db, table, f"{quoted} < {low!r} OR {quoted} > {high!r}")
        if where is not None:
            raise DataError(
                f"dataset {qualified}: column {name!r} holds a value outside its declared "
                f"bounds [{low:g}, {high:g}]{_at(where)}; want every value within the bounds"
            )
    domain = None
    if column.domain is not None:
        domain = _domain(db, table, qualified, name, kind, column.domain)
    unique = False
    if column.policy is ColumnPolicy.JOIN_KEY:
        (distinct,) = db.execute(f'SELECT COUNT(DISTINCT {quoted}) FROM "{table}"').fetchone()
        unique = distinct == present
    return ColumnInfo(
        name,
        kind,
        column.policy,
        decimals,
        nullable=nullable,
        domain=domain,
        bounds=column.bounds,
        order_statistics=column.order_statistics,
        unique=unique,
    )


def _at(row: int | None) -> str:
    return "" if row is None else f" (first at data row {row})"


def _domain(
    db: Any, table: str, qualified: str, name: str, kind: ColumnType, spec: DomainSpec
) -> tuple[LabelValue, ...]:
    """Return a group_by column's labels (sorted), checking that the data lies in them."""
    quoted = f'"{name}"'
    if spec.kind == "data":
        rows = db.execute(
            f'SELECT DISTINCT {quoted} FROM "{table}" WHERE {quoted} IS NOT NULL'
        ).fetchall()
        if len(rows) > MAX_DOMAIN_LABELS:
            raise DataError(
                f'dataset {qualified}: column {name!r} with domain = "data" holds '
                f"{len(rows)} distinct values, want at most {MAX_DOMAIN_LABELS} (declare a "
                "bucketed column instead)"
            )
        labels: list[LabelValue] = []
        for (raw,) in rows:
            value = label_value(raw)
            assert value is None or isinstance(value, str | int | float | bool)
            labels.append(value)
        return tuple(sorted(labels, key=value_sort_key))
    if spec.kind == "range":
        if kind is not ColumnType.INTEGER:
            raise DataError(
                f"dataset {qualified}: column {name!r} has a range domain but holds "
                f"{kind.value} values; want integers (or list the labels)"
            )
        where = _first_row(db, table, f"{quoted} < {spec.low} OR {quoted} > {spec.high}")
        if where is not None:
            raise DataError(
                f"dataset {qualified}: column {name!r} holds a value outside its domain "
                f"{spec.low}..{spec.high}{_at(where)}; want every value in the domain"
            )
        return tuple(range(spec.low, spec.high + 1))
    values = tuple(_coerce(qualified, name, kind, v) for v in spec.values)
    try:
        relation = db.execute(
            f'SELECT * FROM (SELECT row_number() OVER () AS r, {quoted} AS v FROM "{table}") '
            "WHERE v IS NOT NULL AND v NOT IN (SELECT unnest(?)) ORDER BY r LIMIT 1",
            [list(values)],
        )
        row = relation.fetchone()
    except duckdb.Error:
        raise DataError(
            f"dataset {qualified}: column {name!r}: its domain's labels do not compare with "
            f"its {kind.value} values; want labels of the column's type"
        ) from None
    if row is not None:
        raise DataError(
            f"dataset {qualified}: column {name!r} holds a value outside its declared domain "
            f"({len(values)} labels){_at(int(row[0]))}; want every value in the domain (add "
            'it, or use domain = "data")'
        )
    return tuple(sorted(values, key=value_sort_key))


def _coerce(qualified: str, name: str, kind: ColumnType, value: object) -> LabelValue:
    """Return a declared label as a value of the column's type (as scans return labels)."""
    if kind is ColumnType.TEXT or kind is ColumnType.DATE:
        if isinstance(value, str):
            return value
    elif kind is ColumnType.BOOLEAN:
        if isinstance(value, bool):
            return value
    elif kind is ColumnType.INTEGER:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif (
        kind is ColumnType.FLOAT and isinstance(value, int | float) and not isinstance(value, bool)
    ):
        return float(value)
    raise DataError(
        f"dataset {qualified}: column {name!r} is {kind.value} but its domain lists a "
        f"{type(value).__name__} label; want labels of the column's type"
    )
