"""The secure step of aggregate queries: sum the owners' partials, release exact cells.

Run inside the MPC worker, which passes in MPyC's runtime (this module does not import
MPyC). Everything linear — sums of the parties' inputs, picking components, the formulas'
public coefficients — is computed locally on this party's Shamir shares with numpy; only
multiplications talk to the other parties, and every round's products travel in one
resharing (MPyC's private ``_reshare``, as its own ``np_multiply`` does). The rounds:

1. input: each party shares its partial aggregates and random masks;
2. products for the variance formulas (n·q, s², n², n·(n−1)), and the suppression
   polynomial P(n) = Π_{j<m}(n − j), zero exactly when n < m;
3. the random mask times each fraction's numerator and denominator;
4. the release: (mask·num·P, mask·den·P, mask'·P) — a fresh random sharing of values
   that are all zero for a suppressed cell and otherwise reveal only num/den.

P(n) costs one round with a :class:`PowerPool` of preshared random r and its powers
r, r², …, r^M (made in bulk, ahead of time): open c = n − r, which reveals nothing as r is
uniform and secret, and P(n) = P(c + r) is a public linear combination of the powers of r.
Large jobs, or minimum group sizes above M, use a product tree instead (⌈log2 m⌉ rounds).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.cells import DOMINANCE_BITS, CellKind
from engine.mpc._formulas import fractions
from engine.mpc._join_field import secure_array
from engine.mpc.job import COMPONENTS, CellProgram, JobResult, MpcJob

Vector = Any  # numpy object array of field elements (Python ints in [0, p))


class _Shares:
    """Local share arithmetic in one prime field, with resharing for products."""

    def __init__(self, mpc: Any, field: Any) -> None:
        self._mpc = mpc
        self._field = field
        self.p: int = field.order

    async def reshare(self, local: Vector) -> Vector:
        """Return fresh degree-t shares of a local degree-2t sharing (e.g. of dot products)."""
        return (await self._mpc._reshare(self._field.array(local % self.p, check=False))).value

    async def products(self, *pairs: tuple[Vector, Vector]) -> list[Vector]:
        """Return the elementwise products of each pair, in one round of communication."""
        shapes = [a.shape for a, _ in pairs]
        left = np.concatenate([a.ravel() for a, _ in pairs])
        right = np.concatenate([b.ravel() for _, b in pairs])
        values = await self.reshare(left * right)  # degree 2t -> fresh degree t
        out, offset = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            out.append(values[offset : offset + size].reshape(shape))
            offset += size
        return out


class PowerPool:
    """Preshared uniform random r with shares of r, r², …, r^M, each tuple used once.

    Refilled in bulk at the start of a job that needs more, at the same point of the job
    sequence on every party (so every party runs the same MPC operations in the same
    order). One refill of ``size`` tuples costs one input round and ⌈log2 M⌉ rounds of
    products.
    """

    def __init__(self, max_power: int = 64, size: int = 512) -> None:
        self.max_power = max_power
        self.size = size
        self._tuples: dict[tuple[int, int], Vector] = {}  # (field order, M) -> (count, M + 1)

    async def take(
        self, mpc: Any, secint: Any, arithmetic: _Shares, count: int, degree: int
    ) -> Vector:
        """Return ``count`` unused tuples with powers up to at least ``degree``.

        The array has shape (count, M + 1) with M the least power of two >= degree (and
        >= 8); column 0 is the public constant 1.
        """
        power = max(8, 1 << (degree - 1).bit_length())
        if power > self.max_power:
            raise ValueError(f"degree: got {degree}, want <= {self.max_power}")
        key = (arithmetic.p, power)
        stock = self._tuples.get(key)
        if stock is None or len(stock) < count:
            fresh = await self._make(mpc, secint, arithmetic, max(self.size, count), power)
            stock = fresh if stock is None else np.concatenate([stock, fresh])
        self._tuples[key] = stock[count:]
        return stock[:count]

    async def _make(
        self, mpc: Any, secint: Any, arithmetic: _Shares, count: int, max_power: int
    ) -> Vector:
        p = arithmetic.p
        own = np.array([secrets.randbelow(p) for _ in range(count)], dtype=object)
        parts = await mpc.gather(
            mpc.input(secint.array(own), senders=list(range(len(mpc.parties))))
        )
        r = sum((part.value for part in parts[1:]), parts[0].value) % p
        powers = [np.ones(count, dtype=object), r]  # powers[k] = r^k (powers[0] is public 1)
        while len(powers) <= max_power:
            have = len(powers) - 1  # r^1 .. r^have known; next r^(have+1) .. r^(2 have)
            top = powers[have]
            wanted = min(have, max_power - have)
            pairs = [(top, powers[k]) for k in range(1, wanted + 1)]
            powers.extend(await arithmetic.products(*pairs))
        return np.stack(powers, axis=1)


def _shifted_coefficients(c: Vector, sizes: Sequence[int], width: int, p: int) -> Vector:
    """Return a (cells, width + 1) array: coefficients of y ↦ Π_{j<m}(c + y − j) per cell.

    Cell i uses m = sizes[i] factors; its coefficients beyond degree m are zero.
    """
    cells = len(sizes)
    coefficients = np.zeros((cells, width + 1), dtype=object)
    coefficients[:, 0] = 1
    active = np.array(
        [[1 if j < size else 0 for j in range(width)] for size in sizes], dtype=object
    )
    for j in range(width):
        # Multiply by (y + (c - j)) where active, else by 1.
        shift = (c - j) % p
        on = active[:, j]
        shifted = np.zeros_like(coefficients)
        shifted[:, 1:] = coefficients[:, :-1]
        product = (shifted + coefficients * shift[:, None]) % p
        coefficients = np.where(on[:, None] == 1, product, coefficients)
    return coefficients


async def _suppression_by_pool(
    mpc: Any, secint: Any, arithmetic: _Shares, pool: PowerPool, n: Vector, sizes: Sequence[int]
) -> Any:
    """Start computing P(n) in one round; return an awaitable of its shares."""
    p = arithmetic.p
    width = max(sizes)
    tuples = await pool.take(mpc, secint, arithmetic, len(sizes), width)
    opened = mpc.output(secint.field.array((n - tuples[:, 1]) % p, check=False))

    async def finish() -> Vector:
        c = (await opened).value % p
        coefficients = _shifted_coefficients(c, sizes, width, p)
        return (coefficients * tuples[:, : width + 1]).sum(axis=1) % p

    return finish()


async def _dominance(
    mpc: Any, secint: Any, cells: CellProgram, components: list[Vector], allowed: Vector | None
) -> Vector | None:
    """Return shares of 0/1 per cell: ``allowed`` times [the dominance rule does not hold]
    (None when every cell is allowed and none has a rule).

    A cell with rule k is dominated when 100·t > k·a, t its top contributions and a the
    sum of absolute values: one secure comparison per such cell (and none for the others).
    """
    p = secint.field.order
    ruled = np.flatnonzero(np.array(cells.dominance or (0,) * len(cells), dtype=int) > 0)
    if not len(ruled):
        return allowed
    a, t = components[COMPONENTS.index("a")], components[COMPONENTS.index("t")]
    k = np.array([cells.dominance[i] for i in ruled], dtype=object)
    slack = (k * a[ruled] - 100 * t[ruled]) % p  # negative: dominated
    dominated = mpc.np_sgn(secure_array(secint, slack), l=DOMINANCE_BITS, LT=True)
    ok = np.ones(len(cells), dtype=object)
    ok[ruled] = (1 - (await mpc.gather(dominated)).value) % p
    if allowed is None:
        return ok
    (both,) = await _Shares(mpc, secint.field).products((allowed, ok))
    return both


def _halve(factors: Vector) -> tuple[Vector, Vector, Vector]:
    """Split the columns of a factor matrix into pairs to multiply and a carried column."""
    half = factors.shape[1] // 2
    return factors[:, :half], factors[:, half : 2 * half], factors[:, 2 * half :]


POOL_MAX_CELLS = 512  # larger jobs use the product tree (the pool's CPU cost grows as m²)
SIGN_BITS = 2 * 63 + 2 * 44 + 4  # |c| = |n·sxy − sx·sy| < 2**SIGN_BITS (see engine.cells)


async def run_cells_job(
    mpc: Any,
    secint: Any,
    job: MpcJob,
    inputs: tuple[list[int], list[int]],
    pool: PowerPool | None = None,
) -> JobResult:
    """Run ``job`` with this party's ``inputs`` (partial totals, and a 0/1 per cell: its
    say on the cell's release); return its shares of the released cells.

    Requires every party to call it with the same job and pool settings, in the same order.
    """
    p = secint.field.order
    m = len(job.cells)
    length = job.input_length
    totals, allowed = inputs
    if len(totals) != length or len(allowed) != m:
        raise ValueError(
            f"inputs: got {len(totals)} totals and {len(allowed)} flags, want {length} and {m}"
        )
    masks = [secrets.randbelow(p - 1) + 1 for _ in range(3 * m)]
    own = np.array([v % p for v in totals] + [int(a) for a in allowed] + masks, dtype=object)
    shared = mpc.input(secint.array(own), senders=list(range(len(mpc.parties))))
    parts = await mpc.gather(shared)
    values = [part.value for part in parts]
    total = sum((v[:length] for v in values[1:]), values[0][:length]) % p
    masks_total = sum((v[length + m :] for v in values[1:]), values[0][length + m :]) % p
    arithmetic = _Shares(mpc, secint.field)
    say = values[0][length : length + m]
    for other in values[1:]:  # any party's 0 suppresses the cell: their product
        (say,) = await arithmetic.products((say, other[length : length + m]))
    released = await release_cells(
        mpc, secint, job.cells, total, masks_total.reshape(3, m), pool, allowed=say
    )
    return JobResult(job.job_id, p, mpc.pid + 1, *released)


async def release_cells(
    mpc: Any,
    secint: Any,
    cells: CellProgram,
    total: Vector,
    masks: Vector,
    pool: PowerPool | None,
    allowed: Vector | None = None,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Return this party's shares of (num, den, flag, sign) of every cell.

    ``total`` holds shares of the totals the cells point at; ``masks`` three rows of shares
    of uniform random non-zero field elements, one per cell each, that no party knows;
    ``allowed`` shares of a 0/1 per cell (the owners' say; None: all 1). A cell is
    suppressed (all of num, den and flag zero) when its count is below its minimum, when
    an owner said 0, or when its dominance rule holds (100·t > k·a, one comparison).
    """
    field = secint.field
    p = field.order
    m = len(cells)
    r1, r2, r3 = masks
    padded = np.append(total % p, 0)  # a constant 0 for the totals a kind does not use
    zero = len(padded) - 1
    index = np.array([[i if i >= 0 else zero for i in row] for row in cells.totals], dtype=int)
    components = [padded[index[:, k]] for k in range(len(COMPONENTS))]
    n = components[0]
    arithmetic = _Shares(mpc, field)
    width = max(cells.min_size)
    kinds = np.array([int(k) for k in cells.kinds], dtype=int)

    use_pool = pool is not None and m <= POOL_MAX_CELLS and 0 < width <= pool.max_power
    pending_p = None
    factors = None
    if use_pool:
        assert pool is not None
        pending_p = await _suppression_by_pool(mpc, secint, arithmetic, pool, n, cells.min_size)
    else:
        active = np.array(
            [[1 if j < size else 0 for j in range(max(width, 1))] for size in cells.min_size],
            dtype=object,
        )
        offsets = np.arange(max(width, 1), dtype=object)[None, :] * active
        factors = ((n[:, None] - offsets) * active + (1 - active)) % p

    def tree_pair(pairs: list[tuple[Vector, Vector]]) -> Vector | None:
        """Add the next level of the product tree to ``pairs``; return the carried column."""
        if factors is None or factors.shape[1] <= 1:
            return None
        left, right, carry = _halve(factors)
        pairs.append((left, right))
        return carry

    # The formulas' products ride with the first level of the tree (or the opening of c).
    first: list[tuple[Vector, Vector]] = []
    carry = tree_pair(first)
    num, den, covariance, extra = await fractions(arithmetic, kinds, components[:6], first)
    if carry is not None:
        factors = np.concatenate([extra[0], carry], axis=1)

    sign = np.zeros(m, dtype=object)
    if covariance is not None:
        # CORR releases the sign of its covariance: one comparison per CORR cell.
        # (The other cells' signs stay 0, what a comparison of 0 would give.)
        corr = np.flatnonzero(kinds == int(CellKind.CORR))
        picked = secure_array(secint, covariance[corr])
        negative = mpc.np_sgn(picked, l=SIGN_BITS, LT=True)
        sign[corr] = (await mpc.gather(negative)).value % p

    # The mask on each fraction (with the next tree level).
    pairs = [(np.concatenate([r1, r1, r3]), np.concatenate([num, den, sign]))]
    carry = tree_pair(pairs)
    results = await arithmetic.products(*pairs)
    masked = results[0]
    if carry is not None:
        factors = np.concatenate([results[1], carry], axis=1)

    if pending_p is not None:
        product = await pending_p
    else:
        assert factors is not None
        while factors.shape[1] > 1:
            left, right, carry = _halve(factors)
            (level,) = await arithmetic.products((left, right))
            factors = np.concatenate([level, carry], axis=1)
        product = factors[:, 0]
    say = await _dominance(mpc, secint, cells, components, allowed)
    if say is not None:
        (product,) = await arithmetic.products((product, say))

    # Release. Products are reshared, so these are fresh random sharings.
    (released,) = await arithmetic.products(
        (np.concatenate([masked, r2]), np.concatenate([product] * 4))
    )
    values = [int(v) for v in released]
    return (
        tuple(values[:m]),
        tuple(values[m : 2 * m]),
        tuple(values[3 * m :]),
        tuple(values[2 * m : 3 * m]),
    )
