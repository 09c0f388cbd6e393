"""SQLite connections for the ledger: WAL mode, synchronous=FULL, explicit transactions.

A database the ledger creates is created with mode 0600 (SQLite gives its -wal and -shm
files the mode of the database file), so that only the owner reads a party's ledger and
witness state. Auditors open existing files with :func:`connect_readonly`, which never
writes to them.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from ledger.errors import StoreError

FILE_MODE = 0o600


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating with mode 0600) a SQLite database in WAL mode with synchronous=FULL
    and manual transactions.

    Raises StoreError if the file cannot be opened or WAL mode cannot be enabled (e.g. on
    some network file systems).
    """
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"SQLite file {os.fspath(path)}: cannot create ({exc.strerror})") from None
    else:
        os.close(descriptor)
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite file {os.fspath(path)}: {exc}") from None
    if str(mode).lower() != "wal":
        conn.close()
        raise StoreError(f"SQLite journal mode: got {mode}, want wal")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open an existing SQLite database read-only (``mode=ro``): nothing is ever written.

    Raises StoreError if there is no such file or it cannot be opened.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise StoreError(f"SQLite file {name}: got none, want an existing file")
    uri = f"file:{quote(os.path.abspath(name))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite file {name}: {exc}, want a SQLite database") from None
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
