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
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from engine.anchor.party import PartyLedger
from engine.anchor.writer import Anchored, LedgerWriter
from engine.errors import AuthError, EngineError
from ledger import (
    BudgetCharged,
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
        raise AuthError(f"ledger: {what} is not a valid signed entry ({exc})") from None
    if not isinstance(entry, kind):
        raise AuthError(f"ledger: {what} is a {type(entry).__name__}, want {kind.__name__}")
    return entry


class QueryAnchor:
    """Puts requests, decisions, results and aborts on the ledger for the sequencer."""

    def __init__(self, ledger: PartyLedger, writer: LedgerWriter) -> None:
        self._ledger = ledger
        self._writer = writer
        self._aborts: list[QueryAborted] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_aborts(), name="ledger-aborts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def requests(self, items: Sequence[RequestToAnchor]) -> list[int]:
        """Append each request followed by the parties' decisions; return request indices."""
        entries: list[Entry] = []
        offsets = []
        for item in items:
            request = self._ledger.request_entry(
                item.query_id, item.analyst, item.body, item.signature
            )
            offsets.append(len(entries))
            entries.append(request)
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
            for party, data in item.charges:
                charge = _decode(data, BudgetCharged, f"{party}'s budget charge", self._ring(party))
                assert isinstance(charge, BudgetCharged)
                if (charge.owner, charge.query_id, charge.request_hash) != (
                    party,
                    item.query_id,
                    request.request_hash,
                ) or charge.analyst != item.analyst:
                    raise AuthError(
                        f"ledger: {party}'s budget charge is not its own on this request"
                    )
                entries.append(charge)
        first, _ = await self._append(entries)
        return [first + offset for offset in offsets]

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
        """Record (at the next append) that an anchored query failed, and why."""
        self._aborts.append(self._ledger.abort(query_id, request_hash(body), reason))

    def _append(self, entries: list[Entry]) -> Awaitable[tuple[int, Anchored]]:
        """Queue pending aborts, then ``entries``, for the next ledger round; return an
        awaitable of the index of entries[0] and where the round anchored them."""
        aborts, self._aborts = self._aborts, []
        queued = self._writer.append([*aborts, *entries])

        async def anchored() -> tuple[int, Anchored]:
            try:
                done = await queued
            except EngineError:
                self._aborts = aborts + self._aborts
                raise
            return done.first_index + len(aborts), done

        return anchored()

    async def _flush_aborts(self) -> None:
        while True:
            await asyncio.sleep(ABORT_FLUSH_SECONDS)
            if not self._aborts:
                continue
            try:
                await self._append([])
            except EngineError as exc:
                log.warning("ledger: %d abort(s) not yet recorded: %s", len(self._aborts), exc)
