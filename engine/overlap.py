"""Query-set overlap control: refuse a release whose rows differ from an earlier one by few.

Two exact releases over row sets S1 and S2 that differ by fewer than m rows (m the dataset's
minimum group size) let an analyst subtract them and read those few rows' values (the
differencing attack: the same query, then ``AND NOT (birth_year = 1943 AND sex = 'F')``).
An owner therefore keeps, for every part of a released cell over its dataset, a compact
fingerprint of the part's row set, and withholds a new part when

- it has between 1 and m − 1 rows (it differs from the empty set by fewer than m), or
- some earlier released part differs from it by between 1 and m − 1 rows.

A cell's part is the set of rows its aggregate reads: the filter's rows for COUNT(*), the
rows where its columns are not NULL for an aggregate over nullable columns (SUM(v) reads
fewer rows than the filter selects where v has NULLs; two queries whose filters differ by
many rows could otherwise differ in one SUM's rows by one). Identical row sets are allowed
(the same rows released again). The withheld cell is
suppressed inside MPC (the owner inputs a 0 for it): nobody but the owner learns why.

The fingerprint of a row set S is ``(n, P_1, …, P_K)`` with ``n = |S|`` and the power sums
``P_k = Σ_{x∈S} x^k mod p`` over p = 2^31 − 1, where x is the row's identity (:data:`ROW_ID`,
fixed at load): for a dataset with a unique join key, a SHA-256 of the key under the
federation's shared overlap key (the same for every owner of that key); otherwise a SHA-256
of the row's values and its occurrence among identical rows under the owner's own salt.
K = 2m − 1. For two sets the difference of their sums is the power-sum sequence of the
symmetric difference (rows of S1 − S2 with weight +1, of S2 − S1 with −1), a linear
recurrent sequence whose linear complexity is exactly the number d of differing rows when
d < m (Hankel/Vandermonde argument; with probability 1 − O(m²/p) over the keyed hash).
Berlekamp–Massey finds it from the 2m − 1 terms. Candidates are only the earlier parts whose
size is within m of the new one (|n − n'| ≤ d is necessary).

Stored, per released part: dataset, n, the K power sums (8 bytes each: 152 bytes at m = 10),
the query id and the time, in ``state/overlap.sqlite``, kept for as long as the state
directory (an owner may prune it; pruning lets old releases be differenced). Cost per part:
K sums in the owner's scan, then O(K²) field operations per candidate.

Releases over joins are checked inside MPC instead (engine.mpc._join_overlap: their own
identities in a 160-bit field, compared with earlier join releases only, not with these).

Residual risk, stated in README: pairwise overlap control does not stop *trackers* that
combine three or more large queries (q(C) = q(C ∪ T) + q(C ∪ ¬T) − q(all)); a refusal also
tells the analyst that two row sets are close. Use ``release = "dp"`` where analysts may be
adversarial.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.state_dir import private_database

PRIME = (1 << 31) - 1
P64 = np.uint64(PRIME)
ROW_ID = "__row_x"


def row_id_sql(text: str) -> str:
    """Return SQL for a row identity in [1, p − 1] from the row's canonical (keyed) text."""
    return f"((('0x' || substr(sha256({text}), 1, 12))::BIGINT % {PRIME - 1}) + 1)"


def key_text_sql(secret: str, key: str) -> str:
    """Return SQL of the canonical text of a join key under the federation overlap key
    (the same at every owner, so that every owner derives the same identity)."""
    return f"concat_ws(chr(31), '{secret}', 'key', CAST({key} AS VARCHAR))"


def federation_secret(path: Path) -> str:
    """Return the federation's shared overlap key (hex), read from ``path``."""
    try:
        text = path.read_text().strip()
    except OSError:
        raise ConfigError(
            f"overlap key: got no file at {path}, want the federation's shared overlap key"
        ) from None
    if len(text) < 32 or any(c not in "0123456789abcdef" for c in text):
        raise ConfigError(f"overlap key {path}: got no hex secret, want 64 hex digits")
    return hashlib.sha256(f"jointstat/overlap/v1:{text}".encode()).hexdigest()


def row_salt(state_dir: Path, dataset: str) -> str:
    """Return this owner's secret salt for a dataset's row identities (created once)."""
    path = state_dir / "overlap.salt"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(os.urandom(32).hex())
    secret = path.read_text().strip()
    return hashlib.sha256(f"{secret}:{dataset}".encode()).hexdigest()


def power_sums(identities: Any, terms: int) -> tuple[int, ...]:
    """Return (Σx, Σx², …, Σx^terms) mod p over a part's row identities (a numpy array).

    Vectorized: every product of two residues below p < 2^31 fits 64 bits (DuckDB's own
    arithmetic was measured slower: its planner is superlinear in chained expressions).
    """
    x = np.asarray(identities, dtype=np.uint64)
    power = x.copy()
    sums = []
    for _ in range(terms):
        total = 0
        for start in range(0, len(power), 1 << 30):  # each partial sum below 2^61
            total += int(np.sum(power[start : start + (1 << 30)], dtype=np.uint64))
        sums.append(total % PRIME)
        power = (power * x) % P64
    return tuple(sums)


def sketch_terms(min_group_size: int) -> int:
    """Return K = 2m − 1, the power sums that decide differences below m."""
    return 2 * min_group_size - 1


@dataclass(frozen=True)
class Sketch:
    """The fingerprint of one part's row set: its size and its power sums."""

    rows: int
    sums: tuple[int, ...]


def linear_complexity(sequence: Sequence[int], p: int = PRIME) -> int:
    """Return the length of the shortest linear recurrence generating ``sequence`` mod p.

    Berlekamp–Massey over the prime field F_p (Massey 1969). Requires p prime.
    """
    c = [1]  # connection polynomial
    b = [1]
    length, shift, last = 0, 1, 1
    for n, value in enumerate(sequence):
        discrepancy = value % p
        for i in range(1, length + 1):
            discrepancy = (discrepancy + (c[i] if i < len(c) else 0) * sequence[n - i]) % p
        if discrepancy == 0:
            shift += 1
            continue
        coefficient = discrepancy * pow(last, -1, p) % p
        previous = list(c)
        c = c + [0] * max(0, len(b) + shift - len(c))
        for i, bi in enumerate(b):
            c[i + shift] = (c[i + shift] - coefficient * bi) % p
        if 2 * length <= n:
            length, b, last, shift = n + 1 - length, previous, discrepancy, 1
        else:
            shift += 1
    return length


def _inverse(values: np.ndarray) -> np.ndarray:
    """Return the inverses mod p of nonzero residues (Fermat: v^(p−2)), vectorized."""
    result = np.ones_like(values)
    base = values % P64
    exponent = PRIME - 2
    while exponent:
        if exponent & 1:
            result = (result * base) % P64
        base = (base * base) % P64
        exponent >>= 1
    return result


def linear_complexities(sequences: np.ndarray) -> np.ndarray:
    """Return the linear complexity of every row of ``sequences`` (uint64 residues mod p).

    Berlekamp–Massey as :func:`linear_complexity`, run on all rows at once: the branches
    become masks, so that comparing a part with many earlier releases costs a few numpy
    passes instead of one Python loop each.
    """
    count, length = sequences.shape
    s = sequences.astype(np.uint64) % P64
    c = np.zeros((count, length + 1), dtype=np.uint64)
    b = np.zeros((count, length + 1), dtype=np.uint64)
    c[:, 0] = b[:, 0] = 1
    degree = np.zeros(count, dtype=np.int64)  # L
    shift = np.ones(count, dtype=np.int64)  # m
    last = np.ones(count, dtype=np.uint64)  # b
    rows = np.arange(count)[:, None]
    columns = np.arange(length + 1)[None, :]
    for n in range(length):
        discrepancy = s[:, n].copy()
        for i in range(1, n + 1):
            discrepancy = (discrepancy + c[:, i] * s[:, n - i]) % P64
        nonzero = discrepancy != 0
        coefficient = (discrepancy * _inverse(np.where(nonzero, last, 1))) % P64
        source = columns - shift[:, None]
        shifted = np.where(source >= 0, b[rows, np.clip(source, 0, length)], 0)
        updated = (c + (P64 - (coefficient[:, None] * shifted) % P64)) % P64
        grow = nonzero & (2 * degree <= n)
        previous = c
        c = np.where(nonzero[:, None], updated, c)
        b = np.where(grow[:, None], previous, b)
        last = np.where(grow, discrepancy, last)
        degree = np.where(grow, n + 1 - degree, degree)
        shift = np.where(grow, 1, shift + 1)
    return degree


def difference(a: Sketch, b: Sketch) -> int:
    """Return the number of rows by which two parts differ when fewer than their sketches
    can tell (K // 2 + 1), else a number at least that large. 0 means identical sets."""
    terms = min(len(a.sums), len(b.sums))
    if abs(a.rows - b.rows) > terms:
        return abs(a.rows - b.rows)
    sequence = [(x - y) % PRIME for x, y in zip(a.sums[:terms], b.sums[:terms], strict=True)]
    return linear_complexity(sequence)


class OverlapHistory:
    """The parts of earlier releases over this owner's datasets (``state/overlap.sqlite``).

    Thread-safe; :meth:`check_and_record` is atomic, so two queries racing on one dataset
    are each compared with the other.
    """

    def __init__(self, path: Path) -> None:
        self._db = private_database(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS part (dataset TEXT NOT NULL, rows INTEGER NOT NULL, "
            "sums BLOB NOT NULL, query_id TEXT NOT NULL, recorded REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS part_size ON part (dataset, rows)")
        self._lock = threading.Lock()

    def check_and_record(
        self, dataset: str, minimum: int, query_id: str, parts: Sequence[Sketch]
    ) -> list[bool]:
        """Return, per part, whether it may be released; record the ones released.

        A part is withheld when it has 1..minimum−1 rows, or differs from an earlier
        released part (or from a part earlier in ``parts``) by 1..minimum−1 rows.
        """
        allowed: list[bool] = []
        with self._lock:
            accepted: list[Sketch] = []
            for part in parts:
                if 0 < part.rows < minimum:
                    allowed.append(False)
                    continue
                earlier = [*self._candidates(dataset, part.rows, minimum), *accepted]
                ok = not _close(part, earlier, minimum)
                allowed.append(ok)
                if ok and part.rows >= minimum:
                    accepted.append(part)
            if accepted:
                now = time.time()
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO part VALUES (?, ?, ?, ?, ?)",
                    [(dataset, p.rows, _pack(p.sums), query_id, now) for p in accepted],
                )
                self._db.execute("COMMIT")
        return allowed

    def _candidates(self, dataset: str, rows: int, minimum: int) -> list[Sketch]:
        found = self._db.execute(
            "SELECT rows, sums FROM part WHERE dataset = ? AND rows BETWEEN ? AND ?",
            (dataset, rows - minimum + 1, rows + minimum - 1),
        ).fetchall()
        return [Sketch(int(r), _unpack(bytes(s))) for r, s in found]

    def size(self, dataset: str | None = None) -> int:
        """Return how many released parts are kept (for one dataset, or all)."""
        with self._lock:
            if dataset is None:
                (count,) = self._db.execute("SELECT COUNT(*) FROM part").fetchone()
            else:
                (count,) = self._db.execute(
                    "SELECT COUNT(*) FROM part WHERE dataset = ?", (dataset,)
                ).fetchone()
        return int(count)

    def close(self) -> None:
        self._db.close()


def _close(part: Sketch, earlier: Sequence[Sketch], minimum: int) -> bool:
    """Return whether ``part`` differs from one of ``earlier`` by 1..minimum−1 rows."""
    usable = [e for e in earlier if abs(e.rows - part.rows) < minimum]
    if not usable:
        return False
    terms = min(len(part.sums), *(len(e.sums) for e in usable))
    mine = np.array(part.sums[:terms], dtype=np.uint64)
    others = np.array([e.sums[:terms] for e in usable], dtype=np.uint64)
    differences = (mine[None, :] + P64 - others) % P64
    complexity = linear_complexities(differences)
    return bool(np.any((complexity > 0) & (complexity < minimum)))


def _pack(sums: Sequence[int]) -> bytes:
    return b"".join(s.to_bytes(8, "big") for s in sums)


def _unpack(data: bytes) -> tuple[int, ...]:
    return tuple(int.from_bytes(data[i : i + 8], "big") for i in range(0, len(data), 8))
