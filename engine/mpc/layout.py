"""Lay out a batch of planned queries as one MPC job, and a party's inputs to it.

Every party computes the same layout from the same plans (whose groups are public), so
input positions and released cells line up without ever being sent. Per query, the input vector
is group-major (for each group, each measure's components) and the released cells are
group-major too (for each group, each aggregate output in SELECT order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.cells import KIND_OF, CellKind
from engine.errors import CapacityError
from engine.labels import Label
from engine.mpc.job import COMPONENTS, CellProgram, MpcJob, cells_field_bits
from engine.noise import alpha_of, party_noise
from engine.plan import Plan, QueryPlan

MAX_CELLS_PER_JOB = 2_000_000


@dataclass(frozen=True)
class QuerySlot:
    """Where one query's inputs and cells sit in the batch job."""

    plan: QueryPlan
    input_offset: int
    input_length: int
    cell_offset: int
    cell_count: int

    @property
    def groups(self) -> tuple[Label, ...]:
        return self.plan.groups


def plan_cells(
    plan: Plan, offset: int = 0
) -> tuple[list[CellKind], list[tuple[int, ...]], list[int], list[int]]:
    """Return a plan's released cells, group-major: kinds, total positions, minimum sizes
    and dominance percentages (0: none), with total positions shifted by ``offset``.

    Exact: per group, each aggregate output in SELECT order. DP: per group, each noisy
    total (a count or a sum), released as it is (the client computes the outputs).
    """
    kinds: list[CellKind] = []
    totals: list[tuple[int, ...]] = []
    sizes: list[int] = []
    dominance: list[int] = []
    for g in range(len(plan.groups)):
        if plan.release == "dp":
            for noisy in plan.noisy:
                where = [-1] * len(COMPONENTS)
                slot = 0 if noisy.component == "n" else 1  # COUNT reads n, SUM reads s
                where[slot] = offset + plan.component_index(g, noisy.measure, noisy.component)
                kinds.append(CellKind.COUNT if noisy.component == "n" else CellKind.SUM)
                totals.append(tuple(where))
                sizes.append(0)  # noisy, not suppressed
                dominance.append(0)
            continue
        for output in plan.aggregate_outputs():
            assert output.function is not None and output.measure is not None
            measure = plan.measures[output.measure]
            kind = KIND_OF[output.function]
            kinds.append(kind)
            totals.append(
                tuple(
                    offset + plan.component_index(g, output.measure, c)
                    if c in measure.components
                    else -1
                    for c in COMPONENTS
                )
            )
            sizes.append(plan.min_group_size)
            ruled = measure.dominance is not None and kind in (CellKind.SUM, CellKind.AVG)
            dominance.append(measure.dominance[1] if ruled and measure.dominance else 0)
    return kinds, totals, sizes, dominance


def layout(job_id: str, plans: Sequence[QueryPlan]) -> tuple[MpcJob, list[QuerySlot]]:
    """Return the job and the per-query slots for ``plans`` (groups from each plan).

    Raises CapacityError when the batch would release more than MAX_CELLS_PER_JOB cells.
    """
    kinds: list[CellKind] = []
    totals: list[tuple[int, ...]] = []
    min_size: list[int] = []
    dominance: list[int] = []
    slots = []
    offset = 0
    for plan in plans:
        cell_offset = len(kinds)
        k, t, m, d = plan_cells(plan, offset)
        kinds += k
        totals += t
        min_size += m
        dominance += d
        length = len(plan.groups) * plan.components_per_group
        slots.append(QuerySlot(plan, offset, length, cell_offset, len(kinds) - cell_offset))
        offset += length
    if len(kinds) > MAX_CELLS_PER_JOB:
        raise CapacityError(
            f"batch: got {len(kinds)} result cells, want at most {MAX_CELLS_PER_JOB} "
            "(fewer groups or aggregates)"
        )
    program = CellProgram(tuple(kinds), tuple(totals), tuple(min_size), tuple(dominance))
    return MpcJob(job_id, cells_field_bits(program), offset, program), slots


def noise_inputs(plan: Plan, honest: int, offset: int = 0) -> dict[int, int]:
    """Return this party's noise part for every noisy total of a dp plan, by position.

    ``honest`` is h = parties − threshold (engine.noise): each part is a difference of two
    Pólya(1/h) draws, so that any h parties' parts sum to the full discrete-Laplace noise.
    """
    out: dict[int, int] = {}
    for noisy in plan.noisy:
        alpha = alpha_of(noisy.epsilon, noisy.sensitivity)
        parts = party_noise(alpha, 1.0 / honest, len(plan.groups))
        for g, part in enumerate(parts):
            out[offset + plan.component_index(g, noisy.measure, noisy.component)] = part
    return out


def local_inputs(slot: QuerySlot, partials: Sequence[dict[Label, list[int]]]) -> list[int]:
    """Return this party's input vector for one query from its scans' partial aggregates.

    ``partials`` holds, for each of this party's scans of the query, the components per
    group label (in the order of the plan's measures); every label is one of the plan's
    groups (the caller checks).
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
