"""Exact order statistics (MIN, MAX, MEDIAN, QUANTILE_CONT) per group over an aligned join.

After a (star) join (:mod:`engine.mpc._join`) every party holds shares of the hub's rows in
the hub's secret shuffled order, and the engine computes each row's weight W_i (a secret:
the product of every owner's per-key filter and count columns; 0 on rows not in the join).
The value column belongs to the hub, which is its owner here, with one value per row. The
statistic of a group is that of the multiset in which row i's value appears W_i times:
T = Σ W over the group, MIN and MAX its extremes, QUANTILE_CONT(q) DuckDB's: with
RN = (T - 1)·q, the values v_lo, v_hi of ranks floor(RN) and ceil(RN) (0-based, sorted)
interpolated as ``v_lo + (v_hi - v_lo)·(RN - floor(RN))``; MEDIAN is q = 1/2. Results are
exact fractions ``numerator / denominator``, with q = a/b in lowest terms:
``numerator = b·v_lo + (v_hi - v_lo)·(a(T - 1) mod b)`` (secret) and ``denominator = b``
(public; 1 for MIN and MAX). For T = 0 the statistic is undefined and the numerator is
arbitrary (the engine suppresses such cells: its minimum group size is at least 1).

Who passes what: every party passes the same public arguments and its shares (weights, and
group columns if the grouping is a spoke's); only the owner passes its values per hub row
(``my_values``, in the joined order: see ``StarJoin.hub_rows``) and, for a GROUP BY on one
of its columns, its labels per hub row. Three groupings: none; labels the owner knows
(:class:`GroupLabels`); secret one-hot columns in hub order (:class:`GroupColumns`, e.g. a
spoke's group columns from the join).

Method
------
1. **Sort.** The owner sorts its N rows by (label, value): σ. The weights are permuted by
   σ = σ1 ∘ σ2 in two pair stages (:mod:`engine.mpc._order_sort`): σ1 is uniform and known to
   the owner and its first partner, σ2 = σ1⁻¹ ∘ σ to the owner and its second partner, so
   neither partner learns anything about σ (a helper of the join, which knows where matches
   fall in hub order, would otherwise learn which values matched). In the same round the
   owner deals its values in sorted order. With secret group columns G_k, the vectors
   sorted are the K products W·G_k (one multiplication round first).
2. **Running counts** C (prefix sums of the sorted weights): local, free.
3. **Group totals.** Groups are contiguous in sorted order. No groups: T = C[last]. Labels:
   the owner deals, per group, the one-hot block and offset of its last sorted position
   (K·(P + Q) elements, P·Q = M); two multiplication rounds give C there, E_g; then
   T_g = E_g - E_(g-1) and the count before the group O_g = E_(g-1). Columns: each group has
   its own running counts, T_g = C_g[last], O_g = 0.
4. **Bound check.** One comparison tests ``Σ W < 2^count_bits``, on which the bit length of
   every later comparison relies, and opens that bit: if it fails, every party raises
   CapacityError before any other comparison.
5. **Crossings.** The row of rank floor((T-1)·a/b) in group g is the first position where
   ``b·C >= b·O_g + a(T_g - 1) + 1``; the next rank's where ``b·C >= b·O_g + a(T_g - 1) + b``
   (MIN: a = 0, b = 1; MAX: a = b = 1; one crossing when b = 1). All crossings of all
   requests and groups share the sort and the running counts and are located together by a
   search over L levels of blocks (:mod:`engine.mpc._order_search`): per crossing
   s_1 + … + s_L comparisons (M = s_1·…·s_L >= N), in L batches, instead of N, and one
   extraction of the selected block per level (a secure matrix product).
6. **Interpolation.** ``a(T - 1) mod b`` by a masked opening and two short comparisons
   (:mod:`engine.mpc._order_residue`), concurrently with the search; one multiplication
   gives the numerators.

Products of secret arrays (W·G_k, group totals, block extractions, numerators) are local
products of shares followed by one resharing round of our own under the call's pair keys
(:mod:`engine.mpc._order_products`); comparisons are MPyC's ``np_sgn``.

Exact: integer arithmetic throughout, comparisons of ``count_bits + log2(b) + 1`` bits on
values within that range (checked: the secure type must be that wide). Ties are harmless
(equal values). Positions of weight 0 are never selected.

Cost
----
N rows padded to M = s_1·…·s_L, K groups, c distinct crossings of the requests (MEDIAN 2,
MIN and MAX 1 each, QUANTILE_CONT a/b 2 if b > 1), R = K·c, q quantile requests with
b > 1, r requests; traffic in field elements (8 bytes for SecInt(32)) summed over three
parties (a bystander receives about as much again):

===============================  ==========================================  ==============
step                             traffic                                     rounds
===============================  ==========================================  ==============
agreement (digest, X25519 keys)  65 bytes per pair                           1
products W·G_k (columns only)    3·K·N                                       1
stages 1 and 2, owner's values   2·V·N each (V = 1, or K); σ2 4N bytes;      2
                                 M + K·(P + Q) dealt to one party
group totals (labels only)       3·K·(Q + 1)                                 2
bound check                      1 comparison (full bit length), 1 bit       ≈10
search                           R·(s_1 + … + s_L) comparisons;              L·(≈9 + 1)
                                 3·2·R·(M/s_1 + M/(s_1·s_2) + …) reshared
residues                         4·K·q dealt, K·q opened, 2·K·q comparisons  ≈10, concurrent
numerators                       3·K·r                                       1
===============================  ==========================================  ==============

The levels are chosen by a cost model (:func:`engine.mpc._order_plan.level_sizes`): for
N = 10^5, MEDIAN uses 3 levels (66, 39, 39: 144 comparisons per crossing, instead of 10^5),
MEDIAN by 20 groups 5 levels (57, 6, 6, 7, 7: 83 per crossing, 40 crossings). Local work
is dominated by the first level's products, about 2·R·M multiply-adds (float64 limbs).
With secret group columns the sort carries K vectors (2·K·N elements per stage) after
K·N multiplications; the search costs the same as with labels.

Measured (benchmarks/bench_order_protocol.py, 3 processes on this 2-core machine, SecInt(32),
10^5 joined citizens, weights 0 to 2, after a join of 0.6 s; slowest party, MB sent by the
owner): MEDIAN 1.2 s (5 MB), MEDIAN by 20 hub groups 2.8 s (10 MB), MIN, MAX, MEDIAN and
QUANTILE_CONT 0.25 and 0.9 by 20 hub groups 8.2 s (24 MB), MEDIAN by 20 spoke groups 20 s
(56 MB); plaintext 0.03 s. With another engineer's benchmarks running (load 4), two to
three times as long.

What is revealed
----------------
Nothing beyond what the join reveals: the owner's first partner sees σ1, its second
partner σ2 — each a uniform permutation independent of everything else it holds; all
other messages are uniform share vectors, MPyC's masked openings inside comparisons, the
masked residue openings (statistically hiding), the bound-check bit (always 1 when
``count_bits`` is a true bound) and the owner's flag that its values were valid (else the
call aborts everywhere). No party learns values, ranks, which rows are in the join
or their weights, group sizes or the statistics; the owner learns nothing it did not
know. The number of messages and their sizes depend on the public parameters only.

Limitations: semi-honest, t = 1 (as the join); weights must be nonnegative integers and
their total below ``2^count_bits`` (checked as above); values integers with
``|v| < 2^value_bits`` (checked at the owner). Fixed-point values must be scaled to
integers by the caller. Secret group columns are limited to K·N <= 10^7 (memory: the sort
and the running counts carry K vectors of N shares).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import CapacityError, DataError, EngineError
from engine.mpc._join_field import FieldVector
from engine.mpc._join_keys import agree
from engine.mpc._join_links import spawn
from engine.mpc._order_plan import (
    Mode,
    OrderPlan,
    OrderRequest,
    OwnerInput,
    Values,
    prepare_owner,
)
from engine.mpc._order_products import SecureProducts
from engine.mpc._order_residue import residues
from engine.mpc._order_search import locate
from engine.mpc._order_sort import sort_by_owner

__all__ = [
    "GroupColumns",
    "GroupLabels",
    "OrderRequest",
    "OrderStatistics",
    "order_statistics",
]

SecureArray = Any  # an MPyC secure array (MPyC is not imported here)


@dataclass(frozen=True)
class GroupLabels:
    """A grouping by a column of the value owner: ``count`` groups (public).

    ``labels`` is the owner's group label per hub row, in ``[0, count)``, in the joined
    order (any label on padding rows); None at every other party.
    """

    count: int
    labels: Values | None = None


@dataclass(frozen=True)
class GroupColumns:
    """A grouping by secret one-hot columns (length N each, in hub order), e.g. a spoke's.

    A row belongs to group k where column k is 1; a row in no group (all 0) counts nowhere.
    """

    columns: Sequence[SecureArray]


Grouping = GroupLabels | GroupColumns | None


@dataclass
class OrderStatistics:
    """Per group and request, secret numerators and public denominators; secret counts.

    ``numerators[g, r] / denominators[r]`` is request r's statistic in group g (arbitrary if
    ``counts[g]`` is 0); ``counts[g]`` is T, the group's total weight. Without grouping
    there is one group. ``numerators`` has shape (groups, requests), ``counts`` (groups,).
    """

    counts: SecureArray
    numerators: SecureArray
    denominators: tuple[int, ...]


async def order_statistics(
    mpc: Any,
    secint: Any,
    *,
    owner: int,
    weights: SecureArray,
    groups: Grouping,
    my_values: Values | None,
    requests: Sequence[OrderRequest],
    value_bits: int,
    count_bits: int,
    levels: int | None = None,
) -> OrderStatistics:
    """Compute the ``requests`` per group over the joined rows; return secret results.

    ``mpc`` is MPyC's runtime (n >= 3 parties, threshold 1), ``secint`` a secure integer
    type wide enough for the comparisons and numerators (ValueError says how wide).
    Public arguments, equal at every party: ``owner`` (the value owner, normally the
    join's hub), the number N of rows (``len(weights)``), the grouping's kind and size, the
    requests, ``value_bits`` (|v| < 2^value_bits), ``count_bits`` (every group's total
    weight, and their sum, < 2^count_bits) and ``levels`` (the search's; None chooses).
    ``weights``: secret, nonnegative integers, shape (N,). ``my_values``: the owner's value
    per hub row (N ints, in the joined order; anything on padding rows), None elsewhere.

    Raises ValueError if the public arguments are invalid (the same at every party);
    DataError at the owner if its values or labels are invalid, and then PeerError at every
    other party; PeerError if the parties' public arguments differ or a peer sends a
    malformed message; CapacityError at every party if the total weight reached
    2^count_bits.
    """
    length, mode, count, labels = _grouping(weights, groups)
    plan = OrderPlan(
        mpc,
        secint,
        owner=owner,
        length=length,
        mode=mode,
        groups=count,
        requests=requests,
        value_bits=value_bits,
        count_bits=count_bits,
        levels=levels,
    )
    local: OwnerInput | EngineError | None = None
    if plan.me == owner:
        try:
            local = prepare_owner(plan, my_values, labels)
        except DataError as exc:
            local = exc
    elif my_values is not None or labels is not None:
        raise ValueError(f"party {plan.me}: got values or labels, want None (not the owner)")
    keys = await agree(mpc, plan.digest, isinstance(local, EngineError), "order statistics")
    if isinstance(local, EngineError):
        raise local

    products = SecureProducts(mpc, secint, keys)
    shares = [await products.shares(weights)]
    if isinstance(groups, GroupColumns):
        columns = np.stack([await products.shares(c) for c in groups.columns])
        (weighted,) = await products.multiply_shares([(columns, shares[0])])
        shares = list(weighted)
    ordered, dealt = await sort_by_owner(mpc, plan, keys, shares, local)

    prefix = products.secure(_running_counts(ordered, plan.padded, plan.modulus))
    values = products.secure(dealt[: plan.padded])
    # Every later comparison relies on this bound: check it (one bit) before any of them.
    fits = prefix[:, plan.padded - 1].sum() < (1 << count_bits)
    if mode == "labels":
        totals, before = await _group_totals(mpc, products, plan, prefix, dealt[plan.padded :])
    else:
        totals, before = prefix[:, plan.padded - 1], None
    if not await mpc.output(fits):
        raise CapacityError(
            f"order statistics: got a total weight >= 2^{count_bits}, want below (count_bits)"
        )

    quantiles = [r for r, b in enumerate(plan.denominators) if b > 1]
    interpolation = None
    if quantiles:
        a = np.array([requests[r].fraction.numerator for r in quantiles], dtype=object)
        b = np.array([plan.denominators[r] for r in quantiles], dtype=object)
        x = ((totals.reshape(count, 1) + (b - 1)) * a).reshape(count * len(quantiles))
        divisors = np.tile(b, count)
        interpolation = spawn(mpc, lambda: residues(mpc, secint, plan, keys, x, divisors))

    a = np.array([c.a for c in plan.crossings], dtype=object)
    b = np.array([c.b for c in plan.crossings], dtype=object)
    c = np.array([c.c for c in plan.crossings], dtype=object)
    thresholds = (totals.reshape(count, 1) - 1) * a + c
    if before is not None:
        thresholds = thresholds + before.reshape(count, 1) * b
    found = await locate(
        products,
        prefix,
        values,
        np.tile(b, count),
        thresholds.reshape(count * len(plan.crossings)),
        plan.sizes,
        plan.comparison_bits,
    )

    found_raw = (await products.shares(found)).reshape(count, len(plan.crossings))
    low, high = found_raw[:, plan.lower], found_raw[:, plan.upper]
    weight = np.zeros((count, len(requests)), dtype=object)  # a(T-1) mod b; 0 where b = 1
    if interpolation is not None:
        residue = await products.shares(await interpolation)
        weight[:, quantiles] = residue.reshape(count, len(quantiles))
    (spread,) = await products.multiply_shares([(high - low, weight)])
    denominators = np.array(plan.denominators, dtype=object)
    numerators = products.secure((low * denominators + spread) % plan.modulus)
    return OrderStatistics(counts=totals, numerators=numerators, denominators=plan.denominators)


def _grouping(weights: SecureArray, groups: Grouping) -> tuple[int, Mode, int, Values | None]:
    """Return N, the grouping's mode, its number of groups and the owner's labels if any."""
    shape = getattr(weights, "shape", None)
    if shape is None or len(shape) != 1:
        raise ValueError(f"weights: got shape {shape}, want a 1-D secure array")
    length = int(shape[0])
    if groups is None:
        return length, "none", 1, None
    if isinstance(groups, GroupLabels):
        return length, "labels", groups.count, groups.labels
    if isinstance(groups, GroupColumns):
        for k, column in enumerate(groups.columns):
            if getattr(column, "shape", None) != (length,):
                got = getattr(column, "shape", None)
                raise ValueError(f"group column {k}: got shape {got}, want ({length},)")
        return length, "columns", len(groups.columns), None
    raise ValueError(f"groups: got {type(groups).__name__}, want GroupLabels, GroupColumns or None")


def _running_counts(ordered: Sequence[FieldVector], padded: int, modulus: int) -> FieldVector:
    """Return shares of the prefix sums of each sorted vector, continued to ``padded``."""
    counts = np.zeros((len(ordered), padded), dtype=object)
    for s, vector in enumerate(ordered):
        running = np.cumsum(vector) % modulus
        counts[s, : len(vector)] = running
        counts[s, len(vector) :] = running[-1]
    return counts


async def _group_totals(
    mpc: Any, products: SecureProducts, plan: OrderPlan, prefix: SecureArray, ends: FieldVector
) -> tuple[SecureArray, SecureArray]:
    """Return each group's total weight T_g and the weight before it O_g (labels mode).

    ``ends`` are this party's shares of the owner's one-hot block and offset of each
    group's last sorted position: C there is E_g, T_g = E_g - E_(g-1), O_g = E_(g-1).
    """
    count = plan.groups
    rows, columns = plan.ends_shape
    blocks = products.secure(ends[: count * rows].reshape(count, rows))
    offsets = products.secure(ends[count * rows :].reshape(count, columns))
    (partial,) = await products.matmul([(blocks, prefix.reshape(rows, columns))])
    pair = (partial.reshape(count, 1, columns), offsets.reshape(count, columns, 1))
    (last,) = await products.matmul([pair])
    last = last.reshape(count)
    zero = products.secure(np.zeros(1, dtype=object))
    before = mpc.np_concatenate((zero, last[: count - 1])) if count > 1 else zero
    return last - before, before
