"""Lay out a join query as a JoinJob, and each owner's side of it.

Every party derives the same job from the plan, the agreed groups and the padded length:
party indices, widths, which column of each owner multiplies into each total, and the
released cells. An owner's side has one row per join key and, when the owner holds group
keys, one column per (per-key column, own group label): each row's values sit in the column
of its label and are 0 in the others.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from engine import cross_filter
from engine.cells import VALUE_BITS
from engine.errors import CapacityError, PeerError
from engine.labels import Label, label_sort_key
from engine.local_scan import JoinTable
from engine.mpc._join_overlap import MASK_BITS, OVERLAP_BITS
from engine.mpc.job import (
    COMPARE_BITS,
    CellProgram,
    JoinInput,
    JoinJob,
    JoinOverlap,
    OrderJob,
    cells_field_bits,
)
from engine.mpc.layout import plan_cells
from engine.plan import JoinOrder, JoinPlan

DUMMIES = 100
EPSILON = (1, 2)
MAX_JOIN_CELLS = 100_000


def _project(label: Label, slots: Sequence[int]) -> Label:
    return tuple(label[s] for s in slots)


def own_labels(plan: JoinPlan, groups: Sequence[Label]) -> list[list[Label]]:
    """Return, per scan, the distinct projections of the groups onto its group keys."""
    out: list[list[Label]] = []
    for scan in plan.scans:
        if not scan.group_slots:
            out.append([()])
            continue
        labels = {_project(g, scan.group_slots) for g in groups}
        out.append(sorted(labels, key=label_sort_key))
    return out


def padded_length(row_bounds: Sequence[int]) -> int:
    """Return N: room for the largest table (its size rounded up to a power of two by its
    owner) plus the dummies, rounded up to a multiple of 1024."""
    need = max(row_bounds, default=0) + 2 * DUMMIES
    return -(-need // 1024) * 1024


def join_job(
    job_id: str,
    plan: JoinPlan,
    groups: Sequence[Label],
    length: int,
    parties: Sequence[str],
    overlap: tuple[int, int] = (0, 0),
) -> JoinJob:
    """Return the job every party runs for this join query.

    ``overlap`` is (m, W) for overlap control (:class:`JoinOverlap`); m < 2 for none.
    """
    index = {name: i for i, name in enumerate(parties)}
    owners = [index[scan.party] for scan in plan.scans]
    outsiders = [i for i in range(len(parties)) if i not in owners]
    if len(owners) == 2:
        if not outsiders:
            raise PeerError("join: got no party outside the join to help it, want at least 3")
        helpers = [outsiders[0]]
    else:
        helpers = [owners[2], owners[1]]  # A–B helped by C, A–C by B: docs/join-protocol.md
    labels = own_labels(plan, groups)
    offsets = [_offsets(plan, j, len(labels[j])) for j in range(len(plan.scans))]
    widths = [offsets[j][-1] for j in range(len(plan.scans))]
    position = [{label: i for i, label in enumerate(ls)} for ls in labels]

    def column(scan: int, base: int, group: Label) -> int:
        start = offsets[scan][base]
        if not plan.scans[scan].columns[base].grouped:
            return start
        return start + position[scan][_project(group, plan.scans[scan].group_slots)]

    terms = []
    for group in groups:
        for term in plan.terms:
            terms.append(tuple(column(j, base, group) for j, base in enumerate(term)))
    kinds, totals, sizes, dominance = plan_cells(plan)
    if len(kinds) > MAX_JOIN_CELLS:
        raise CapacityError(
            f"join: got {len(kinds)} result cells, want at most {MAX_JOIN_CELLS} (fewer groups)"
        )
    orders = tuple(
        _order_job(plan, order, groups, labels, offsets, length) for order in plan.orders
    )
    bits = join_bits(plan, length, orders)
    cells = CellProgram(tuple(kinds), tuple(totals), tuple(sizes), tuple(dominance))
    control = None
    if overlap[0] >= 2 and plan.release == "exact":
        control = _overlap(plan, cells, tuple(terms), offsets, length, overlap)
        # At least the overlap field's bits: a join field of exactly OVERLAP_BITS is the
        # overlap field, so the spokes' factors need no conversion (the common case).
        bits = max(bits, max(control.bits, default=0) + MASK_BITS + 4, OVERLAP_BITS)
    return JoinJob(
        job_id=job_id,
        field_bits=max(cells_field_bits(cells), bits),
        join_bits=bits,
        hub=owners[0],
        hub_width=widths[0],
        spokes=tuple(
            (owner, helper, width)
            for owner, helper, width in zip(owners[1:], helpers, widths[1:], strict=True)
        ),
        padded_length=length,
        noise=(DUMMIES, *EPSILON),
        terms=tuple(terms),
        cells=cells,
        row_filter=_side_columns(plan.row_filter, offsets),
        orders=orders,
        noisy=plan.release == "dp",
        from_extras=tuple(
            plan.component_index(g, m, "t")
            for g in range(len(groups))
            for m, measure in enumerate(plan.measures)
            if "t" in measure.components
        ),
        overlap=control,
    )


def _overlap(
    plan: JoinPlan,
    cells: CellProgram,
    terms: tuple[tuple[int, ...], ...],
    offsets: list[list[int]],
    length: int,
    overlap: tuple[int, int],
) -> JoinOverlap:
    """Lay out overlap control: one sketch per distinct count term of the cells."""
    rows = length.bit_length()

    def factor_bits(term: tuple[int, ...]) -> int:
        total = 0
        for j, column in enumerate(term[1:], start=1):
            base = max(b for b, start in enumerate(offsets[j][:-1]) if start <= column)
            total += plan.scans[j].columns[base].bits + rows  # a count per key < N
        return total

    sketches: list[tuple[int, ...]] = []
    sizes: list[int] = []
    cell_sketch = []
    for c, where in enumerate(cells.totals):
        term = terms[where[0]]
        if term not in sketches:
            sketches.append(term)
            sizes.append(cells.min_size[c])
        cell_sketch.append(sketches.index(term))
    return JoinOverlap(
        minimum=overlap[0],
        window=overlap[1],
        sketches=tuple(sketches),
        bits=tuple(factor_bits(t) for t in sketches),
        sizes=tuple(sizes),
        cell_sketch=tuple(cell_sketch),
    )


def join_bits(plan: JoinPlan, length: int, orders: Sequence[OrderJob]) -> int:
    """Return the bit length of the join's secure integers: room for every total, the
    cross-agency comparisons and the order statistics, and no more (a smaller field makes
    the join and the order statistics cheaper).

    A total Σ_rows Π_owners x is at most Π_owners Σ_rows |x| < Π 2^bits·N (every table has
    fewer than N rows, so a key has fewer than N rows too).
    """
    rows = length.bit_length()
    need = max(
        sum(plan.scans[j].columns[c].bits + rows for j, c in enumerate(term)) for term in plan.terms
    )
    need += 1  # the sign
    if plan.row_filter and cross_filter.comparisons(json.loads(plan.row_filter)):
        need = max(need, COMPARE_BITS + 1)
    for order in orders:
        widest = max(b for _, _, b in order.requests).bit_length()
        need = max(
            need,
            VALUE_BITS + widest + 1,  # the numerators
            order.count_bits + widest + 1,  # the rank comparisons
            # the residues' masked openings: field bits (l + k + 2) >= residue bits + k + 4
            order.count_bits + widest + 1 + 2,
        )
    return need


def _order_job(
    plan: JoinPlan,
    order: JoinOrder,
    groups: Sequence[Label],
    labels: list[list[Label]],
    offsets: list[list[int]],
    length: int,
) -> OrderJob:
    """Lay out the order statistics of one hub value column (see :class:`OrderJob`)."""

    def spread(scan: int, base: int) -> tuple[int, ...]:
        start = offsets[scan][base]
        if not plan.scans[scan].columns[base].grouped:
            return (start,)
        return tuple(range(start, start + len(labels[scan])))

    grouping = [j for j, scan in enumerate(plan.scans) if scan.group_slots]
    spoke_weight: list[int | None] = [offsets[j][0] for j in range(1, len(plan.scans))]
    group_columns: tuple[int, ...] = ()
    if grouping and grouping[0] > 0:
        owner = grouping[0]
        if not plan.scans[owner].columns[0].grouped:
            raise PeerError("join: the grouping owner's count is not per group, want it so")
        spoke_weight[owner - 1] = None
        group_columns = spread(owner, 0)
    measures = [plan.measures[m] for m in order.measures]
    requests = []
    for measure in measures:
        assert measure.order is not None and measure.fraction is not None
        requests.append((measure.order, *measure.fraction))
    slots = tuple(
        tuple(
            (plan.component_index(g, m, "s"), plan.component_index(g, m, "q"))
            for m in order.measures
        )
        for g in range(len(groups))
    )
    return OrderJob(
        value=order.value,
        hub_weight=spread(0, order.count),
        spoke_weight=tuple(spoke_weight),
        group_columns=group_columns,
        labels=len(labels[0]) if grouping == [0] else 0,
        requests=tuple(requests),
        slots=slots,
        # Σ weights <= Π over spokes of their table sizes (each < N): a true bound.
        count_bits=max(1, (len(plan.scans) - 1) * length.bit_length()),
    )


def _offsets(plan: JoinPlan, scan: int, spread: int) -> list[int]:
    """Return where each per-key column of a scan starts in its side (and the width last):
    a grouped column takes one slot per own label, an ungrouped one a single slot."""
    out = [0]
    for column in plan.scans[scan].columns:
        out.append(out[-1] + (spread if column.grouped else 1))
    return out


def _side_columns(row_filter: str, offsets: list[list[int]]) -> str:
    """Return the row filter with per-key column indices replaced by side columns."""
    if not row_filter:
        return ""

    def remap(node: list[Any]) -> list[Any]:
        if node[0] == "bit":
            return ["bit", node[1], offsets[node[1]][node[2]]]
        if node[0] == "cmp":
            return [
                "cmp",
                node[1],
                *([s[0], offsets[s[0]][s[1]], offsets[s[0]][s[2]]] for s in node[2:]),
            ]
        return [node[0], *(remap(child) for child in node[1:])]

    return json.dumps(remap(json.loads(row_filter)))


def join_input(
    plan: JoinPlan, scan_index: int, table: JoinTable, groups: Sequence[Label]
) -> JoinInput:
    """Return this owner's side: one row per key, its columns spread over its own labels."""
    scan = plan.scans[scan_index]
    labels = own_labels(plan, groups)[scan_index]
    position = {label: i for i, label in enumerate(labels)}
    offsets = _offsets(plan, scan_index, len(labels))
    width = offsets[-1]
    rows: dict[bytes, list[int]] = {}
    for r, key in enumerate(table.keys):
        row = rows.setdefault(key, [0] * width)
        label = position[table.labels[r]] if scan.group_slots else 0
        for j, values in enumerate(table.columns):
            row[offsets[j] + (label if scan.columns[j].grouped else 0)] += values[r]
    keys = tuple(rows)
    columns = tuple(tuple(rows[k][c] for k in keys) for c in range(width))
    extras = join_extras(plan, scan_index, table, groups)
    if scan_index != 0 or not plan.orders:
        return JoinInput(keys, columns, extras=extras)
    # The hub of order statistics has one row per key (checked by its scan).
    per_key = tuple(tuple(v or 0 for v in column) for column in table.values)
    own = tuple(position[label] if scan.group_slots else 0 for label in table.labels)
    return JoinInput(keys, columns, per_key, own, extras)


def join_extras(
    plan: JoinPlan, scan_index: int, table: JoinTable | None, groups: Sequence[Label]
) -> tuple[int, ...]:
    """Return this party's additive inputs to every total of a join (mostly 0).

    The owner of a SUM or AVG's column under a dominance rule gives each group's top-n
    sum over its own filtered rows in that group (it cannot know which of them joined: an
    upper bound on the joined rows' top), or over all its filtered rows when another owner
    labels the groups.
    """
    extras = [0] * (len(groups) * plan.components_per_group)
    if table is None or not table.tops:  # scan_index -1: a party with no side
        return tuple(extras)
    scan = plan.scans[scan_index]
    for g, group in enumerate(groups):
        label = _project(group, scan.group_slots) if scan.group_slots else ()
        for m in range(len(plan.measures)):
            top = table.tops.get((m, label))
            if top is not None:
                extras[plan.component_index(g, m, "t")] = top
    return tuple(extras)
