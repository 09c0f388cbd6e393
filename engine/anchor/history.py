"""Read a party's ledger for an auditor: who used which dataset, when, for which query.

Each query appears once, with its analyst, time, SQL, the datasets its SQL names, every
party's decision, and its outcome (result committed by which parties, aborted and why, or
refused). Dataset registrations are listed with the time of the query that followed them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from engine.errors import AuthError
from engine.request import parse
from ledger import (
    BudgetCharged,
    DatasetRegistered,
    Decision,
    LedgerStore,
    QueryAborted,
    QueryDecided,
    QueryRequested,
    ResultCommitted,
    decode_entry,
)


@dataclass
class QueryRecord:
    """One query's life as recorded on the ledger."""

    index: int
    query_id: str
    analyst: str
    issued_at: int
    sql: str
    datasets: tuple[str, ...]
    approvals: list[str] = field(default_factory=list)
    refusals: list[tuple[str, str]] = field(default_factory=list)
    committed: list[str] = field(default_factory=list)
    aborts: list[tuple[str, str]] = field(default_factory=list)
    charges: list[tuple[str, float]] = field(default_factory=list)  # dp: (dataset, epsilon)

    @property
    def outcome(self) -> str:
        if self.refusals:
            party, reason = self.refusals[0]
            return f"refused by {party}: {reason}"
        if self.aborts:
            party, reason = self.aborts[0]
            return f"aborted ({party}): {reason}"
        if self.committed:
            return f"result committed by {', '.join(sorted(self.committed))}"
        return "pending"

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "query_id": self.query_id,
            "analyst": self.analyst,
            "issued_at": self.issued_at,
            "sql": self.sql,
            "datasets": list(self.datasets),
            "approved_by": sorted(self.approvals),
            "refused_by": [list(r) for r in self.refusals],
            "committed_by": sorted(self.committed),
            "aborts": [list(a) for a in self.aborts],
            "budget_charges": [list(c) for c in self.charges],
            "outcome": self.outcome,
        }


@dataclass(frozen=True)
class Registration:
    index: int
    owner: str
    dataset: str
    schema_hash: str
    policy_hash: str


def datasets_named(sql: str) -> tuple[str, ...]:
    """Return the ``party.dataset`` names an SQL text refers to (best effort)."""
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except (ParseError, TokenError, RecursionError):
        return ()
    names = {f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db}
    return tuple(sorted(names))


def read(store: LedgerStore) -> tuple[list[QueryRecord], list[Registration]]:
    """Return every query and every dataset registration on the ledger, in log order."""
    records: list[QueryRecord] = []
    queries: dict[str, QueryRecord] = {}  # query id -> its latest request (a replay repeats it)
    # A replay has the query id of its original: an ending belongs to the latest request of
    # the query still open (ledger.outcomes), the parties' commitments to one result together.
    unended: dict[str, list[QueryRecord]] = {}
    committing: dict[str, QueryRecord] = {}
    registrations = []
    for index, data in store.iter_entries():
        entry = decode_entry(data)
        if isinstance(entry, QueryRequested):
            try:
                fields = parse(entry.request)
                sql, issued = fields.sql, fields.issued_at
            except AuthError:
                sql, issued = "(unreadable request)", 0
            new = QueryRecord(
                index, entry.query_id, entry.analyst, issued, sql, datasets_named(sql)
            )
            records.append(new)
            queries[entry.query_id] = new
            unended.setdefault(entry.query_id, []).append(new)
            committing.pop(entry.query_id, None)
            continue
        if isinstance(entry, DatasetRegistered):
            registrations.append(
                Registration(
                    index,
                    entry.owner,
                    entry.dataset,
                    entry.schema_hash.hex()[:16],
                    entry.policy_hash.hex()[:16],
                )
            )
            continue
        latest = queries.get(entry.query_id)
        if latest is None:
            continue
        if isinstance(entry, QueryDecided):  # decisions follow their request at once
            if entry.decision is Decision.APPROVED:
                latest.approvals.append(entry.party)
            else:
                latest.refusals.append((entry.party, entry.reason))
                _end(unended, entry.query_id, latest)
            continue
        open_ones = unended.get(entry.query_id) or [latest]
        if isinstance(entry, ResultCommitted):
            record = committing.get(entry.query_id) or open_ones[-1]
            record.committed.extend(s.author for s in entry.signatures)
            committing[entry.query_id] = record
            _end(unended, entry.query_id, record)
        elif isinstance(entry, QueryAborted):
            record = open_ones[-1]
            record.aborts.append((entry.party, entry.reason))
            _end(unended, entry.query_id, record)
        elif isinstance(entry, BudgetCharged):
            open_ones[-1].charges.append((f"{entry.owner}.{entry.dataset}", entry.epsilon / 1e6))
    return records, registrations


def _end(unended: dict[str, list[QueryRecord]], query_id: str, record: QueryRecord) -> None:
    """Mark ``record`` ended (no longer open for later endings of its query id)."""
    open_ones = unended.get(query_id, [])
    if record in open_ones:
        open_ones.remove(record)


def select(
    records: list[QueryRecord], dataset: str | None, analyst: str | None
) -> Iterator[QueryRecord]:
    """Yield the records that name ``dataset`` (``party.dataset`` or just the name) and
    were requested by ``analyst``, when given."""
    for record in records:
        if analyst is not None and record.analyst != analyst:
            continue
        if dataset is not None and not any(
            dataset in (name, name.split(".", 1)[1]) for name in record.datasets
        ):
            continue
        yield record


def when(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
