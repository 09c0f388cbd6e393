"""SQLite connections for the ledger: WAL mode, synchronous=FULL, explicit transactions."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from ledger.errors import StoreError


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open a SQLite database in WAL mode with synchronous=FULL and manual transactions.

    Raises StoreError if WAL mode cannot be enabled (e.g. on some network file systems).
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        conn.close()
        raise StoreError(f"SQLite journal mode: got {mode}, want wal")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Run a block in BEGIN IMMEDIATE ... COMMIT, rolling back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
