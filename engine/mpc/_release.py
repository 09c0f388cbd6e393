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

from engine.cells import CellKind
from engine.mpc.job import JobResult, MpcJob

Vector = Any  # numpy object array of field elements (Python ints in [0, p))


class _Shares:
    """Local share arithmetic in one prime field, with resharing for products."""

    def __init__(self, mpc: Any, field: Any) -> None:
        self._mpc = mpc
        self._field = field
        self.p: int = field.order

    async def products(self, *pairs: tuple[Vector, Vector]) -> list[Vector]:
        """Return the elementwise products of each pair, in one round of communication."""
        shapes = [a.shape for a, _ in pairs]
        left = np.concatenate([a.ravel() for a, _ in pairs])
        right = np.concatenate([b.ravel() for _, b in pairs])
        local = self._field.array(left * right % self.p, check=False)
        values = (await self._mpc._reshare(local)).value  # degree 2t -> fresh degree t
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


def _halve(factors: Vector) -> tuple[Vector, Vector, Vector]:
    """Split the columns of a factor matrix into pairs to multiply and a carried column."""
    half = factors.shape[1] // 2
    return factors[:, :half], factors[:, half : 2 * half], factors[:, 2 * half :]


POOL_MAX_CELLS = 512  # larger jobs use the product tree (the pool's CPU cost grows as m²)


async def run_cells_job(
    mpc: Any, secint: Any, job: MpcJob, inputs: list[int], pool: PowerPool | None = None
) -> JobResult:
    """Run ``job`` with this party's ``inputs``; return its shares of the released cells.

    Requires every party to call it with the same job and pool settings, in the same order.
    """
    field = secint.field
    p = field.order
    cells = job.cells
    m = len(cells)
    length = job.input_length
    if len(inputs) != length:
        raise ValueError(f"inputs: got {len(inputs)}, want {length}")
    masks = [secrets.randbelow(p - 1) + 1 for _ in range(2 * m)]
    own = np.array([v % p for v in inputs] + masks, dtype=object)
    shared = mpc.input(secint.array(own), senders=list(range(len(mpc.parties))))
    parts = await mpc.gather(shared)
    total = sum((part.value for part in parts[1:]), parts[0].value) % p
    total = np.append(total, 0)  # a constant 0 for the components a kind does not use
    zero = length + 2 * m
    r1 = total[length : length + m]
    r2 = total[length + m : length + 2 * m]
    n = total[np.array(cells.n_index, dtype=int)]
    s = total[np.array([i if i >= 0 else zero for i in cells.s_index], dtype=int)]
    q = total[np.array([i if i >= 0 else zero for i in cells.q_index], dtype=int)]
    arithmetic = _Shares(mpc, field)
    width = max(cells.min_size)

    kinds = np.array([int(k) for k in cells.kinds], dtype=int)

    def onehot(*wanted: CellKind) -> Vector:
        return np.isin(kinds, [int(w) for w in wanted]).astype(object)

    num = (n * onehot(CellKind.COUNT) + s * onehot(CellKind.SUM, CellKind.AVG)) % p
    den = (onehot(CellKind.COUNT, CellKind.SUM) + n * onehot(CellKind.AVG)) % p
    variance = onehot(CellKind.VAR_POP, CellKind.VAR_SAMP)

    use_pool = pool is not None and m <= POOL_MAX_CELLS and width <= pool.max_power
    pending_p = None
    factors = None
    if use_pool:
        assert pool is not None
        pending_p = await _suppression_by_pool(mpc, secint, arithmetic, pool, n, cells.min_size)
    else:
        active = np.array(
            [[1 if j < size else 0 for j in range(width)] for size in cells.min_size],
            dtype=object,
        )
        offsets = np.arange(width, dtype=object)[None, :] * active
        factors = ((n[:, None] - offsets) * active + (1 - active)) % p

    def tree_pair(pairs: list[tuple[Vector, Vector]]) -> Vector | None:
        """Add the next level of the product tree to ``pairs``; return the carried column."""
        if factors is None or factors.shape[1] <= 1:
            return None
        left, right, carry = _halve(factors)
        pairs.append((left, right))
        return carry

    # The formulas' products (with the first tree level, or while c is being opened).
    pairs: list[tuple[Vector, Vector]] = []
    carry = tree_pair(pairs)
    if variance.any():
        pairs.append((np.stack([n, s, n, n]), np.stack([q, s, n, (n - 1) % p])))
    if pairs:
        results = await arithmetic.products(*pairs)
        if carry is not None:
            factors = np.concatenate([results.pop(0), carry], axis=1)
        if variance.any():
            nq, ss, nn, nn1 = results.pop(0)
            num = (num + (nq - ss) * variance) % p
            den = (den + nn * onehot(CellKind.VAR_POP) + nn1 * onehot(CellKind.VAR_SAMP)) % p

    # The mask on each fraction (with the next tree level).
    pairs = [(np.concatenate([r1, r1]), np.concatenate([num, den]))]
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

    # Release. Products are reshared, so these are fresh random sharings.
    (released,) = await arithmetic.products(
        (np.concatenate([masked, r2]), np.concatenate([product, product, product]))
    )
    return JobResult(
        job_id=job.job_id,
        modulus=p,
        x=mpc.pid + 1,
        num=tuple(int(v) for v in released[:m]),
        den=tuple(int(v) for v in released[m : 2 * m]),
        flag=tuple(int(v) for v in released[2 * m :]),
    )
