"""What a query may cost before its MPC job runs: result groups, cells, secure operations.

Once the owners have scanned (the sequencer knows the agreed groups and, for a join, the
padded length N), every query's cost is estimated from public quantities only and checked
against the federation's limits (``federation.toml``, ``[federation]``; README
"Configuration"):

- ``max_result_groups`` — groups of one result (default 100,000);
- ``max_result_cells`` — released cells of one result, groups × aggregates (1,000,000);
- ``max_secure_operations`` — estimated secure operations of one analyst's queries in
  flight together (10^9);
- ``large_job_operations`` — a query estimated above this runs in the large MPC lane
  (:mod:`engine.daemon.lanes`; default 200,000).

A query over a limit is refused with a CapacityError naming the limit, before any value is
secret-shared. The unit is one secure multiplication (or one shared value input) ≈ a few
µs vectorized; a secure comparison counts as COMPARISON_WEIGHT of them (≈0.5 ms).

- aggregate: per group, every component input once by each owner, and per cell the
  suppression test (a product of degree min_group_size) and the masking;
- join: per padded row and per-key column, the pseudonym alignment (~4 field elements per
  column at each pair stage), then one product per total and group, plus the per-row
  comparisons of a cross-agency WHERE and ~300 comparisons per order statistic and group;
  in exact mode, overlap control over the join (an upper bound: every total a sketch):
  2m − 1 dealt columns of N rows and their products, and per cell and kept cell of the
  window (``join_overlap_window``) an m × m determinant (m − 1 matrix products) and two
  zero tests.

What it reveals: the estimate and the refusal depend on the plan, the number of group
labels and the padded length, which every party already learns (README "What is revealed").
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine import cross_filter
from engine.config import Limits
from engine.errors import CapacityError
from engine.plan import JoinPlan, Plan

COMPARISON_WEIGHT = 100  # a secure comparison ≈ 100 multiplications (0.5 ms against ~5 µs)
ORDER_COMPARISONS = 300  # an exact order statistic over a join, per group
CELL_OPERATIONS = 4  # masking and opening a cell's fraction
ZERO_TEST_OPERATIONS = 40  # a quadratic-residuosity zero test (40 parallel rounds)


@dataclass(frozen=True)
class Cost:
    """A query's estimated size once its groups (and a join's padded length) are known."""

    groups: int
    cells: int
    operations: int


def estimate(
    plan: Plan, groups: int, padded_length: int = 0, overlap: tuple[int, int] = (0, 0)
) -> Cost:
    """Return the estimated cost of ``plan`` over ``groups`` groups (a join: N rows, and
    ``overlap`` = (m, W) for overlap control over it; m < 2 for none)."""
    cells = groups * len(plan.aggregate_outputs())
    per_cell = plan.min_group_size + CELL_OPERATIONS
    if not isinstance(plan, JoinPlan):
        inputs = groups * plan.components_per_group * max(len(plan.scans), 1)
        return Cost(groups, cells, inputs + cells * per_cell)
    rows = padded_length
    columns = sum(len(s.columns) * (groups if s.group_slots else 1) for s in plan.scans)
    align = 4 * rows * columns
    sums = rows * len(plan.terms) * groups
    compared = 0
    if plan.row_filter:
        compared = rows * cross_filter.comparisons(json.loads(plan.row_filter))
    orders = sum(len(o.measures) for o in plan.orders) * groups * ORDER_COMPARISONS
    operations = align + sums + (compared + orders) * COMPARISON_WEIGHT + cells * per_cell
    m, window = overlap
    if plan.release == "exact" and window and m >= 2:
        terms = 2 * m - 1
        pairs = groups * len(plan.terms) * window  # at most one sketch per total
        operations += 2 * terms * rows + pairs * (m**3 + 3 * ZERO_TEST_OPERATIONS)
    return Cost(groups, cells, operations)


def check(cost: Cost, limits: Limits, analyst: str, in_flight: int) -> None:
    """Raise CapacityError if ``cost`` exceeds a limit; ``in_flight`` is the estimate of
    the analyst's other queries still running."""
    if cost.groups > limits.max_result_groups:
        raise CapacityError(
            f"result groups: got {cost.groups}, want at most {limits.max_result_groups} "
            "(federation.max_result_groups; group by fewer or coarser labels)"
        )
    if cost.cells > limits.max_result_cells:
        raise CapacityError(
            f"result cells: got {cost.cells} (groups × aggregates), want at most "
            f"{limits.max_result_cells} (federation.max_result_cells)"
        )
    if cost.operations + in_flight > limits.max_secure_operations:
        raise CapacityError(
            f"secure operations of analyst {analyst}: got an estimated {cost.operations:,} "
            f"for this query and {in_flight:,} in flight, want at most "
            f"{limits.max_secure_operations:,} (federation.max_secure_operations; fewer "
            "groups, a filter, or wait for your running queries)"
        )


def is_large(cost: Cost, limits: Limits) -> bool:
    """Return whether a query this costly runs in the large MPC lane."""
    return cost.operations > limits.large_job_operations
