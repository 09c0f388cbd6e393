"""Query-set overlap control over joins, on secret shares (README, "What is protected";
docs/join-protocol.md, "Overlap control over a join").

A release over a join must not differ by 1..m − 1 joined keys from a join release kept in
the window (the last W released row sets), or an analyst subtracts the two and reads those
few people's values. Nobody may learn the joined set, so the whole check runs inside MPC and
its outcome stays secret: it only multiplies into each cell's "allowed" bit, like the
minimum group size (a withheld cell looks like any suppressed cell).

Identity and sketch. Every joined row is one join key (each side has one row per key). The
hub knows, for each of its shuffled positions i, its key and so the key's identity
x_i = SHA-256(federation overlap secret, key) mod q, q the prime of the fixed overlap field
(:data:`OVERLAP_BITS`, the same for every join, so that sketches of any two joins are
comparable); padding has x = 0 and weight 0. The sketch of a cell is
S_k = Σ_i a_i · x_i^k, k = 0 … 2m − 2, with a_i the weight of row i in the cell's own count
(the rows its aggregate reads: COUNT(*)'s, or COUNT(v)'s for SUM(v); the hub's count
column of the cell's group times the spokes' count columns and the row filter, the same
product as the cell's count). The hub inputs h_i · x_i^k (its own column h times
the powers: it knows both), the spokes' factor is converted from the join field into the
overlap field by a masked opening (:func:`convert_small`), and every S_k is an entry of one
matrix product (one resharing for all).

Decision. For a kept sketch S' the difference D = S − S' is the power-sum sequence of the
keys whose weight changed (weights are small nonzero integers), so with r such keys the
m × m Hankel matrix H[i][j] = D_{i+j} is V^T·diag(w)·V (V the r × m Vandermonde matrix of
their identities): singular iff r < m when the identities are distinct, and for r ≥ m
singular only with probability O(m²/q) over the keyed hash. r = 0 iff D = 0, tested as
Σ ρ_k·D_k = 0 with public random ρ (error 1/q). So a cell is withheld iff for some kept
sketch det(H) = 0 and D ≠ 0, i.e. iff the product over the kept sketches of
F = det(H) + [D = 0] is 0 (identical sets have det 0 and [D = 0] = 1). det(H) comes from
the power traces tr(H^k) and Newton's identities (:func:`determinants`: ⌈log2 ⌈m/2⌉⌉ + 1
rounds of secure m × m matrix products, then m − 1 rounds of scalar products, divisions
only by the public 1 … m); the zero tests are the quadratic-residuosity test of Nishide
and Ohta (2007), vectorized (one product round, one opening of uniformly random values,
log2 κ rounds for the AND of κ = 40 bits); the product over the window is a product tree
(log2 W rounds). Products are reshared under fresh pair keys (AES streams,
:class:`KeyedShares`). Nothing opened depends on the data.

What is opened, and to whom: the masked conversions (c + r with r ≥ 2^40 times larger than
c: statistically hidden), the zero tests' uniformly random residues, and the job ids kept
by each party (public: every party knows which join queries ran). Nothing about H, D, S,
the rank or the outcome is opened.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any

import gmpy2
import numpy as np

from engine.mpc._join_field import secure_array
from engine.mpc._join_keys import agree
from engine.mpc._join_prf import PairKey, Purpose
from engine.mpc._join_stage import deal_vectors
from engine.mpc._order_products import SecureProducts
from engine.mpc._release import _Shares
from engine.mpc.job import JoinInput, JoinJob, OverlapRecord, OverlapWindow

log = logging.getLogger(__name__)

OVERLAP_BITS = 128  # the overlap field: MPyC's SecInt(128) prime, the same for every join
MASK_BITS = 40  # statistical hiding of a masked conversion
ZERO_TEST_ROUNDS = 40  # a nonzero value passes a zero test with probability 2^-40

Vector = Any  # numpy object array of field elements


class KeyedShares(_Shares):
    """:class:`_Shares` whose resharing runs under a call's pair keys (AES streams and
    half the traffic of MPyC's, :class:`engine.mpc._order_products.SecureProducts`)."""

    def __init__(self, mpc: Any, secint: Any, keys: dict[int, PairKey]) -> None:
        super().__init__(mpc, secint.field)
        self._fast = SecureProducts(mpc, secint, keys)
        self._dealt = 0

    async def reshare(self, local: Vector) -> Vector:
        (out,) = await self._fast.reduce_shares([np.asarray(local) % self.p])
        return out

    async def products(self, *pairs: tuple[Vector, Vector]) -> list[Vector]:
        return await self._fast.multiply_shares(list(pairs))

    async def randoms(self, secint: Any, count: int) -> Vector:
        """Return shares of ``count`` uniform secret field elements: every party deals
        its own draws (streams named apart from the conversions' masks)."""
        self._dealt += 1
        own = np.array([secrets.randbelow(self.p) for _ in range(count)], dtype=object)
        offset = len(self._mpc.parties) * (1 + self._dealt)
        return await _mask_shares(self._mpc, secint, own, self._fast.keys, offset)


def identity(secret: str, key: bytes) -> int:
    """Return a join key's identity (256 bits) under the federation's overlap secret; the
    worker reduces it into the overlap field. The same at every hub for the same key."""
    return int.from_bytes(
        hashlib.sha256(f"jointstat/join-overlap/v1:{secret}:".encode() + key).digest(), "big"
    )


def job_tag(job_id: str) -> int:
    """Return the 60-bit tag of a job id, as the parties exchange it to agree on a window."""
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:8], "big") >> 4 or 1


def powers(x: Vector, terms: int, q: int) -> Vector:
    """Return the (terms, len(x)) array x^k mod q, k = 0 … terms − 1 (0^0 = 1)."""
    out = np.empty((terms, len(x)), dtype=object)
    current = np.ones(len(x), dtype=object)
    for k in range(terms):
        out[k] = current
        current = (current * x) % q
    return out


def combination(tag: str, terms: int, q: int) -> Vector:
    """Return the public random ρ for the test D ≠ 0 (the same at every party)."""
    out = []
    for k in range(terms):
        digest = hashlib.sha256(f"jointstat/join-overlap/rho:{tag}:{k}".encode()).digest()
        out.append(int.from_bytes(digest, "big") % q)
    return np.array(out, dtype=object)


async def shared_randoms(mpc: Any, secint: Any, count: int, bound: int) -> Vector:
    """Return shares of the sum of every party's uniform draws below ``bound`` (count of
    them): uniform and secret unless every party colludes."""
    own = np.array([secrets.randbelow(bound) for _ in range(count)], dtype=object)
    parts = await mpc.gather(mpc.input(secint.array(own), senders=list(range(len(mpc.parties)))))
    return sum((part.value for part in parts[1:]), parts[0].value) % secint.field.order


async def convert_small(
    mpc: Any,
    source: Any,
    target: Any,
    values: Vector,
    bits: int,
    keys: dict[int, PairKey] | None = None,
) -> Vector:
    """Return shares in ``target``'s field of ``values`` (shares in ``source``'s field of
    integers in [0, 2^bits)): open c = v + R (R = Σ every party's r_j < 2^(bits + 40),
    input in both fields), then v = c − R in the target field. c hides v statistically.

    With a call's pair ``keys`` the masks are dealt (:func:`deal_vectors`, one partner's
    shares from a stream), else input through MPyC. Requires both fields above the
    parties · 2^(bits + 41) (checked).
    """
    shape = values.shape
    flat = values.ravel()
    n = len(mpc.parties)
    bound = 1 << (bits + MASK_BITS)
    need = (n + 1) * bound
    for kind in (source, target):
        if kind.field.order <= need:
            raise ValueError(
                f"conversion: got a {kind.field.order.bit_length()}-bit field, want more than "
                f"{need.bit_length()} bits"
            )
    own = np.array([secrets.randbelow(bound) for _ in range(len(flat))], dtype=object)
    p, q = source.field.order, target.field.order
    mask_p = await _mask_shares(mpc, source, own, keys, 0)
    mask_q = await _mask_shares(mpc, target, own, keys, n)
    opened = await mpc.output(source.field.array((flat + mask_p) % p, check=False))
    c = np.array([int(v) for v in opened.value], dtype=object) % q
    return ((c - mask_q) % q).reshape(shape)


async def _mask_shares(
    mpc: Any, secint: Any, own: Vector, keys: dict[int, PairKey] | None, offset: int
) -> Vector:
    """Return shares of Σ_j r_j, each party's ``own`` r_j dealt or input in ``secint``."""
    modulus = secint.field.order
    n = len(mpc.parties)
    if keys is None:
        parts = await mpc.gather(mpc.input(secint.array(own), senders=list(range(n))))
        return sum((part.value for part in parts[1:]), parts[0].value) % modulus
    total = np.zeros(len(own), dtype=object)
    for dealer in range(n):
        (share,) = await deal_vectors(
            mpc,
            keys,
            dealer=dealer,
            partner=(dealer + 1) % n,
            vectors=[own % modulus] if dealer == mpc.pid else None,
            count=1,
            length=len(own),
            modulus=modulus,
            purpose=Purpose.OVERLAP_MASK,
            index=offset + dealer,
        )
        total = total + share
    return total % modulus


def non_square(q: int) -> int:
    """Return the least quadratic non-residue mod the odd prime q."""
    eta = 2
    while pow(eta, (q - 1) // 2, q) == 1:
        eta += 1
    return eta


async def zero_bits(
    mpc: Any,
    secint: Any,
    values: Vector,
    rounds: Sequence[int] | None = None,
    arithmetic: _Shares | None = None,
) -> Vector:
    """Return shares of [v == 0] for every share v of ``values`` (a vector), secret.

    ``rounds[i]`` (default :data:`ZERO_TEST_ROUNDS`) sets the error 2^-rounds[i] of test i.

    Nishide–Ohta: per test and round i, open c_i = v·s_i + (1 + z_i(η − 1))·r_i² with s_i,
    r_i uniform and z_i a random bit (all secret), η a non-residue. If v = 0, c_i is a
    residue iff z_i = 0; if v ≠ 0, c_i is uniform. So e_i = [c_i residue] == [z_i = 0]
    is 1 for every i when v = 0, and is a fair coin otherwise; the result is Π_i e_i.
    """
    field = secint.field
    q = field.order
    arithmetic = arithmetic or _Shares(mpc, field)
    count = len(values)
    if count == 0:
        return np.zeros(0, dtype=object)
    per = list(rounds) if rounds is not None else [ZERO_TEST_ROUNDS] * count
    width = max(per, default=1)
    total = sum(per)
    if isinstance(arithmetic, KeyedShares):
        randoms = await arithmetic.randoms(secint, 2 * total)
    else:
        randoms = await shared_randoms(mpc, secint, 2 * total, q)
    s, r = randoms[:total], randoms[total:]
    z = (await mpc.gather(mpc.np_random_bits(secint, total))).value % q
    eta = non_square(q)
    (r2,) = await arithmetic.products((r, r))
    v = np.repeat(values % q, per)
    local = (v * s + (1 + z * (eta - 1)) * r2) % q  # degree 2t
    opened = await mpc.output(field.array(local, check=False), threshold=2 * mpc.threshold)
    c = [int(x) for x in opened.value]
    residue = np.array([1 if gmpy2.legendre(x, q) >= 0 else 0 for x in c])  # 0 counts
    # e = 1 − z where c is a residue (or 0), z where it is not
    flat = np.where(residue == 1, (1 - z) % q, z).astype(object)
    e = np.ones((count, width), dtype=object)  # rows padded with the public 1
    e[np.repeat(np.arange(count), per), np.concatenate([np.arange(k) for k in per])] = flat
    return await product_tree(arithmetic, e)


async def product_tree(arithmetic: _Shares, factors: Vector) -> Vector:
    """Return shares of the product of each row of ``factors`` (log2 columns rounds)."""
    while factors.shape[1] > 1:
        half = factors.shape[1] // 2
        (level,) = await arithmetic.products((factors[:, :half], factors[:, half : 2 * half]))
        factors = np.concatenate([level, factors[:, 2 * half :]], axis=1)
    return factors[:, 0]


async def determinants(arithmetic: _Shares, matrices: Vector) -> Vector:
    """Return shares of det of each symmetric m × m matrix of ``matrices`` (shape (P, m, m)).

    Power traces and Newton's identities (Le Verrier's method): the powers A^2 … A^h,
    h = ⌈m/2⌉, by secure matrix products (⌈log2 h⌉ + 1 rounds; symmetric, so only upper
    triangles are reshared), p_k = tr(A^k) for k ≤ m as tr(A^h · A^(k−h)) (one round), then
    k·e_k = Σ_i (−1)^(i−1) e_(k−i) p_i (m − 1 rounds of scalar products) and det A = e_m.
    The field's characteristic exceeds m, so the divisions are by public invertible 1 … m.
    """
    q = arithmetic.p
    count, m, _ = matrices.shape
    upper = np.triu_indices(m)
    half = (m + 1) // 2
    power = {1: matrices % q}
    while max(power) < half:
        top = max(power)
        wanted = list(range(top + 1, min(2 * top, half) + 1))
        local = np.stack(
            [(np.matmul(power[top], power[j - top]) % q)[:, upper[0], upper[1]] for j in wanted]
        )
        reduced = (await arithmetic.reshare(local.ravel())).reshape(len(wanted), count, -1)
        for j, values in zip(wanted, reduced, strict=True):
            full = np.zeros((count, m, m), dtype=object)
            full[:, upper[0], upper[1]] = values
            full[:, upper[1], upper[0]] = values
            power[j] = full
    traces = {k: np.trace(power[k], axis1=1, axis2=2) % q for k in range(1, min(half, m) + 1)}
    beyond = list(range(half + 1, m + 1))
    if beyond:
        local = np.stack([np.sum(power[half] * power[k - half], axis=(1, 2)) for k in beyond])
        reduced = (await arithmetic.reshare(local.ravel() % q)).reshape(len(beyond), count)
        traces.update(zip(beyond, reduced, strict=True))
    elementary = [np.ones(count, dtype=object), traces[1]]  # e_0, e_1
    for k in range(2, m + 1):
        products = await arithmetic.products(*((elementary[k - i], traces[i]) for i in range(1, k)))
        total = traces[k] * (-1) ** (k - 1)
        for i, term in zip(range(1, k), products, strict=True):
            total = total + term * (-1) ** (i - 1)
        elementary.append(total * pow(k, -1, q) % q)
    return elementary[m] % q


def hankel(differences: Vector, m: int) -> Vector:
    """Return the (P, m, m) Hankel matrices H[p][i][j] = D[p][i + j]."""
    index = np.add.outer(np.arange(m), np.arange(m))
    return differences[:, index]


async def close_pairs(
    mpc: Any,
    secint: Any,
    new: Vector,
    kept: Vector,
    m: int,
    tag: str,
    arithmetic: _Shares | None = None,
) -> Vector:
    """Return shares, per row of ``new`` (C, ≥ 2m − 1), of [some row of ``kept`` (E, ≥
    2m − 1) differs from it by 1 … m − 1 keys] (all zero when ``kept`` is empty)."""
    q = secint.field.order
    count = len(new)
    if len(kept) == 0 or count == 0:
        return np.zeros(count, dtype=object)
    terms = 2 * m - 1
    arithmetic = arithmetic or _Shares(mpc, secint.field)
    d = (new[:, None, :terms] - kept[None, :, :terms]) % q  # (C, E, K)
    flat = d.reshape(-1, terms)
    rho = combination(tag, terms, q)
    z = flat.dot(rho) % q
    if m == 1:
        return np.zeros(count, dtype=object)  # no difference is below 1
    det = await determinants(arithmetic, hankel(flat, m))
    # F = det + [D = 0] is 0 exactly for a close pair (identical sets have det 0 and
    # [D = 0] = 1); a cell is close to some kept set iff the product of its F is 0.
    same = await zero_bits(mpc, secint, z, None, arithmetic)
    far = ((det + same) % q).reshape(count, len(kept))
    product = await product_tree(arithmetic, far)
    return await zero_bits(mpc, secint, product, None, arithmetic)


def plain_close(new: Sequence[int], kept: Sequence[int], m: int, q: int) -> bool:
    """Return the decision of :func:`close_pairs` for one pair, in plaintext (the oracle
    of the tests): det(H) == 0 and D != 0."""
    d = [(a - b) % q for a, b in zip(new[: 2 * m - 1], kept[: 2 * m - 1], strict=True)]
    if not any(d):
        return False
    matrix = [[d[i + j] for j in range(m)] for i in range(m)]
    return _det_mod(matrix, q) == 0


def _det_mod(matrix: list[list[int]], q: int) -> int:
    """Return det mod q by Gaussian elimination (plaintext)."""
    a = [row[:] for row in matrix]
    size = len(a)
    det = 1
    for col in range(size):
        pivot = next((r for r in range(col, size) if a[r][col] % q), None)
        if pivot is None:
            return 0
        if pivot != col:
            a[col], a[pivot] = a[pivot], a[col]
            det = -det
        det = det * a[col][col] % q
        inverse = pow(a[col][col], -1, q)
        for r in range(col + 1, size):
            factor = a[r][col] * inverse % q
            if factor:
                a[r] = [(x - factor * y) % q for x, y in zip(a[r], a[col], strict=True)]
    return det % q


async def join_overlap(
    mpc: Any,
    join_type: Any,
    job: JoinJob,
    side: JoinInput | None,
    hub_rows: Any,
    factors: dict[tuple[int, ...], Vector],
    window: OverlapWindow | None,
) -> tuple[Vector, OverlapRecord]:
    """Return shares (in the overlap field) of a withhold bit per sketch of ``job`` and
    what this party keeps of the job (:class:`OverlapRecord`).

    ``factors`` maps each right-hand factor (spoke columns) to its shares on the aligned
    rows (with the row filter), ``hub_rows`` and ``side`` are the hub's (None elsewhere),
    ``window`` this party's kept row sets.
    """
    control = job.overlap
    assert control is not None
    secint = mpc.SecInt(OVERLAP_BITS)
    field = secint.field
    q = field.order
    terms = control.terms
    length = job.padded_length
    began = time.perf_counter()

    # 1. The hub deals its count columns times the powers of the identities (one set of
    #    powers per count column), or, with several count columns (groups labelled by the
    #    hub), the powers once and its count columns apart: (K + A)·N values, not K·A·N.
    lefts = sorted({s[0] for s in control.sketches})
    apart = len(lefts) > 1
    count = terms + len(lefts) if apart else terms
    own = np.zeros((count, length), dtype=object)
    if hub_rows is not None and side is not None:
        rows = np.asarray(hub_rows)
        real = rows >= 0
        x = np.zeros(length, dtype=object)
        x[real] = [side.identities[r] % (q - 1) + 1 for r in rows[real]]
        exponents = powers(x, terms, q)
        columns = np.zeros((len(lefts), length), dtype=object)
        for i, a in enumerate(lefts):
            columns[i, real] = [side.columns[a][r] % q for r in rows[real]]
        if apart:
            own[:terms], own[terms:] = exponents, columns
        else:
            own[:] = (exponents * columns[0]) % q
    public = f"jointstat join overlap v1|{job.job_id}|{q}|{terms}|{length}|{len(lefts)}"
    keys = await agree(mpc, hashlib.sha256(public.encode()).digest(), False, "join overlap")
    keyed = KeyedShares(mpc, secint, keys)
    dealt_rows = await deal_vectors(
        mpc,
        keys,
        dealer=job.hub,
        partner=(job.hub + 1) % len(mpc.parties),
        vectors=list(own) if mpc.pid == job.hub else None,
        count=count,
        length=length,
        modulus=q,
        purpose=Purpose.OVERLAP_INPUT,
        index=0,
    )
    left = np.stack(dealt_rows)
    dealt = time.perf_counter()

    # 2. The spokes' factors into the overlap field, and every sketch in one resharing.
    rights = sorted({s[1:] for s in control.sketches})
    stacked = np.stack([factors[r] for r in rights])
    if join_type.field.order == q:  # the join ran in the overlap field
        right = stacked % q
    else:
        right = await convert_small(mpc, join_type, secint, stacked, max(control.bits), keys)
    if apart:
        # each sketch's weight a_i = hub count · spoke factor (one round), then its powers
        pairs = [
            (left[terms + lefts.index(s[0])], right[rights.index(s[1:])]) for s in control.sketches
        ]
        (weights,) = await keyed.products(
            (np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs]))
        )
        picked = (np.dot(weights, left[:terms].T) % q).ravel()  # (sketches, terms)
    else:
        local = np.dot(left, right.T) % q  # (terms, rights), degree 2
        picked = np.array(
            [local[k, rights.index(s[1:])] for s in control.sketches for k in range(terms)],
            dtype=object,
        )
    sketch = (await keyed.reshare(picked)).reshape(len(control.sketches), terms)
    sketched = time.perf_counter()

    # 3. The kept row sets every party holds, and the decision against them.
    agreed, complete = await _agree(mpc, secint, control.window, window)
    withhold = np.zeros(len(control.sketches), dtype=object)
    if window is not None and agreed:
        chosen = sorted(
            (tag, row)
            for tag, row in zip(window.tags, window.rows, strict=True)
            if tag in agreed and window.modulus == q
        )
        by_size: dict[int, list[tuple[int, ...]]] = {}
        for _, row in chosen:
            by_size.setdefault(min(control.minimum, (len(row) + 1) // 2), []).append(row)
        for m, kept in sorted(by_size.items()):
            matrix = np.array([row[: 2 * m - 1] for row in kept], dtype=object)
            close = await close_pairs(mpc, secint, sketch, matrix, m, job.job_id, keyed)
            (both,) = await keyed.products(((1 - withhold) % q, (1 - close) % q))
            withhold = (1 - both) % q
    if not complete:
        withhold = np.ones(len(control.sketches), dtype=object)
    decided = time.perf_counter()

    # 4. What to keep: each sketch times [n >= its minimum] · (1 − withhold).
    n = sketch[:, 0]
    sizes = np.array(control.sizes, dtype=object)
    below = mpc.np_sgn(secure_array(secint, (n - sizes) % q), LT=True)
    small = (await mpc.gather(below)).value % q
    (released,) = await keyed.products(((1 - small) % q, (1 - withhold) % q))
    (kept_rows,) = await keyed.products((sketch, np.repeat(released[:, None], terms, axis=1)))
    log.info(
        "join overlap %s: %d sketch(es) of %d terms against %d kept row set(s): hub input "
        "%.2f s, sketches %.2f s, decision %.2f s, record %.2f s",
        job.job_id,
        len(control.sketches),
        terms,
        len(agreed),
        dealt - began,
        sketched - dealt,
        decided - sketched,
        time.perf_counter() - decided,
    )
    record = OverlapRecord(
        modulus=q,
        tags=tuple(job_tag(f"{job.job_id}:{s}") for s in range(len(control.sketches))),
        rows=tuple(tuple(int(v) for v in row) for row in kept_rows),
        agreed=tuple(sorted(agreed)),
        complete=complete,
    )
    return withhold, record


async def _agree(
    mpc: Any, secint: Any, size: int, window: OverlapWindow | None
) -> tuple[set[int], bool]:
    """Return the tags of the kept rows that every party holds, and whether every party
    holds the same ones. Every party opens its (public) tags, at most ``size`` of them."""
    tags = list(window.tags[-size:]) if window is not None else []
    own = np.zeros(size, dtype=object)
    own[: len(tags)] = tags
    parts = await mpc.gather(mpc.input(secint.array(own), senders=list(range(len(mpc.parties)))))
    every = np.concatenate([part.value for part in parts])
    opened = await mpc.output(secint.field.array(every, check=False))
    values = [int(v) for v in opened.value]
    held = [{v for v in values[i * size : (i + 1) * size] if v} for i in range(len(parts))]
    common = set.intersection(*held)
    return common, all(h == common for h in held)
