"""The sequencer anchors each query's life on the ledger.

- requests with every party's decision, before any data is touched;
- each party's commitment to its sealed result shares, before the result is released;
- an abort, with its reason, when a query fails after its request was anchored.

The analyst gets :class:`QueryReceipts`: inclusion proofs of the request entry and of every
result entry against one cosigned checkpoint (C2SP tlog-proof), verifiable offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from engine.anchor.errors import engine_error
from engine.anchor.party_ledger import PartyLedger
from engine.anchor.writer import Anchored, LedgerWriter
from engine.errors import AuthError, CapacityError, EngineError
from ledger import (
    BudgetCharged,
    Decision,
    Entry,
    KeyRing,
    LedgerError,
    QueryAborted,
    QueryDecided,
    ResultCommitted,
    decode_entry,
    request_hash,
    verify_entry,
)

log = logging.getLogger(__name__)

ABORT_FLUSH_SECONDS = 2.0
STOP_FLUSH_SECONDS = 5.0
MAX_REFUSALS = 10_000  # coordinators' refusals waiting for a round
RESTARTED = "sequencer restarted: the query was in flight when it stopped"
ENDED_UNRECORDED = "the query failed at the sequencer before its outcome was anchored"


@dataclass(frozen=True)
class RequestToAnchor:
    """A request and every party's signed decision on it."""

    query_id: str
    analyst: str
    body: bytes
    signature: bytes
    decisions: Sequence[tuple[str, bytes]]  # (party that sent it, its signed decision)
    charges: Sequence[tuple[str, bytes]] = ()  # dp: (owner, its signed BudgetCharged)


@dataclass(frozen=True)
class PartyResultReceipt:
    party: str
    entry: bytes
    proof: str
    opening: bytes


@dataclass(frozen=True)
class QueryReceipts:
    """What the analyst needs to prove the query was anchored and its result committed."""

    request_entry: bytes
    request_proof: str
    results: tuple[PartyResultReceipt, ...]


def _decode(data: bytes, kind: type[Entry], what: str, ring: KeyRing | None) -> Entry:
    """Decode an entry and verify its signatures with ``ring`` (None: this party made it,
    in this process, just now)."""
    try:
        entry = decode_entry(data)
        if ring is not None:
            verify_entry(entry, ring)
    except LedgerError as exc:
        raise engine_error(exc, f"ledger: {what} is not a valid signed entry", AuthError) from None
    if not isinstance(entry, kind):
        raise AuthError(f"ledger: {what} is a {type(entry).__name__}, want {kind.__name__}")
    return entry


class QueryAnchor:
    """Puts requests, decisions, results and aborts on the ledger for the sequencer.

    Aborts are idempotent: one is queued only for a query whose latest request is open on
    the ledger (no result, refusal or abort yet), and the ledger index is asked again
    before every round, so a round that appended an abort but failed to gather its
    cosignatures is not followed by a second copy. Every ``ABORT_FLUSH_SECONDS`` the
    anchor also aborts the requests the sequencer no longer holds that are still open
    (at start: every open one, "sequencer restarted").
    """

    def __init__(self, ledger: PartyLedger, writer: LedgerWriter) -> None:
        self._ledger = ledger
        self._writer = writer
        self._aborts: dict[str, QueryAborted] = {}  # query id -> its abort, not yet anchored
        self._in_round: set[str] = set()  # aborts taken into a round that has not ended
        # Coordinators' refusals: (query id, [request, decision]) waiting for a round.
        self._refusals: list[tuple[str, list[Entry]]] = []
        self._task: asyncio.Task[None] | None = None
        self._is_live: Callable[[str], bool] = lambda _: False
        self._failure: Callable[[str], str | None] = lambda _: None

    def start(
        self,
        is_live: Callable[[str], bool] | None = None,
        failure: Callable[[str], str | None] | None = None,
    ) -> None:
        """Abort the requests a previous run left open, then flush aborts periodically.

        ``is_live(query_id)`` says whether the sequencer still holds a query, ``failure``
        why a recently failed one failed (for requests whose own abort was not queued).
        """
        if is_live is not None:
            self._is_live = is_live
        if failure is not None:
            self._failure = failure
        left = self._ledger.open_queries()
        for query in left:
            self._queue_abort(query.query_id, query.request_hash, RESTARTED)
        if left:
            log.info("ledger: %d query(ies) left open by the last run: aborting them", len(left))
        self._task = asyncio.create_task(self._flush_aborts(), name="ledger-aborts")

    async def stop(self) -> None:
        """Stop flushing; try once to anchor the aborts still waiting."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.waiting_aborts():
            try:
                await asyncio.wait_for(self._append([]), STOP_FLUSH_SECONDS)
            except (EngineError, TimeoutError) as exc:
                log.warning("ledger: %d abort(s) not recorded at stop: %s", len(self._aborts), exc)

    def waiting_aborts(self) -> int:
        """Return how many aborts and refusals wait for a ledger round."""
        return sum(1 for q in self._aborts if self._ledger.is_open(q)) + len(self._refusals)

    async def requests(self, items: Sequence[RequestToAnchor]) -> list[int]:
        """Append each request followed by the parties' decisions; return request indices."""
        entries: list[Entry] = []
        offsets = []
        for item in items:
            offsets.append(len(entries))
            entries += self._request_entries(item)
        first, _ = await self._append(entries)
        return [first + offset for offset in offsets]

    def _request_entries(self, item: RequestToAnchor) -> list[Entry]:
        """Return the request entry and the checked decisions of ``item``; raise AuthError
        for a decision that is not its party's own on this request."""
        request = self._ledger.request_entry(item.query_id, item.analyst, item.body, item.signature)
        entries: list[Entry] = [request]
        for party, data in item.decisions:
            decision = _decode(data, QueryDecided, f"{party}'s decision", self._ring(party))
            assert isinstance(decision, QueryDecided)
            if (decision.party, decision.query_id, decision.request_hash) != (
                party,
                item.query_id,
                request.request_hash,
            ):
                raise AuthError(f"ledger: {party}'s decision is not its own on this request")
            entries.append(decision)
        for party, data in item.charges:  # dp: after every decision (engine.anchor.budget)
            charge = _decode(data, BudgetCharged, f"{party}'s budget charge", self._ring(party))
            assert isinstance(charge, BudgetCharged)
            if (charge.owner, charge.query_id, charge.request_hash) != (
                party,
                item.query_id,
                request.request_hash,
            ) or charge.analyst != item.analyst:
                raise AuthError(f"ledger: {party}'s budget charge is not its own on this request")
            entries.append(charge)
        return entries

    def refusal(self, item: RequestToAnchor) -> None:
        """Queue a request its coordinator refused, with that refusal, for the next round.

        Raises AuthError if the decision is not the coordinator's signed refusal of this
        request, CapacityError if MAX_REFUSALS already wait.
        """
        entries = self._request_entries(item)
        if not all(
            isinstance(e, QueryDecided) and e.decision is Decision.REFUSED for e in entries[1:]
        ):
            raise AuthError("ledger: got an approval where a refusal was to be recorded")
        if len(self._refusals) >= MAX_REFUSALS:
            raise CapacityError(
                f"ledger: got {MAX_REFUSALS} refusals waiting for a round, want fewer"
            )
        self._refusals.append((item.query_id, entries))

    def results(
        self,
        query_ids: Sequence[str],
        request_indices: Sequence[int],
        per_party: Sequence[Sequence[tuple[str, bytes, bytes]]],
    ) -> Awaitable[list[QueryReceipts]]:
        """Queue every party's result commitment for the ledger; return each query's receipts.

        ``per_party[i]`` lists (party, ResultCommitted entry, opening) for query i. The
        entries are checked and queued before this returns, so calls append in call order;
        await the result for the receipts, which exist once a quorum cosigned the entries.
        Raises AuthError (now) for an entry that is not a valid commitment to its query.
        """
        entries: list[Entry] = []
        for query_id, parts in zip(query_ids, per_party, strict=True):
            for party, data, _ in parts:
                entry = _decode(
                    data, ResultCommitted, f"{party}'s result commitment", self._ring(party)
                )
                assert isinstance(entry, ResultCommitted)
                if entry.query_id != query_id or [s.author for s in entry.signatures] != [party]:
                    raise AuthError(f"ledger: {party}'s result commitment names another query")
                entries.append(entry)
        return self._receipts(self._append(entries), request_indices, per_party)

    async def _receipts(
        self,
        appending: Awaitable[tuple[int, Anchored]],
        request_indices: Sequence[int],
        per_party: Sequence[Sequence[tuple[str, bytes, bytes]]],
    ) -> list[QueryReceipts]:
        first, anchored = await appending
        receipts = []
        position = first
        for index, parts in zip(request_indices, per_party, strict=True):
            request = self._writer.receipt(index, anchored)
            party_receipts = []
            for party, data, opening in parts:
                proof = self._writer.receipt(position, anchored).format()
                party_receipts.append(PartyResultReceipt(party, data, proof, opening))
                position += 1
            receipts.append(
                QueryReceipts(
                    self._ledger.store.entry_bytes(index), request.format(), tuple(party_receipts)
                )
            )
        return receipts

    def _ring(self, party: str) -> KeyRing | None:
        """Return the key ring to check ``party``'s entries with; None for this party's own,
        which its handlers signed in this process (the mirrors check them all)."""
        return None if party == self._ledger.name else self._ledger.keyring

    def abort(self, query_id: str, body: bytes, reason: str) -> None:
        """Record (at the next round) that an anchored query failed, and why; nothing if
        the query already ended on the ledger or has an abort waiting."""
        self._queue_abort(query_id, request_hash(body), reason)

    def _queue_abort(self, query_id: str, hashed: bytes, reason: str) -> None:
        if query_id in self._aborts or not self._ledger.is_open(query_id):
            return
        self._aborts[query_id] = self._ledger.abort(query_id, hashed, reason)

    def _take_aborts(self) -> list[QueryAborted]:
        """Return the waiting aborts of queries still open and in no round (marking them
        in a round); forget those whose query ended meanwhile."""
        taken = []
        for query_id, entry in list(self._aborts.items()):
            if query_id in self._in_round:
                continue
            if not self._ledger.is_open(query_id):
                del self._aborts[query_id]
                continue
            taken.append(entry)
            self._in_round.add(query_id)
        return taken

    def _append(self, entries: list[Entry]) -> Awaitable[tuple[int, Anchored]]:
        """Queue waiting aborts, then ``entries``, for the next ledger round; return an
        awaitable of the index of entries[0] and where the round anchored them."""
        aborts = self._take_aborts()
        refusals, self._refusals = self._refusals, []
        before: list[Entry] = [*aborts, *(e for _, r in refusals for e in r)]
        queued = self._writer.append([*before, *entries])

        async def anchored() -> tuple[int, Anchored]:
            try:
                done = await queued
            except EngineError:
                # Entries of a round that failed may be in the log all the same: a refusal
                # goes again only if its request did not make it.
                self._refusals += [
                    r for r in refusals if self._ledger.query_state(r[0]) == "absent"
                ]
                raise
            finally:
                for entry in aborts:
                    self._in_round.discard(entry.query_id)
            for entry in aborts:
                self._aborts.pop(entry.query_id, None)
            return done.first_index + len(before), done

        return anchored()

    def _sweep(self) -> None:
        """Queue an abort for every open request the sequencer no longer holds."""
        for query in self._ledger.open_queries():
            if query.query_id in self._aborts or self._is_live(query.query_id):
                continue
            reason = self._failure(query.query_id) or ENDED_UNRECORDED
            self._queue_abort(query.query_id, query.request_hash, reason)

    async def _flush_aborts(self) -> None:
        while True:
            await asyncio.sleep(ABORT_FLUSH_SECONDS)
            self._sweep()
            if not self.waiting_aborts():
                continue
            try:
                await self._append([])
            except EngineError as exc:
                log.warning("ledger: %d abort(s) not yet recorded: %s", self.waiting_aborts(), exc)
