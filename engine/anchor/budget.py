"""Privacy budgets kept on the ledger: every party derives them from its copy of the log.

A differentially private query charges its epsilon to every dp dataset it reads: the
dataset's owner signs a ``BudgetCharged`` entry at Prepare, which the sequencer appends
right after the request and the parties' decisions. Whether a charge takes effect is a
pure function of the log, applied in log order, so every party reaches the same answer
whatever the timing of concurrent queries (ledger order decides):

    a charge is effective iff every party approved its query, and the effective charges
    before it on the same (dataset, analyst) and on the same dataset, plus its epsilon,
    fit the analyst's and the dataset's budgets the charge states.

A query whose charge is not effective is refused at Collect by every party (before any data
is read) and aborted; a query whose charge is effective has spent its epsilon even if it
later fails (its noise may already be drawn). Amounts are integers in millionths of
epsilon.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger import BudgetCharged, Decision, QueryDecided, QueryRequested

MICRO = 1_000_000


def micro(epsilon: float) -> int:
    """Return an epsilon in millionths (rounded up: a charge never undercounts)."""
    value = epsilon * MICRO
    whole = int(value)
    return whole if whole == value else whole + 1


@dataclass
class _Query:
    approvals: int = 0
    refused: bool = False
    charges: list[tuple[BudgetCharged, bool]] = field(default_factory=list)


class BudgetBook:
    """The budgets of every dp dataset, as the log in index order says (not thread-safe:
    the caller serialises)."""

    def __init__(self, parties: int) -> None:
        self._parties = parties
        self._queries: dict[str, _Query] = {}
        self._dataset: dict[tuple[str, str], int] = {}  # (owner, dataset) -> micro spent
        self._analyst: dict[tuple[str, str, str], int] = {}  # + analyst

    def add(self, entry: QueryRequested | QueryDecided | BudgetCharged) -> None:
        """Take the next relevant entry of the log into account (entries in index order)."""
        if isinstance(entry, QueryRequested):
            self._queries.setdefault(entry.query_id, _Query())
            return
        query = self._queries.setdefault(entry.query_id, _Query())
        if isinstance(entry, QueryDecided):
            if entry.decision is Decision.APPROVED:
                query.approvals += 1
            else:
                query.refused = True
            return
        dataset = (entry.owner, entry.dataset)
        analyst = (*dataset, entry.analyst)
        fits = (
            not query.refused
            and query.approvals >= self._parties
            and self._analyst.get(analyst, 0) + entry.epsilon <= entry.analyst_budget
            and self._dataset.get(dataset, 0) + entry.epsilon <= entry.budget
        )
        if fits:
            self._analyst[analyst] = self._analyst.get(analyst, 0) + entry.epsilon
            self._dataset[dataset] = self._dataset.get(dataset, 0) + entry.epsilon
        query.charges.append((entry, fits))

    def charges(self, query_id: str) -> list[tuple[BudgetCharged, bool]]:
        """Return a query's charges and whether each took effect."""
        query = self._queries.get(query_id)
        return [] if query is None else list(query.charges)

    def spent(self, owner: str, dataset: str, analyst: str | None = None) -> int:
        """Return the micro-epsilon spent on a dataset (by one analyst, or by all)."""
        if analyst is None:
            return self._dataset.get((owner, dataset), 0)
        return self._analyst.get((owner, dataset, analyst), 0)
