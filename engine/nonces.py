"""Replay protection: a party remembers every request nonce inside the freshness window.

Nonces live in a small SQLite file in the party's state directory, so a replay is refused
even across a daemon restart. Entries older than the freshness window are pruned: a
request that old is refused as stale anyway.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from engine.errors import AuthError


class NonceStore:
    """Seen (analyst, nonce) pairs, persisted in SQLite."""

    def __init__(self, path: Path, window_seconds: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS nonce (analyst TEXT, nonce TEXT, seen_at REAL, "
            "PRIMARY KEY (analyst, nonce))"
        )
        self._window = window_seconds + 60
        self._lock = threading.Lock()
        self._last_prune = 0.0

    def remember(self, analyst: str, nonce: str, now: float | None = None) -> None:
        """Record a nonce; raise AuthError if this analyst already used it."""
        now = time.time() if now is None else now
        with self._lock:
            if now - self._last_prune > 60:
                self._db.execute("DELETE FROM nonce WHERE seen_at < ?", (now - self._window,))
                self._last_prune = now
            try:
                self._db.execute("INSERT INTO nonce VALUES (?, ?, ?)", (analyst, nonce, now))
            except sqlite3.IntegrityError:
                raise AuthError(
                    f"nonce: got one already used by analyst {analyst!r}, want a fresh nonce "
                    "(replayed request)"
                ) from None

    def close(self) -> None:
        self._db.close()
