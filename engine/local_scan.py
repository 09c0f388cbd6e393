"""The SQL an owner runs in its own DuckDB for a query's plaintext step.

- :func:`aggregate_scan` — per group label, the integer components of every measure:
  counts, sums and sums of squares and products of values scaled to integers, and exact
  order statistics (MIN, MAX, QUANTILE_CONT) as fractions;
- :func:`join_scan` — per join key (and group label), the per-key columns of a join.

DuckDB's own error messages can quote data values, so they are never passed on: errors
name the dataset, the column and the rule instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np

from engine.errors import CapacityError, DataError, QueryError
from engine.labels import Label, key_bytes, label_value
from engine.overlap import ROW_ID, Sketch, power_sums
from engine.plan import JoinScan, Measure, Scan

WIDE_BITS = 126  # a HUGEINT sum holds up to 2**126 per row-sum safely (2**127 - 1 max)


def scaled(column: str, decimals: int) -> str:
    """Return SQL for ``column`` times 10**decimals as a BIGINT.

    Cannot fail: every owner checked at load that |value·10^decimals| < 9.2e18
    (:mod:`engine.published`), and plans never scale a column by more decimals than its own.
    """
    value = f'ROUND("{column}" * {10**decimals})'
    return f"CAST({value} AS BIGINT)"


def guarded(expression: str) -> str:
    """Return ``expression`` evaluated as NULL wherever it would fail on a row.

    An analyst's expressions (filters, group keys) run at the owner; a failure that only
    some rows trigger (a cast, a division by zero, an overflow) would tell the analyst that
    such a row exists. TRY makes it NULL instead: a filter drops the row, a key labels it
    NULL. Type errors fail on an empty table too and are refused before data is read.
    """
    return f"TRY({expression})"


def run(cursor: Any, sql: str, qualified: str) -> list[tuple[Any, ...]]:
    """Run ``sql``; translate DuckDB's errors into engine errors that quote no data."""
    try:
        return list(cursor.execute(sql).fetchall())
    except duckdb.OutOfRangeException:
        raise CapacityError(
            f"scan of {qualified}: a sum is out of range; want |value·10^decimals| < 2^63 "
            "and sums < 2^127 (fewer decimals?)"
        ) from None
    except duckdb.BinderException:
        raise QueryError(
            f"query on {qualified}: the owner could not evaluate it (the types of its "
            "columns and constants do not fit the expression); want comparisons and "
            "arithmetic between compatible types"
        ) from None
    except duckdb.Error as exc:
        raise QueryError(
            f"query on {qualified}: the owner could not evaluate it ({type(exc).__name__}); "
            "want expressions over the dataset's columns"
        ) from None


def hugeint(name: str) -> str:
    """Return SQL casting ``name`` to HUGEINT (sums of scaled values and their products)."""
    return f"CAST({name} AS HUGEINT)"


Terms = list[tuple[str, int]]  # SQL aggregates and the left shift of each: Σ sum << shift


def product_terms(a: str, b: str, condition: str | None, wide: bool) -> Terms:
    """Return terms whose shifted sum is Σ a·b over the rows where ``condition`` holds.

    Narrow: one HUGEINT sum, exact while Σ|a·b| < 2**127. Wide: a = a1·2^32 + a0 (and b
    alike, a0, b0 in [0, 2^32)) so that every partial sum fits a HUGEINT for any BIGINT
    values and up to 2^36 rows; the owner adds them up in Python.
    """
    when = f"CASE WHEN {condition} THEN " if condition else ""
    end = " END" if condition else ""
    h = hugeint
    if not wide:
        return [(f"SUM({when}{h(a)} * {h(b)}{end})", 0)]
    parts = []
    for (x, xs), (y, ys) in (
        ((f"({a} >> 32)", 32), (f"({b} >> 32)", 32)),
        ((f"({a} >> 32)", 32), (f"({b} & 4294967295)", 0)),
        ((f"({a} & 4294967295)", 0), (f"({b} >> 32)", 32)),
        ((f"({a} & 4294967295)", 0), (f"({b} & 4294967295)", 0)),
    ):
        parts.append((f"SUM({when}{h(x)} * {h(y)}{end})", xs + ys))
    return parts


def component_terms(component: str, y: str, x: str | None = None, wide: bool = False) -> Terms:
    """Return the SQL terms of one measure component over the value ``y`` (see Terms).

    Univariate: n = COUNT(y), s = Σy, q = Σy², a = Σ|y|. A pair (y, x) held by one owner
    counts only rows where both are present: n, s = Σx, q = Σx², sy = Σy, syy = Σy²,
    sxy = Σxy.
    """
    h = hugeint
    if x is None:
        if component == "q":
            return product_terms(y, y, None, wide)
        return [
            (
                {"n": f"COUNT({y})", "s": f"SUM({h(y)})", "a": f"SUM(ABS({h(y)}))"}[component],
                0,
            )
        ]
    both = f"({x} IS NOT NULL AND {y} IS NOT NULL)"
    if component in ("q", "syy", "sxy"):
        a, b = {"q": (x, x), "syy": (y, y), "sxy": (x, y)}[component]
        return product_terms(a, b, both, wide)
    return [
        (
            {
                "n": f"SUM(CASE WHEN {both} THEN 1 ELSE 0 END)",
                "s": f"SUM(CASE WHEN {both} THEN {h(x)} END)",
                "sy": f"SUM(CASE WHEN {both} THEN {h(y)} END)",
            }[component],
            0,
        )
    ]


def component_sql(component: str, y: str, x: str | None = None) -> str:
    """Return the single (narrow) SQL aggregate of one component (per-key join columns)."""
    ((sql, _),) = component_terms(component, y, x)
    return sql


@dataclass(frozen=True)
class ScanResult:
    """One scan's output at its owner: per group label, the measures' integer components,
    and, when the owner controls query-set overlap, each part's row-set sketch.

    ``sketches`` are of the rows the filter selects (what COUNT(*) counts); ``supports``
    those of the rows a measure over nullable columns aggregates (its columns not NULL),
    keyed by those columns: a SUM over a nullable column reads fewer rows than the filter
    selects, and two queries could otherwise differ in those rows only.
    """

    partials: dict[Label, list[int]]
    sketches: dict[Label, Sketch]
    supports: dict[tuple[str, ...], dict[Label, Sketch]] = field(default_factory=dict)
    reads: tuple[tuple[str, ...], ...] = ()  # per measure: its key in supports, or ()


def aggregate_scan(
    cursor: Any,
    table: str,
    qualified: str,
    scan: Scan,
    measures: Sequence[Measure],
    *,
    wide: Callable[[str, str], bool] = lambda a, b: False,
    sketch: int = 0,
    nullable: frozenset[str] = frozenset(),
) -> ScanResult:
    """Return, per group label, the integer components of every measure (plan order).

    ``wide(a, b)`` says whether Σ a·b over the owner's columns a, b could leave a HUGEINT
    (the owner knows its magnitudes privately); ``sketch`` is the number of power sums of
    each part's row set to compute (0: none; :mod:`engine.overlap`), for the filter's rows
    and for each measure's rows where it reads a ``nullable`` column.
    """
    groups = [f"{guarded(sql)} AS g{i}" for i, sql in enumerate(scan.group_sql)]
    keys = [f"g{i}" for i in range(len(scan.group_sql))]
    inner = list(groups) + ([ROW_ID] if sketch else [])
    outer = list(keys)
    layout: list[list[int]] = []  # per component: the shifts of its terms, in order
    for i, (measure, (column, second)) in enumerate(
        zip(measures, scan.measure_columns, strict=True)
    ):
        expression = scan.measure_sql[i] if scan.measure_sql else None
        if expression is not None:  # a row expression: unscaled if only counted
            value = f"({expression})"
            if not measure.counted_only:
                value = f"CAST(ROUND({value} * {10**measure.decimals}) AS BIGINT)"
            # Under TRY, like the analyst's filters and keys: a row whose value fails (an
            # overflow past 2^63 at its scale) counts as NULL instead of failing the query,
            # which would tell the analyst that such a row exists.
            inner.append(f"{guarded(value)} AS v{i}")
            column = ""  # its magnitude is unknown: products are summed wide
        elif column is not None and measure.counted_only:
            inner.append(f'"{column}" AS v{i}')
        elif column is not None:
            inner.append(f"{scaled(column, measure.decimals)} AS v{i}")
        if second is not None:
            inner.append(f"{scaled(second, measure.second_decimals)} AS w{i}")
        for terms in _components(i, measure, column, second, wide):
            outer.extend(sql for sql, _ in terms)
            layout.append([shift for _, shift in terms])
    where = f" WHERE {guarded(scan.filter_sql)}" if scan.filter_sql else ""
    source = f'(SELECT {", ".join(inner) or "1 AS one"} FROM "{table}"{where})'
    sql = f"SELECT {', '.join(outer)} FROM {source}"
    if keys:
        sql += f" GROUP BY {', '.join(keys)}"
    width = len(keys)
    partials: dict[Label, list[int]] = {}
    sketches: dict[Label, Sketch] = {}
    for row in run(cursor, sql, qualified):
        label = tuple(label_value(v) for v in row[:width])
        values = [int(v) if v is not None else 0 for v in row[width:]]
        components, position = [], 0
        for shifts in layout:
            components.append(sum(values[position + j] << s for j, s in enumerate(shifts)))
            position += len(shifts)
        partials[label] = components
    offset = 0
    for i, measure in enumerate(measures):
        if measure.order is not None:
            fractions = order_statistics(cursor, source, keys, i, measure, qualified)
            for label, (num, den) in fractions.items():
                if label in partials:
                    partials[label][offset + 1] = num
                    partials[label][offset + 2] = den
        offset += len(measure.components)
    if sketch:
        wanted = measure_supports(scan, nullable)
        found = part_sketches(cursor, source, keys, sketch, qualified, ["", *wanted.values()])
        sketches = found[0]
        if set(sketches) != set(partials):  # the two paths must label rows alike
            raise QueryError(
                f"scan of {qualified}: the overlap sketches' groups differ from the "
                "aggregates' (an internal error); want the same labels"
            )
        supports = dict(zip(wanted, found[1:], strict=True))
        reads = tuple(measure_support(scan, i, nullable) for i in range(len(measures)))
        return ScanResult(partials, sketches, supports, reads)
    return ScanResult(partials, sketches)


def measure_supports(scan: Scan, nullable: frozenset[str]) -> dict[tuple[str, ...], str]:
    """Return, per distinct row set that some measure reads and that can be smaller than
    the filter's (it reads a nullable column, or an expression: NULL where the analyst's
    CASE or FILTER says), the SQL over the scan's inner aliases that selects those rows."""
    out: dict[tuple[str, ...], str] = {}
    for i in range(len(scan.measure_columns)):
        key, present = _support(scan, i, nullable)
        if key and key not in out:
            out[key] = present
    return out


def measure_support(scan: Scan, measure: int, nullable: frozenset[str]) -> tuple[str, ...]:
    """Return the key of the row set measure ``measure`` of ``scan`` reads (() for the
    filter's rows): its nullable columns, sorted, or its expression's text."""
    return _support(scan, measure, nullable)[0]


def _support(scan: Scan, i: int, nullable: frozenset[str]) -> tuple[tuple[str, ...], str]:
    column, second = scan.measure_columns[i]
    expression = scan.measure_sql[i] if scan.measure_sql else None
    key: list[str] = []
    present: list[str] = []
    if expression is not None:
        key.append(f"({expression})")
        present.append(f"v{i} IS NOT NULL")
    elif column is not None and column in nullable:
        key.append(column)
        present.append(f"v{i} IS NOT NULL")
    if second is not None and second in nullable:
        key.append(second)
        present.append(f"w{i} IS NOT NULL")
    return tuple(key), " AND ".join(present)


def part_sketches(
    cursor: Any,
    source: str,
    keys: list[str],
    terms: int,
    qualified: str,
    presents: Sequence[str] = ("",),
) -> list[dict[Label, Sketch]]:
    """Return, per condition of ``presents`` ("" for all rows), each group's row-set sketch
    (engine.overlap) of the rows where it holds, from the row identities: one pass."""
    select_keys = "".join(f"{k}, " for k in keys)
    lists = ", ".join(
        f"list({ROW_ID}) FILTER (WHERE {p})" if p else f"list({ROW_ID})" for p in presents
    )
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    sql = f"SELECT {select_keys}{lists} FROM {source}{group}"
    try:
        columns = cursor.execute(sql).fetchnumpy()
    except duckdb.Error:
        raise QueryError(
            f"query on {qualified}: the owner could not list its rows for overlap control"
        ) from None
    names = list(columns)
    width = len(keys)
    labels = [
        tuple(label_value(_plain(columns[names[j]][i])) for j in range(width))
        for i in range(len(columns[names[width]]))
    ]
    out: list[dict[Label, Sketch]] = []
    for column in names[width:]:
        parts: dict[Label, Sketch] = {}
        for label, identities in zip(labels, columns[column], strict=True):
            # No row (an empty filter, or none where the condition holds): NULL, masked.
            empty = identities is None or identities is np.ma.masked
            ids = np.zeros(0, dtype=np.uint64) if empty else np.asarray(identities, np.uint64)
            parts[label] = Sketch(len(ids), power_sums(ids, terms))
        out.append(parts)
    return out


def _plain(value: Any) -> object:
    """Return a numpy scalar as the Python value DuckDB's fetchall would give."""
    if value is None or value is np.ma.masked:
        return None
    return value.item() if hasattr(value, "item") else value


def _components(
    index: int,
    measure: Measure,
    column: str | None,
    second: str | None,
    wide: Callable[[str, str], bool],
) -> list[Terms]:
    """Return the terms of one measure's components, over values v{index}/w{index}."""
    v = f"v{index}"
    if measure.column is None:
        return [[("COUNT(*)", 0)]]
    if measure.order is not None:
        return [[(f"COUNT({v})", 0)], [("0", 0)], [("0", 0)]]  # see order_statistics()
    if measure.distinct:
        return [[(f"COUNT(DISTINCT {v})", 0)]]
    w = f"w{index}" if measure.second is not None else None
    out = []
    for component in measure.components:
        if component == "t":  # the dominance rule's top-n contributions, in the same pass
            top = (measure.dominance or (1, 0))[0]
            magnitude = f"ABS(CAST({v} AS HUGEINT))"
            sql = f"MAX({magnitude})" if top == 1 else f"list_sum(max({magnitude}, {top}))"
            out.append([(sql, 0)])
            continue
        pair = {"q": (second, second), "syy": (column, column), "sxy": (second, column)}
        a, b = pair.get(component, (None, None)) if w is not None else (column, column)
        is_wide = component in ("q", "syy", "sxy") and wide(a or "", b or "")
        out.append(component_terms(component, v, w, is_wide))
    return out


def top_sums(
    cursor: Any,
    source: str,
    keys: list[str],
    index: int,
    top: int,
    qualified: str,
    value: str | None = None,
) -> list[tuple[Label, int]]:
    """Return, per group, the sum of the ``top`` largest |v| (the dominance rule's input);
    v is ``v{index}`` or the column ``value``."""
    v = value or f"v{index}"
    partition = f"PARTITION BY {', '.join(keys)}" if keys else ""
    select_keys = "".join(f"{k}, " for k in keys)
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    sql = (
        f"SELECT {select_keys}SUM(m) FROM (SELECT {select_keys}ABS(CAST({v} AS HUGEINT)) AS m, "
        f"row_number() OVER ({partition} ORDER BY ABS(CAST({v} AS HUGEINT)) DESC) AS r "
        f"FROM {source} WHERE {v} IS NOT NULL) WHERE r <= {top}{group}"
    )
    width = len(keys)
    return [
        (tuple(label_value(x) for x in row[:width]), int(row[width] or 0))
        for row in run(cursor, sql, qualified)
    ]


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
    tops: dict[tuple[int, Label], int] = field(default_factory=dict)  # (measure, own label)


def join_scan(cursor: Any, table: str, qualified: str, scan: JoinScan) -> JoinTable:
    """Return the owner's per-key columns for a join (rows with a NULL key never join)."""
    # The dataset's own columns stay visible: per-key conditions may read them.
    groups = [f"{guarded(sql)} AS __g{i}" for i, sql in enumerate(scan.group_sql)]
    keys = [f"__g{i}" for i in range(len(scan.group_sql))]
    values = [f"{sql} AS {name}" for name, sql in scan.value_sql]
    inner = ["*", f'"{scan.key}" AS __join_key', *groups, *values]
    where = [f'"{scan.key}" IS NOT NULL']
    if scan.filter_sql:
        where.append(guarded(scan.filter_sql))
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
    tops: dict[tuple[int, Label], int] = {}
    for measure, value, count in scan.tops:
        for label, top in top_sums(cursor, source, keys, -1, count, qualified, value):
            tops[(measure, label)] = top
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
        tops=tops,
    )
