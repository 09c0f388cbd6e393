"""Each party's kept join row sets: its own shares of their sketches (engine.mpc._join_overlap).

One row per released cell sketch of a join under overlap control: its tag (from the job id
and the sketch's place), the job id, the overlap field's modulus and this party's shares of
the 2m − 1 power sums (times the cell's secret released bit: a suppressed or withheld cell
keeps the empty set). Only the last ``window`` rows are kept (``state/join_overlap.sqlite``,
owner-only); older ones are deleted when a job records new ones. A share alone reveals
nothing: every party's shares are needed to learn a sketch, and a sketch is only ever
used inside MPC.

Every party records in the same order (join jobs under overlap control run one after
another in the large MPC lane, in ledger order). If the parties' windows differ (a party
failed between the end of a job and its record), the job compares only with the rows all
hold, withholds every cell of that query, and each party drops the rows the others lack,
so the next join sees equal windows again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from pathlib import Path

from engine.mpc.job import OverlapRecord, OverlapWindow
from engine.state_dir import private_database

log = logging.getLogger(__name__)


class JoinOverlapStore:
    """The kept rows of one party (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self._db = private_database(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS kept (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "tag INTEGER NOT NULL, job_id TEXT NOT NULL, modulus TEXT NOT NULL, "
            "shares BLOB NOT NULL, recorded REAL NOT NULL)"
        )
        self._lock = threading.Lock()

    def window(self, size: int) -> OverlapWindow | None:
        """Return the last ``size`` kept rows, oldest first (None if there are none)."""
        with self._lock:
            found = self._db.execute(
                "SELECT tag, modulus, shares FROM kept ORDER BY seq DESC LIMIT ?", (size,)
            ).fetchall()
        if not found:
            return None
        found.reverse()
        modulus = int(found[-1][1])
        rows = [(int(t), _unpack(bytes(s))) for t, m, s in found if int(m) == modulus]
        return OverlapWindow(modulus, tuple(t for t, _ in rows), tuple(r for _, r in rows))

    def record(self, job_id: str, record: OverlapRecord, size: int) -> None:
        """Keep a job's rows; drop the rows not every party held (``record.agreed``) when
        the windows differed, and every row beyond the last ``size``."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            if not record.complete:
                self._drop_except(record.agreed, size)
            self._db.executemany(
                "INSERT INTO kept (tag, job_id, modulus, shares, recorded) VALUES (?, ?, ?, ?, ?)",
                [
                    (tag, job_id, str(record.modulus), _pack(row), now)
                    for tag, row in zip(record.tags, record.rows, strict=True)
                ],
            )
            self._db.execute(
                "DELETE FROM kept WHERE seq NOT IN "
                "(SELECT seq FROM kept ORDER BY seq DESC LIMIT ?)",
                (size,),
            )
            self._db.execute("COMMIT")

    def _drop_except(self, agreed: Collection[int], size: int) -> None:
        recent = self._db.execute(
            "SELECT seq, tag FROM kept ORDER BY seq DESC LIMIT ?", (size,)
        ).fetchall()
        stale = [(seq,) for seq, tag in recent if int(tag) not in set(agreed)]
        if stale:
            log.warning(
                "join overlap window: %d kept row(s) not held by every party dropped", len(stale)
            )
            self._db.executemany("DELETE FROM kept WHERE seq = ?", stale)

    def size(self) -> int:
        """Return how many rows are kept."""
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM kept").fetchone()
        return int(count)

    def close(self) -> None:
        self._db.close()


def _pack(row: tuple[int, ...]) -> bytes:
    width = max(((max(row, default=0).bit_length() + 7) // 8), 1)
    return bytes([width]) + b"".join(v.to_bytes(width, "big") for v in row)


def _unpack(data: bytes) -> tuple[int, ...]:
    width = data[0]
    return tuple(int.from_bytes(data[i : i + width], "big") for i in range(1, len(data), width))
