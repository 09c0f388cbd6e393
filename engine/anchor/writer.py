"""The sequencer's ledger writer: batched appends, each made to count by a cosigned checkpoint.

Callers (batches of queries preparing, MPC jobs finishing, registrations, aborts) ask to
append entries; every request waiting when a round starts goes into one SQLite transaction
with one log-signed checkpoint, which every party's witness is then asked to cosign (each
checks the new entries into its own mirror first). An append returns only once a quorum of
parties cosigned: nothing is released on a checkpoint that is not cosigned (safety over
liveness), and the caller gets a PeerError naming who did not cosign.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.anchor import keys
from engine.anchor.party import CosignOutcome, PartyLedger
from engine.config import Federation
from engine.errors import EngineError, PeerError
from ledger import Entry, LedgerError, NoteSigner, Receipt
from ledger import Sequencer as LogSequencer
from ledger.note import parse_note, parse_signature_line

log = logging.getLogger(__name__)

CATCH_UP_CHUNK = 4096  # entries per call when a party's mirror is far behind


@dataclass(frozen=True)
class CosignCall:
    """What the sequencer sends one witness (see the Cosign RPC)."""

    entries: list[bytes]
    from_size: int
    note: str
    old_size: int
    proof: list[bytes]
    apply_only: bool = False
    cosigned_note: str = ""  # the last checkpoint a quorum cosigned, for the party's mirror


RemoteCosign = Callable[[str, CosignCall], Awaitable[CosignOutcome]]


@dataclass(frozen=True)
class Anchored:
    """Where appended entries landed, and the cosigned checkpoint that covers them."""

    first_index: int
    count: int
    note: str


@dataclass
class _Request:
    entries: list[Entry]
    future: asyncio.Future[Anchored]


class LedgerWriter:
    """Appends entries for the sequencer and gathers the parties' cosignatures."""

    def __init__(
        self,
        federation: Federation,
        ledger: PartyLedger,
        log_key: Ed25519PrivateKey,
        remote_cosign: RemoteCosign,
    ) -> None:
        self._federation = federation
        self._ledger = ledger
        # Entries are verified where they come in (decisions, results, registrations from
        # other parties) or were made here; the mirrors verify every one again.
        self._log = LogSequencer(
            ledger.store,
            NoteSigner(federation.log_origin, log_key),
            ledger.keyring,
            keys.quorum(federation),
            verify_entries=False,
        )
        self._quorum = keys.quorum(federation)
        self._remote = remote_cosign
        self._queue: list[_Request] = []
        self._wake = asyncio.Event()
        self._sizes: dict[str, tuple[int, int]] = {}  # party -> (mirror, witness) sizes
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0
        self.appended = 0
        self._cosigned_note = ""

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ledger-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def append(self, entries: Sequence[Entry]) -> Anchored:
        """Append ``entries`` (in order, contiguously) once a quorum cosigned them.

        Raises PeerError when the quorum is not met or the log cannot be written.
        """
        future: asyncio.Future[Anchored] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(list(entries), future))
        self._wake.set()
        return await future

    def receipt(self, index: int, note: str) -> Receipt:
        """Return the inclusion receipt of entry ``index`` against a cosigned ``note``."""
        size = self._log.quorum.open(note)[0].size
        return Receipt(index, tuple(self._ledger.store.inclusion_proof(index, size)), note)

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            requests, self._queue = self._queue, []
            if not requests:
                continue
            try:
                await self._round(requests)
            except EngineError as exc:
                for request in requests:
                    if not request.future.done():
                        request.future.set_exception(type(exc)(str(exc)))
            except Exception as exc:  # never leave a waiter hanging
                log.exception("ledger round failed")
                for request in requests:
                    if not request.future.done():
                        request.future.set_exception(PeerError(f"ledger: {type(exc).__name__}"))

    async def _round(self, requests: list[_Request]) -> None:
        began = time.perf_counter()
        entries = [e for r in requests for e in r.entries]
        try:
            batch = await asyncio.to_thread(self._log.append, entries)
        except LedgerError as exc:
            raise PeerError(f"ledger: append refused by the log ({exc})") from None
        appended = time.perf_counter()
        new = list(
            enumerate(
                self._ledger.store.entries_bytes(batch.first_index, batch.size), batch.first_index
            )
        )
        names = [p.name for p in self._federation.parties]
        results = await asyncio.gather(
            *(self._cosign(name, batch.note, batch.size, new) for name in names),
            return_exceptions=True,
        )
        cosigned_at = time.perf_counter()
        lines = [r.strip("\n") for r in results if isinstance(r, str) and r.strip()]
        failures = {
            name: str(r) for name, r in zip(names, results, strict=True) if not isinstance(r, str)
        }
        try:
            note, cosigners = await asyncio.to_thread(self._keep, batch.note, lines)
        except LedgerError as exc:
            raise PeerError(f"ledger: a cosignature does not verify ({exc})") from None
        if len(cosigners) < self._federation.ledger_quorum:
            missing = ", ".join(f"{n} ({reason})" for n, reason in sorted(failures.items()))
            raise PeerError(
                f"ledger: checkpoint {batch.size} cosigned by {len(cosigners)} "
                f"parties, want {self._federation.ledger_quorum} (not cosigned by: {missing}); "
                "the query is refused rather than left unanchored"
            )
        self._cosigned_note = note
        first = batch.first_index
        for request in requests:
            if not request.future.done():
                request.future.set_result(Anchored(first, len(request.entries), note))
            first += len(request.entries)
        self.rounds += 1
        self.appended += len(entries)
        log.debug(
            "ledger round: %d entries at %d, size %d, %.1f ms (append %.1f, cosign %.1f, "
            "store %.1f)",
            len(entries),
            batch.first_index,
            batch.size,
            (time.perf_counter() - began) * 1000,
            (appended - began) * 1000,
            (cosigned_at - appended) * 1000,
            (time.perf_counter() - cosigned_at) * 1000,
        )

    def _keep(self, note: str, lines: list[str]) -> tuple[str, tuple[str, ...]]:
        """Add verified cosignatures to the log-signed note and store it; return it and
        the names of the parties whose cosignatures verified (unknown keys are dropped)."""
        parsed = parse_note(note)
        extra = [parse_signature_line(line) for text in lines for line in text.splitlines()]
        combined = parsed.with_signatures(*extra).format()
        _, cosigners = self._quorum.open(combined)  # a known key that fails raises
        self._ledger.store.store_checkpoint(combined)
        return combined, cosigners

    async def _cosign(self, name: str, note: str, size: int, new: list[tuple[int, bytes]]) -> str:
        """Return one party's cosignature of checkpoint ``size`` (bringing its mirror up)."""
        store = self._ledger.store
        if name == self._ledger.name:
            witness = self._ledger.witness.latest()
            old = 0 if witness is None else witness.size
            proof = store.consistency_proof(old, size) if 0 < old < size else []
            outcome = await asyncio.to_thread(self._ledger.cosign_own, note, old, proof, new)
            if not outcome.cosignature:
                raise PeerError(f"ledger: own witness is at {outcome.witness_size}, not {old}")
            return outcome.cosignature
        mirror, witness_size = self._sizes.get(name, (new[0][0] if new else size, -1))
        for _ in range(4):
            if size - mirror > CATCH_UP_CHUNK:
                mirror = await self._catch_up(name, mirror, size)
                continue
            if witness_size < 0:
                witness_size = mirror  # a first guess: the witness cosigned what it holds
            proof = store.consistency_proof(witness_size, size) if 0 < witness_size < size else []
            call = CosignCall(
                store.entries_bytes(mirror, size),
                mirror,
                note,
                witness_size,
                proof,
                cosigned_note=self._cosigned_note,
            )
            outcome = await self._remote(name, call)
            if outcome.cosignature:
                self._sizes[name] = (size, size)
                return outcome.cosignature
            mirror, witness_size = outcome.mirror_size, outcome.witness_size
            if mirror > size:
                raise PeerError(f"ledger: {name}'s mirror holds {mirror} entries, log has {size}")
        raise PeerError(f"ledger: {name} did not settle on a size to cosign from")

    async def _catch_up(self, name: str, mirror: int, size: int) -> int:
        """Send a far-behind party the log in chunks ending at stored checkpoints."""
        store = self._ledger.store
        targets = [s for s in store.checkpoint_sizes() if mirror < s <= mirror + CATCH_UP_CHUNK]
        target = max(targets) if targets else size
        note = store.checkpoint_note(target)
        if note is None:
            raise PeerError(f"ledger: no stored checkpoint at {target} to catch {name} up")
        call = CosignCall(store.entries_bytes(mirror, target), mirror, note, 0, [], apply_only=True)
        outcome = await self._remote(name, call)
        return outcome.mirror_size
