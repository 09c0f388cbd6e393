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
        record = latest
        if isinstance(entry, QueryDecided):
            if entry.decision is Decision.APPROVED:
                record.approvals.append(entry.party)
            else:
                record.refusals.append((entry.party, entry.reason))
        elif isinstance(entry, ResultCommitted):
            record.committed.extend(s.author for s in entry.signatures)
        elif isinstance(entry, QueryAborted):
            record.aborts.append((entry.party, entry.reason))
    return records, registrations


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
