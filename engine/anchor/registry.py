"""Datasets on the ledger: every party registers its datasets' schema and policy hashes.

A party signs a ``DatasetRegistered`` entry for each available dataset and sends the
entries to the sequencer at start-up, and again whenever a dataset's schema or policy
changes (checked every few seconds); the sequencer appends the ones that are new or
changed. An auditor can so tell which schema and policy were in force for each query.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from engine.anchor.errors import engine_error
from engine.anchor.party_ledger import PartyLedger
from engine.anchor.writer import LedgerWriter
from engine.catalog import DatasetInfo
from engine.errors import AuthError, EngineError
from ledger import DatasetRegistered, LedgerError, decode_entry, encode_entry, verify_entry

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0
RETRY_SECONDS = 0.25  # first retry after a failed registration (doubling up to CHECK)

Send = Callable[[list[bytes]], Awaitable[int]]


async def accept(
    ledger: PartyLedger, writer: LedgerWriter, caller: str, entries: Sequence[bytes]
) -> int:
    """Append the caller's new or changed dataset registrations; return how many."""
    fresh: list[DatasetRegistered] = []
    for data in entries:
        try:
            entry = decode_entry(data)
            verify_entry(entry, ledger.keyring)
        except LedgerError as exc:
            raise engine_error(exc, "register: got an invalid entry", AuthError) from None
        if not isinstance(entry, DatasetRegistered) or entry.owner != caller:
            raise AuthError(f"register: got an entry that is not {caller}'s own registration")
        known = ledger.registered(entry.owner, entry.dataset)
        if known != (entry.schema_hash, entry.policy_hash) and entry not in fresh:
            fresh.append(entry)
    if fresh:
        await writer.append(fresh)
        log.info("ledger: registered %d dataset(s) of %s", len(fresh), caller)
    return len(fresh)


async def keep_registered(
    ledger: PartyLedger, catalog: Callable[[], Sequence[DatasetInfo]], send: Send
) -> None:
    """Register this party's datasets now and whenever they change (runs until cancelled)."""
    sent: set[bytes] = set()
    retry = RETRY_SECONDS
    while True:
        datasets = catalog()
        entries = ledger.registrations(datasets)
        signature = {e.dataset.encode() + e.schema_hash + e.policy_hash for e in entries}
        wait = CHECK_SECONDS
        if entries and not signature <= sent:
            try:
                await send([encode_entry(e) for e in entries])
                sent, retry = signature, RETRY_SECONDS
            except EngineError as exc:
                log.info("ledger: datasets not registered yet (%s); retrying", exc)
                wait, retry = retry, min(retry * 2, CHECK_SECONDS)
        await asyncio.sleep(wait)
