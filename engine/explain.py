"""EXPLAIN: a query's plan in words — what runs where, what is shared, what is revealed.

``EXPLAIN <query>`` plans the query (checking every policy, as for the query itself) but
touches no data, runs no MPC and puts nothing on the ledger. Counts of secure operations
are estimates per released group (G) and, for joins, per padded row (N); they tell an
analyst which parts of a query are expensive.
"""

from __future__ import annotations

import json

from engine import cross_filter
from engine.cells import KIND_OF, CellKind
from engine.config import Federation
from engine.mpc.join_layout import DUMMIES, EPSILON
from engine.plan import JoinPlan, Measure, Plan, QueryPlan

_COMPONENT_WORDS = {
    "n": "count",
    "s": "sum",
    "q": "sum of squares",
    "sy": "sum of y",
    "syy": "sum of y²",
    "sxy": "sum of x·y",
    "a": "sum of |values| (dominance rule)",
    "t": "its largest contributions (dominance rule)",
}


def _measure_words(measure: Measure) -> str:
    if measure.column is None:
        return "COUNT(*)"
    if measure.order is not None:
        a, b = measure.fraction or (0, 1)
        what = {"min": "MIN", "max": "MAX"}.get(measure.order, f"QUANTILE_CONT({a}/{b})")
        return f"{what} of {measure.column} (exact, as a fraction)"
    if measure.distinct:
        return f"{measure.column}: count of distinct values (at its owner)"
    scale = f" ×10^{measure.decimals}" if measure.decimals else ""
    if measure.second is not None:
        return f"pair ({measure.column}, {measure.second}): count and sums of products{scale}"
    parts = ", ".join(_COMPONENT_WORDS[c] for c in measure.components)
    return f"{measure.column}{scale}: {parts}"


def explain(plan: Plan, federation: Federation, sql: str) -> str:
    """Return the explanation of ``plan`` as text lines."""
    text = " ".join(sql.split())
    if not text.upper().startswith("EXPLAIN "):
        text = f"EXPLAIN {text}"
    lines = [text[:400]]
    outputs = plan.aggregate_outputs()
    kinds = {KIND_OF[o.function] for o in outputs if o.function is not None}
    groups = (
        "one group"
        if not plan.group_names
        else f"G = {len(plan.groups)} groups of ({', '.join(plan.group_names)}), every label "
        "of their public domains"
    )
    cells = f"{len(outputs)} released cell(s) per group"
    if isinstance(plan, QueryPlan):
        names = ", ".join(f"{s.party}.{s.dataset}" for s in plan.scans)
        kind = "UNION ALL of " if len(plan.scans) > 1 else ""
        lines.append(f"plan: aggregate over {kind}{names}; {groups}; {cells}")
        lines.append("plaintext at each owner (nothing leaves it but the totals below):")
        for scan in plan.scans:
            lines.append(
                f"  {scan.party}: {scan.party}.{scan.dataset}"
                f" — filter: {scan.filter_sql or 'none'}"
                f"; group by: {', '.join(scan.group_sql) or 'none'}"
            )
        lines.append("  per group: " + "; ".join(_measure_words(m) for m in plan.measures))
        totals = plan.components_per_group
        lines.append(
            f"secret-shared: {totals} total(s) per group from each of {len(plan.scans)} "
            f"owner(s) (~{totals * len(plan.scans)}·G values), summed inside MPC"
        )
    else:
        lines += _join_lines(plan, federation, groups, cells)
    lines += _secure_lines(plan, kinds)
    lines += _release_lines(plan, federation)
    lines += _reveal_lines(plan, federation)
    if federation.ledger:
        lines.append(
            f"ledger: the request and every party's decision before any data is touched, each "
            f"party's commitment to its result shares before release; checkpoints cosigned by "
            f"{federation.ledger_quorum} of {len(federation.parties)} parties"
        )
    return "\n".join(lines)


def _join_lines(plan: JoinPlan, federation: Federation, groups: str, cells: str) -> list[str]:
    hub = plan.scans[0]
    owners = [s.party for s in plan.scans]
    helpers = [p.name for p in federation.parties if p.name not in owners]
    helper_of = (
        {plan.scans[1].party: helpers[0] if helpers else "?"}
        if len(plan.scans) == 2
        else {plan.scans[1].party: plan.scans[2].party, plan.scans[2].party: plan.scans[1].party}
    )
    lines = [
        f"plan: inner join of {', '.join(f'{s.party}.{s.dataset} ({s.alias})' for s in plan.scans)}"
        f" on one key; hub {hub.party}; {groups}; {cells}",
        "plaintext at each owner: filter, then per join key (one row per key):",
    ]
    for scan in plan.scans:
        lines.append(
            f"  {scan.party}: filter: {scan.filter_sql or 'none'}; group by: "
            f"{', '.join(scan.group_sql) or 'none'}; {len(scan.columns)} per-key column(s)"
            + (" per group label" if scan.group_slots else "")
        )
    widths = ", ".join(
        f"{s.party} {len(s.columns)}{'·G' if s.group_slots else ''} column(s)" for s in plan.scans
    )
    lines.append(
        f"secret-shared: {widths}, each of N rows (N = padded length ≥ largest table + "
        f"{2 * DUMMIES} dummies, rounded up)"
    )
    lines.append("private join (helper-aligned, hidden membership):")
    for spoke in plan.scans[1:]:
        lines.append(
            f"  {spoke.party} aligned onto {hub.party}'s rows by pseudonyms matched at "
            f"{helper_of[spoke.party]}: 2 pair stages, ~4·N field elements per {spoke.party} column"
        )
    stages = (
        "two spokes' columns multiplied row by row (N multiplications each), then "
        if (len(plan.scans) == 3)
        else ""
    )
    lines.append(
        f"  sums: {stages}{len(plan.terms)}·G dot products of N rows (local products, one "
        "resharing)"
    )
    if plan.row_filter:
        tree = json.loads(plan.row_filter)
        compared = cross_filter.comparisons(tree)
        lines.append(
            f"  WHERE on columns of several agencies, per joined row inside MPC: {compared} "
            f"secure comparison(s) (≈0.5 ms per row each{': expensive' if compared else ''}) "
            "and one multiplication per AND/OR"
        )
    return lines


def _secure_lines(plan: Plan, kinds: set[CellKind]) -> list[str]:
    degree = plan.min_group_size
    lines = ["secure operations per released cell (estimate):"]
    lines.append(
        f"  suppression test Π_{{j<{degree}}}(n − j) = 0: one opening with a preshared power "
        f"(or ⌈log2 {degree}⌉ rounds), no comparison"
    )
    formula = (
        1 if kinds & {CellKind.VAR_POP, CellKind.VAR_SAMP} or any(k.bivariate for k in kinds) else 0
    )
    second = kinds & {CellKind.REGR_INTERCEPT, CellKind.REGR_R2, CellKind.CORR}
    lines.append(
        f"  formulas: {formula + (1 if second else 0)} round(s) of products; masking and "
        "release: 2 rounds"
    )
    if CellKind.CORR in kinds:
        lines.append("  CORR: one secure comparison per cell (the sign of the covariance)")
    if CellKind.VALUE in kinds and isinstance(plan, JoinPlan):
        hub = plan.scans[0].party
        lines.append(
            f"  MIN/MAX/MEDIAN/QUANTILE_CONT over the join: {hub} inputs its values in the "
            "joined order, each joined row weighted by the other owners' secret counts; a "
            "secret two-stage shuffle sorts them, then a blocked search finds each rank: "
            "about 100–300 secure comparisons per statistic and group, not one per row"
        )
    elif CellKind.VALUE in kinds:
        lines.append(
            "  MIN/MAX/MEDIAN/QUANTILE_CONT: computed exactly by the value's owner on its own "
            "rows; only the value enters MPC"
        )
    return lines


def _release_lines(plan: Plan, federation: Federation) -> list[str]:
    """Return how the cells are released: the disclosure rules that apply (no data read)."""
    if plan.release == "dp":
        epsilon = sum(t.epsilon for t in plan.noisy)
        charged = ", ".join(f"{c.owner}.{c.dataset}" for c in plan.charges)
        return [
            f"release: differential privacy, epsilon {epsilon:g} for the query, charged to the "
            f"budget of {charged} on the ledger (refused when it would overspend)",
            f"  {len(plan.noisy)} noisy total(s) per group, each with discrete-Laplace noise "
            f"(epsilon {plan.noisy[0].epsilon:g} each; groups are disjoint) made by the "
            "parties inside MPC: nobody knows it; the result states each cell's noise and a 95% "
            "interval",
        ]
    lines = [
        "release: exact, under statistical disclosure control decided inside MPC:",
        f"  a cell with fewer than {plan.min_group_size} contributing rows is suppressed",
    ]
    ruled = [m for m in plan.measures if m.dominance is not None]
    if ruled:
        n, k = ruled[0].dominance or (1, 85)
        lines.append(
            f"  dominance rule ({n}, {k}%): a SUM or AVG cell whose {n} largest contribution(s) "
            f"exceed {k}% of its total is suppressed (one secure comparison per such cell)"
        )
    if isinstance(plan, JoinPlan):
        window = federation.join_overlap_window
        terms = 2 * plan.min_group_size - 1
        lines += [
            "  query-set overlap control over the join (where an owner of a joined dataset has "
            "it on; m = the largest minimum group size among those datasets): a cell whose "
            "joined keys differ from a kept join release by 1 to m − 1 keys is suppressed, "
            "decided inside MPC on secret shares (nobody learns the joined set, whether or "
            "why a cell was withheld); cells are suppressed alike, whatever the reason",
            f"    kept: every party stores its own shares of {terms} power sums per released "
            f"join cell (~{terms * 20} bytes), the last {window} such cells "
            "(federation.join_overlap_window); older join releases are not compared",
            f"    cost: the hub deals {terms} columns of N, one conversion of the count "
            f"column, then per cell and kept release an {plan.min_group_size}×"
            f"{plan.min_group_size} Hankel determinant ({plan.min_group_size - 1} rounds) "
            "and two zero tests; the join runs in the large MPC lane, in ledger order",
            "    not compared with single-dataset releases (those are checked by each owner "
            "in plaintext), nor with dp releases",
        ]
    else:
        lines.append(
            "  query-set overlap control (where a dataset's owner has it on): a cell whose rows "
            "on the dataset differ from an earlier "
            "release by 1 to m − 1 rows is suppressed, decided by that dataset's owner (cells "
            "are suppressed alike, whatever the reason)"
        )
    return lines


def _reveal_lines(plan: Plan, federation: Federation) -> list[str]:
    lines = [
        "reveals:",
        "  to the analyst: the released cells, and which cells are suppressed (not why, nor "
        "their counts); every label of the groups' public domains is a row, data or none"
        if plan.release != "dp"
        else "  to the analyst: noisy cells with their noise's scale; nothing is suppressed",
        "  to every party: the query text and analyst (no labels, counts or values)",
    ]
    if isinstance(plan, JoinPlan):
        owners = [s.party for s in plan.scans]
        helpers = [p.name for p in federation.parties if p.name not in owners]
        seen = helpers[:1] if len(plan.scans) == 2 else owners[1:]
        lines.append(
            f"  to the join helper(s) {', '.join(seen)}: the number of matching keys plus "
            f"discrete-Laplace noise (ε = {EPSILON[0]}/{EPSILON[1]}, at most +{2 * DUMMIES})"
        )
        lines.append(
            "  to every party: each joined table's size rounded up to a power of two (sets N)"
        )
        if plan.orders:
            lines.append(
                f"  to {plan.scans[0].party}'s two partners in the secret sort: one uniformly "
                "random permutation each, independent of the data"
            )
    lines.append(
        "  to nobody: another agency's rows or per-group totals, which rows matched, or the "
        "result (each party's shares are sealed to the analyst)"
    )
    return lines
