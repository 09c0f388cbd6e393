"""The owners' local step of the join and the helper's matching.

docs/join-protocol.md, "The join, step by step", steps 1 and 4.

An owner checks its side, pads it to the public length N with rows whose payload is 0 —
dummies that match the partner's dummies, then fillers that match nothing — and shuffles
all N rows by its own secret permutation. The hub holds every dummy of domain 0 and ``d``
of domain 1; the other owner holds every dummy of domain 1 and ``d`` of domain 0; so
``d_hub + d_other`` dummy pairs match, and all of them have payload 0 on both sides.

The helper sees only two lists of N pseudonyms in the owners' shuffled orders; it pairs the
equal ones, sends the hub's other rows to zero rows that extend the other owner's side to
2N rows, and completes the pairing to a permutation of range(2N).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import CapacityError, DataError, PeerError
from engine.mpc._join_field import FieldVector
from engine.mpc._join_prf import (
    PSEUDONYM_BYTES,
    IndexVector,
    Pseudonymizer,
    fillers,
    random_permutation,
)

Column = Sequence[int] | npt.NDArray[np.integer[Any]]  # one payload value per key

HUB_DOMAIN = 0  # the dummy domain the hub holds in full
OTHER_DOMAIN = 1  # the dummy domain the other owner holds in full


@dataclass(frozen=True)
class JoinSide:
    """What one owner brings to a join.

    ``keys`` are the join keys (bytes), unique within the side: the owner pre-aggregates per
    key first. ``columns`` are the payload columns, each a sequence of ints (negative allowed,
    within the secure type's range; numpy integer arrays are accepted) with one value per key,
    in the order of ``keys``. Include a column that is 1 on every real row (or a filter bit):
    counts are sums of it, never of the match indicator.
    """

    keys: Sequence[bytes]
    columns: Sequence[Column]


class PaddedTable:
    """One owner's side, padded to N rows and shuffled by the owner's secret permutation.

    ``columns`` are field elements in shuffled order; row ``i`` of the shuffled table is row
    ``order[i]`` of the padded one, whose first ``real_rows`` rows are the owner's own.
    """

    def __init__(
        self, side: JoinSide, width: int, length: int, reserve: int, modulus: int, bits: int
    ) -> None:
        """Check ``side`` and pad it to ``length`` rows, keeping ``reserve`` rows for dummies.

        Values are stored modulo ``modulus``; they must lie in ``[-2^(bits-1), 2^(bits-1))``.

        Raises DataError if the keys are not unique bytes, a column has the wrong length or
        holds non-integers or values outside the secure type's range, or the number of
        columns is not ``width``; CapacityError if ``len(side.keys) + reserve > length``.
        """
        rows = len(side.keys)
        if len(side.columns) != width:
            raise DataError(f"join side: got {len(side.columns)} columns, want {width}")
        if rows + reserve > length:
            raise CapacityError(
                f"padded length: got {length}, want >= {rows + reserve} "
                "(rows of this side plus twice the dummies)"
            )
        if not all(isinstance(k, bytes) for k in side.keys):
            raise DataError("join keys: got a non-bytes key, want bytes")
        if len(set(side.keys)) != rows:
            raise DataError("join keys: got duplicates, want unique keys (pre-aggregate per key)")
        self.real_rows = rows
        self.keys = list(side.keys)
        self.order = random_permutation(length)
        self.columns = [
            _padded_column(column, rows, length, bits, modulus, j)[self.order]
            for j, column in enumerate(side.columns)
        ]

    def side_rows(self) -> IndexVector:
        """Return, per shuffled row, the index of the side's row there, or -1 for padding.

        Row ``i`` of the shuffled table holds ``side.keys[side_rows()[i]]`` and the values of
        the side's columns at that index, unless ``side_rows()[i]`` is -1 (a dummy or filler
        row, whose payload is 0).
        """
        rows: IndexVector = np.where(self.order < self.real_rows, self.order, -1)
        return rows

    def pseudonyms(
        self, pseudonymizer: Pseudonymizer, full_domain: int, dummies: int, partial: int
    ) -> bytes:
        """Return the N pseudonyms in shuffled order, 16 bytes each.

        The padded rows after the real ones get every dummy of ``full_domain`` (``dummies``
        of them), then ``partial`` dummies of the other domain, then fillers.
        """
        length = len(self.order)
        listed = (
            pseudonymizer.real(self.keys)
            + pseudonymizer.dummies(full_domain, dummies)
            + pseudonymizer.dummies(1 - full_domain, partial)
        )
        listed += fillers(length - len(listed))
        padded = np.frombuffer(b"".join(listed), dtype=f"V{PSEUDONYM_BYTES}")
        return padded[self.order].tobytes()


def _padded_column(
    column: Column, rows: int, length: int, bits: int, modulus: int, index: int
) -> FieldVector:
    if len(column) != rows:
        raise DataError(f"join column {index}: got {len(column)} values, want {rows}")
    if isinstance(column, np.ndarray):
        if column.dtype.kind not in "iub":
            raise DataError(f"join column {index}: got dtype {column.dtype}, want integers")
        values = column.astype(object)
    else:
        if not all(isinstance(v, int | np.integer) for v in column):
            raise DataError(f"join column {index}: got a non-integer value, want ints")
        values = np.array([int(v) for v in column], dtype=object)
    bound = 1 << (bits - 1)
    if rows and (min(values) < -bound or max(values) >= bound):
        raise DataError(f"join column {index}: got a value outside the {bits}-bit range")
    padded = np.zeros(length, dtype=object)
    padded[:rows] = values % modulus
    return padded


@dataclass(frozen=True)
class Matching:
    """The helper's pairing of hub rows with the other owner's rows (shuffled orders).

    The other owner's side is extended by N rows of zeros (rows N .. 2N-1). ``pairing`` (ψ)
    is a bijection of range(2N): hub row i < N is aligned with row ``pairing[i]`` of the
    extended side, which is its match if ``matched[i]`` is 1 and a zero row otherwise; rows
    N .. 2N-1 of ψ take the remaining rows, so that ψ is a permutation.
    """

    pairing: IndexVector
    matched: FieldVector

    @property
    def count(self) -> int:
        """Return the number of matched rows: |A ∩ B| plus the dummy matches."""
        return int(np.count_nonzero(self.matched))


def match_pseudonyms(hub: bytes, other: bytes, length: int) -> Matching:
    """Pair the hub's and the other owner's pseudonyms (N each, 16 bytes each).

    Raises PeerError if a list repeats a pseudonym (the owners guarantee it does not).
    """
    both = np.frombuffer(hub + other, dtype=f"V{PSEUDONYM_BYTES}")
    order = np.argsort(both, kind="stable")
    ordered = both[order]
    equal = np.flatnonzero(ordered[1:] == ordered[:-1])
    first, second = order[equal], order[equal + 1]  # first < second: the sort is stable
    if np.any(second < length) or np.any(first >= length):
        raise PeerError("pseudonyms: got a repeated pseudonym within one side, want unique")
    hub_rows, other_rows = first, second - length
    pairing = np.empty(2 * length, dtype=np.int64)
    pairing[hub_rows] = other_rows
    hub_free = np.ones(length, dtype=bool)
    hub_free[hub_rows] = False
    other_free = np.ones(length, dtype=bool)
    other_free[other_rows] = False
    zero_rows = length + random_permutation(length)
    unmatched = np.flatnonzero(hub_free)
    pairing[unmatched] = zero_rows[: len(unmatched)]
    rest = np.concatenate([np.flatnonzero(other_free), zero_rows[len(unmatched) :]])
    pairing[length:] = rest[random_permutation(length)]
    matched = np.zeros(length, dtype=object)
    matched[hub_rows] = 1
    return Matching(pairing=pairing, matched=matched)
