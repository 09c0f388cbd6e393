"""Which queries on a log have ended, and which are still open.

A query is *open* from its request entry until an entry ends it: a refusal by any party,
a result commitment, or an abort. Every request on a ledger must end: a sequencer that
restarts aborts the queries it finds open, and before appending an abort it asks this
index whether the query has ended already (a round that failed to gather its cosignatures
may still have appended it), so that each query gets at most one abort.

A replayed request (the same signed bytes again) has the same query id and request hash as
the original, so an entry that ends a query cannot say which of its requests it ends: it
ends the latest one still open (a replay is refused right after its request, while the
original may still be running and end later).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.entries import (
    Decision,
    Entry,
    QueryAborted,
    QueryDecided,
    QueryRequested,
    ResultCommitted,
    request_hash,
)

__all__ = ["OpenQuery", "QueryOutcomes"]


@dataclass(frozen=True)
class OpenQuery:
    """A request on the log that nothing has ended yet."""

    query_id: str
    index: int  # of its (latest) request entry
    request_hash: bytes


class QueryOutcomes:
    """An index of requests and of the entries that end them, fed in log order."""

    def __init__(self) -> None:
        self._open: dict[str, list[OpenQuery]] = {}  # query id -> its open requests, in order
        # The query of the commitment just before (the parties' commitments to one result
        # are appended together: only the first ends a request).
        self._committing: str | None = None

    def add(self, index: int, entry: Entry) -> None:
        """Record the entry at ``index``; entries must come in increasing index order."""
        committing, self._committing = self._committing, None
        if isinstance(entry, QueryRequested):
            opened = OpenQuery(entry.query_id, index, request_hash(entry.request))
            self._open.setdefault(entry.query_id, []).append(opened)
        elif isinstance(entry, QueryDecided):
            if entry.decision is Decision.REFUSED:
                self._close(entry.query_id)
        elif isinstance(entry, ResultCommitted):
            if entry.query_id != committing:
                self._close(entry.query_id)
            self._committing = entry.query_id
        elif isinstance(entry, QueryAborted):
            self._close(entry.query_id)

    def _close(self, query_id: str) -> None:
        """End the latest open request of ``query_id`` (if any)."""
        requests = self._open.get(query_id)
        if requests:
            requests.pop()
            if not requests:
                del self._open[query_id]

    def add_all(self, entries: Iterable[tuple[int, Entry]]) -> None:
        """Record each (index, entry), in log order."""
        for index, entry in entries:
            self.add(index, entry)

    def is_open(self, query_id: str) -> bool:
        """Return whether a request of ``query_id`` is on the log and not ended."""
        return query_id in self._open

    def open_queries(self) -> list[OpenQuery]:
        """Return every open request, in log order."""
        return sorted((q for r in self._open.values() for q in r), key=lambda q: q.index)
