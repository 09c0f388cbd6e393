"""Unauthenticated attempts: logged at the daemon that received them, rate-limited, counted.

A request whose signature does not verify, whose analyst is unknown or differs from its
TLS certificate, or that is stale or replayed, cannot go on the ledger (nothing about it
can be trusted, and anyone could fill the ledger with them). The receiving daemon logs
it — the rule it broke and where it came from, never its content (no SQL, no request
bytes) — at most one line per source every ``LOG_EVERY_SECONDS``, with the number of
lines suppressed since, and counts it; the count is in the daemon's status line.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 10.0
MAX_SOURCES = 10_000  # sources remembered for rate limiting (the oldest are forgotten)


def rule_of(message: str) -> str:
    """Return the rule an error message names: its "what" part (before the first ':')."""
    what = message.split(":", 1)[0]
    return what if len(what) <= 40 else what[:40]


class RefusedAttempts:
    """Counts unauthenticated attempts and logs them, one line per source per period."""

    def __init__(self, party: str, every: float = LOG_EVERY_SECONDS) -> None:
        self._party = party
        self._every = every
        self._sources: OrderedDict[str, tuple[float, int]] = OrderedDict()  # last log, muted
        self.total = 0
        self.suppressed = 0

    def refused(self, source: str, kind: str, message: str, now: float | None = None) -> None:
        """Record one unauthenticated attempt from ``source`` refused with error ``kind``
        (an EngineError class name) and ``message`` (only its rule is logged)."""
        now = time.monotonic() if now is None else now
        self.total += 1
        last, muted = self._sources.pop(source, (-1e18, 0))
        if now - last < self._every:
            self._sources[source] = (last, muted + 1)
            self.suppressed += 1
        else:
            log.warning(
                "%s: unauthenticated attempt from %s refused (%s: %s)%s",
                self._party,
                source,
                kind,
                rule_of(message),
                f"; {muted} more from it since the last line" if muted else "",
            )
            self._sources[source] = (now, 0)
        while len(self._sources) > MAX_SOURCES:
            self._sources.popitem(last=False)

    def status(self) -> str:
        """Return the counters for the daemon's status line."""
        return f"unauthenticated attempts refused: {self.total} ({self.suppressed} not logged)"
