"""The public parameters of one call of order statistics, and the value owner's local step.

See :mod:`engine.mpc._order` for the protocol. :class:`OrderPlan` checks the public
arguments (the same at every party), derives what every party computes from them alone —
the crossings to locate, the search levels, the bit lengths — and their digest;
:func:`prepare_owner` is the owner's plaintext step: it checks its values (and labels),
sorts its rows, and lays out what it deals.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from engine.errors import DataError
from engine.mpc._join_field import FieldVector
from engine.mpc._join_links import check_runtime
from engine.mpc._join_prf import IndexVector

_PROTOCOL = "jointstat order statistics on an aligned join, v1"
MAX_REQUESTS = 64
MAX_DENOMINATOR = 1 << 16  # keeps comparisons short: their bit length grows with log2(b)
MAX_LEVELS = 8
MAX_GROUPS = 65_535
MAX_GROUP_CELLS = 10_000_000  # secret group columns: K·N shares sorted and summed (memory)
# Cost model of the search (measured on 2 cores, 3 parties): a vectorized secure comparison
# costs about 13 µs per bit and element, extracting a block about 3 µs per element (local
# product and resharing), the first level's local product 20 ns per multiply-add (float64
# limbs), and a level about 30 ms of round trips.
_COMPARISON_BIT_S = 13e-6
_EXTRACTION_S = 3e-6
_MULTIPLY_ADD_S = 2e-8
_LEVEL_S = 0.03

Values = Sequence[int] | npt.NDArray[np.integer[Any]]
Mode = Literal["none", "labels", "columns"]


@dataclass(frozen=True)
class OrderRequest:
    """One order statistic of the value column: ``kind`` "min", "max" or "quantile".

    For "quantile", ``q`` (a Fraction, 0 <= q <= 1) follows DuckDB's QUANTILE_CONT:
    interpolation between the order statistics at ranks floor and ceil of (T - 1)·q,
    T the number of values; MEDIAN is q = 1/2. ``q`` is ignored for "min" and "max".
    Raises ValueError otherwise.
    """

    kind: Literal["min", "max", "quantile"]
    q: Fraction = Fraction(1, 2)

    def __post_init__(self) -> None:
        if self.kind not in ("min", "max", "quantile"):
            raise ValueError(f"order request kind: got {self.kind!r}, want min, max or quantile")
        if not isinstance(self.q, Fraction) or not 0 <= self.q <= 1:
            raise ValueError(f"quantile: got {self.q!r}, want a Fraction in [0, 1]")
        if self.fraction.denominator > MAX_DENOMINATOR:
            raise ValueError(
                f"quantile denominator: got {self.q.denominator}, want <= {MAX_DENOMINATOR}"
            )

    @property
    def fraction(self) -> Fraction:
        """Return the quantile this request is: 0 for MIN, 1 for MAX, else ``q``."""
        return {"min": Fraction(0), "max": Fraction(1)}.get(self.kind, self.q)


@dataclass(frozen=True)
class Crossing:
    """A rank to locate in every group: the first position where b·C >= b·O + a(T-1) + c.

    C is the running count within the sorted order, O the count before the group and T
    the group's count. With q = a/b, c = 1 gives the row of rank floor((T-1)·q), c = b the
    row of rank floor((T-1)·q) + 1 (the ceiling's, whenever the two differ).
    """

    a: int
    b: int
    c: int


def level_sizes(length: int, rows: int, bits: int, levels: int | None) -> list[int]:
    """Return the block counts of the search levels; their product is >= ``length``.

    With ``levels`` None, pick the levels that minimize the estimated time of locating
    ``rows`` crossings with comparisons of ``bits`` bits (:func:`search_cost`): the first
    level may have more blocks than the others, since its extractions are the largest.
    """
    candidates = []
    for count in range(1, MAX_LEVELS + 1) if levels is None else [levels]:
        if count == 1:
            candidates.append([length])
            continue
        first = 1
        while first <= length:
            candidates.append([first, *_sizes(-(-length // first), count - 1)])
            first = max(first + 1, first * 17 // 16)
    return min(candidates, key=lambda sizes: search_cost(sizes, rows, bits))


def search_cost(sizes: Sequence[int], rows: int, bits: int) -> float:
    """Return the estimated seconds of locating ``rows`` crossings with these block counts."""
    padded = _product(sizes)
    extracted, rest = 0, padded
    for size in sizes[:-1]:
        rest //= size
        extracted += 2 * rest  # counts and values of the selected block
    return (
        rows
        * (
            sum(sizes) * bits * _COMPARISON_BIT_S
            + extracted * _EXTRACTION_S
            + 2 * padded * _MULTIPLY_ADD_S
        )
        + len(sizes) * _LEVEL_S
    )


def _sizes(length: int, levels: int) -> list[int]:
    side = max(1, round(length ** (1 / levels)))
    while side**levels < length:
        side += 1
    while side > 1 and (side - 1) ** levels >= length:
        side -= 1
    sizes = [side] * levels
    for i in range(levels):  # shave blocks while the product still covers the length
        while sizes[i] > 1 and _product(sizes) // sizes[i] * (sizes[i] - 1) >= length:
            sizes[i] -= 1
    return sizes


def _product(sizes: Sequence[int]) -> int:
    result = 1
    for size in sizes:
        result *= size
    return result


class OrderPlan:
    """The validated public parameters of one call, and this party's place in it."""

    def __init__(
        self,
        mpc: Any,
        secint: Any,
        *,
        owner: int,
        length: int,
        mode: Mode,
        groups: int,
        requests: Sequence[OrderRequest],
        value_bits: int,
        count_bits: int,
        levels: int | None,
    ) -> None:
        """Check the public arguments; raise ValueError if they are invalid."""
        check_runtime(mpc)
        n = len(mpc.parties)
        if n < 3 or mpc.threshold != 1:
            raise ValueError(f"parties, threshold: got {n}, {mpc.threshold}, want >= 3, 1")
        if not 0 <= owner < n:
            raise ValueError(f"owner: got {owner}, want 0 <= owner < {n}")
        if length < 1:
            raise ValueError(f"rows: got {length}, want >= 1")
        if not 1 <= groups <= MAX_GROUPS:
            raise ValueError(f"groups: got {groups}, want 1 to {MAX_GROUPS}")
        if mode == "columns" and groups * length > MAX_GROUP_CELLS:
            raise ValueError(
                f"group columns × rows: got {groups * length}, want <= {MAX_GROUP_CELLS}"
            )
        if not 1 <= len(requests) <= MAX_REQUESTS:
            raise ValueError(f"requests: got {len(requests)}, want 1 to {MAX_REQUESTS}")
        if not all(isinstance(r, OrderRequest) for r in requests):
            raise ValueError("requests: got a non-OrderRequest, want OrderRequest")
        if levels is not None and not 1 <= levels <= MAX_LEVELS:
            raise ValueError(f"levels: got {levels}, want 1 to {MAX_LEVELS} or None")
        if value_bits < 1 or count_bits < 1:
            raise ValueError(f"value/count bits: got {value_bits}/{count_bits}, want >= 1")
        self.n, self.me, self.owner = n, mpc.pid, owner
        self.first, self.second = [i for i in range(n) if i != owner][:2]  # stage partners
        self.length, self.mode, self.groups = length, mode, groups
        self.requests = tuple(requests)
        self.value_bits, self.count_bits = value_bits, count_bits
        self.modulus: int = secint.field.order
        self.bits: int = secint.bit_length
        self.sec_param: int = mpc.options.sec_param

        crossings: dict[Crossing, int] = {}
        self.lower: list[int] = []  # per request: its crossing for rank floor((T-1)q)
        self.upper: list[int] = []  # per request: for the next rank (= lower if b = 1)
        for request in self.requests:
            a, b = request.fraction.numerator, request.fraction.denominator
            self.lower.append(crossings.setdefault(Crossing(a, b, 1), len(crossings)))
            self.upper.append(crossings.setdefault(Crossing(a, b, b), len(crossings)))
        self.crossings = list(crossings)
        self.denominators = tuple(r.fraction.denominator for r in self.requests)
        widest = max(self.denominators)
        # b·C - θ lies in [-b·2^count_bits, b·2^count_bits): a comparison of this many bits.
        self.comparison_bits = count_bits + widest.bit_length() + 1
        # x = a(T - 1 + b) >= 0 is reduced modulo b by a masked opening.
        self.residue_bits = (widest * ((1 << count_bits) + widest)).bit_length()
        need = {
            "comparisons": self.comparison_bits,
            "numerators": value_bits + widest.bit_length() + 1,
        }
        for what, bits in need.items():
            if bits > self.bits:
                raise ValueError(
                    f"secure type for {what}: got {self.bits} bits, want >= {bits} "
                    "(count_bits, value_bits and quantile denominators set it)"
                )
        field_bits = self.modulus.bit_length()
        if self.residue_bits + self.sec_param + 4 > field_bits:
            raise ValueError(
                f"field for residues: got {field_bits} bits, "
                f"want >= {self.residue_bits + self.sec_param + 4}"
            )

        rows = len(self.crossings) * groups
        self.sizes = level_sizes(length, rows, self.comparison_bits, levels)
        self.padded = _product(self.sizes)
        # The group ends are dealt as one-hot (block, offset) pairs: P + Q elements, P·Q = M.
        splits = [
            (_product(self.sizes[:i]), _product(self.sizes[i:])) for i in range(len(self.sizes))
        ]
        self.ends_shape: tuple[int, int] = min(splits, key=sum)
        public = {
            "protocol": _PROTOCOL,
            "parties": n,
            "owner": owner,
            "length": length,
            "mode": mode,
            "groups": groups,
            "requests": [[r.kind, str(r.fraction)] for r in self.requests],
            "value_bits": value_bits,
            "count_bits": count_bits,
            "sizes": self.sizes,
            "modulus": str(self.modulus),
            "bits": self.bits,
            "sec_param": self.sec_param,
        }
        self.digest = hashlib.sha256(json.dumps(public, sort_keys=True).encode()).digest()

    @property
    def dealt_length(self) -> int:
        """Return the length of the owner's dealt vector: values, then group ends if any."""
        rows, columns = self.ends_shape
        ends = self.groups * (rows + columns) if self.mode == "labels" else 0
        return self.padded + ends


@dataclass(frozen=True)
class OwnerInput:
    """The owner's plaintext step: its sort order σ and the vector it deals.

    ``order[k]`` is the hub row at sorted position k (by label, then value). ``dealt`` holds
    the sorted values padded with zeros to the search length, then (labels mode) the
    one-hot block and offset of each group's last sorted position (all zero for a group
    with no row at or before it), as field elements.
    """

    order: IndexVector
    dealt: FieldVector


def prepare_owner(plan: OrderPlan, values: Values | None, labels: Values | None) -> OwnerInput:
    """Check the owner's values (and labels); sort its rows; lay out what it deals.

    Raises DataError if a vector has the wrong length, holds non-integers, a value with
    ``|v| >= 2^value_bits`` or a label outside ``[0, groups)``.
    """
    keys = _integers(values, plan.length, "values")
    bound = 1 << plan.value_bits
    if np.any(keys <= -bound) or np.any(keys >= bound):
        raise DataError(
            f"order values: got a value outside (-2^{plan.value_bits}, 2^{plan.value_bits})"
        )
    if plan.mode == "labels":
        groups = _integers(labels, plan.length, "group labels")
        if np.any(groups < 0) or np.any(groups >= plan.groups):
            raise DataError(f"group labels: got a label outside [0, {plan.groups})")
        order = _sort_order(keys, groups, plan.value_bits)
    else:
        order = _sort_order(keys, None, plan.value_bits)
    dealt = np.zeros(plan.dealt_length, dtype=object)
    dealt[: plan.length] = keys[order] % plan.modulus
    if plan.mode == "labels":
        rows, columns = plan.ends_shape
        last = np.cumsum(np.bincount(groups.astype(np.int64), minlength=plan.groups)) - 1
        blocks = np.zeros((plan.groups, rows), dtype=object)
        offsets = np.zeros((plan.groups, columns), dtype=object)
        present = np.flatnonzero(last >= 0)
        blocks[present, last[present] // columns] = 1
        offsets[present, last[present] % columns] = 1
        dealt[plan.padded :] = np.concatenate([blocks.ravel(), offsets.ravel()])
    return OwnerInput(order=order, dealt=dealt)


def _sort_order(
    keys: npt.NDArray[np.object_], groups: npt.NDArray[np.object_] | None, value_bits: int
) -> IndexVector:
    """Return the positions sorted by (group, value); ties in position order."""
    if value_bits <= 62:  # numpy's sort on 64-bit integers
        by_value = keys.astype(np.int64)
        if groups is None:
            return np.argsort(by_value, kind="stable").astype(np.int64)
        return np.lexsort((by_value, groups.astype(np.int64))).astype(np.int64)
    if groups is None:
        return np.array(sorted(range(len(keys)), key=lambda i: keys[i]), dtype=np.int64)
    return np.array(sorted(range(len(keys)), key=lambda i: (groups[i], keys[i])), dtype=np.int64)


def _integers(values: Values | None, length: int, what: str) -> npt.NDArray[np.object_]:
    """Return ``values`` as Python ints in an object array; DataError unless ints of ``length``."""
    if values is None or len(values) != length:
        got = "None" if values is None else len(values)
        raise DataError(f"order {what}: got {got} entries, want {length}")
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "iu":
            raise DataError(f"order {what}: got dtype {values.dtype}, want integers")
        return np.array(values.tolist(), dtype=object)
    kinds = {type(v) for v in values}
    if not all(issubclass(k, int | np.integer) and not issubclass(k, bool) for k in kinds):
        raise DataError(f"order {what}: got a non-integer, want ints")
    return np.array([int(v) for v in values], dtype=object)
