"""Lay out a batch of planned queries as one MPC job, and a party's inputs to it.

Every party computes the same layout from the same plans and group domains, so input
positions and released cells line up without ever being sent. Per query, the input vector
is group-major (for each group, each measure's components) and the released cells are
group-major too (for each group, each aggregate output in SELECT order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.cells import KIND_OF, CellKind, field_bits
from engine.errors import CapacityError
from engine.local_scan import Label
from engine.mpc.job import COMPONENTS, CellProgram, MpcJob
from engine.plan import QueryPlan

MAX_CELLS_PER_JOB = 2_000_000


@dataclass(frozen=True)
class QuerySlot:
    """Where one query's inputs and cells sit in the batch job."""

    plan: QueryPlan
    groups: tuple[Label, ...]
    input_offset: int
    input_length: int
    cell_offset: int
    cell_count: int


def layout(
    job_id: str, items: Sequence[tuple[QueryPlan, Sequence[Label]]]
) -> tuple[MpcJob, list[QuerySlot]]:
    """Return the job and the per-query slots for ``items`` (plan, agreed groups).

    Raises CapacityError when the batch would release more than MAX_CELLS_PER_JOB cells.
    """
    kinds: list[CellKind] = []
    totals: list[tuple[int, int, int, int, int, int]] = []
    min_size: list[int] = []
    slots = []
    offset = 0
    for plan, groups in items:
        outputs = plan.aggregate_outputs()
        cell_offset = len(kinds)
        for g in range(len(groups)):
            for output in outputs:
                assert output.function is not None and output.measure is not None
                measure = plan.measures[output.measure]
                kinds.append(KIND_OF[output.function])
                totals.append(
                    tuple(  # type: ignore[arg-type]
                        offset + plan.component_index(g, output.measure, c)
                        if c in measure.components
                        else -1
                        for c in COMPONENTS
                    )
                )
                min_size.append(plan.min_group_size)
        length = len(groups) * plan.components_per_group
        slots.append(
            QuerySlot(plan, tuple(groups), offset, length, cell_offset, len(kinds) - cell_offset)
        )
        offset += length
    if len(kinds) > MAX_CELLS_PER_JOB:
        raise CapacityError(
            f"batch: got {len(kinds)} result cells, want at most {MAX_CELLS_PER_JOB} "
            "(fewer groups or aggregates)"
        )
    program = CellProgram(tuple(kinds), tuple(totals), tuple(min_size))
    return MpcJob(job_id, field_bits(set(kinds)), offset, program), slots


def local_inputs(slot: QuerySlot, partials: Sequence[dict[Label, list[int]]]) -> list[int]:
    """Return this party's input vector for one query from its scans' partial aggregates.

    ``partials`` holds, for each of this party's scans of the query, the components per
    group label (in the order of the plan's measures). Labels outside the agreed groups
    cannot occur: the groups are the union of every owner's labels.
    """
    width = slot.plan.components_per_group
    vector = [0] * slot.input_length
    position = {label: g for g, label in enumerate(slot.groups)}
    for scan_partials in partials:
        for label, components in scan_partials.items():
            g = position[label]
            base = g * width
            for k, value in enumerate(components):
                vector[base + k] += value
    return vector
