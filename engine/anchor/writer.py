"""The sequencer's ledger writer: batched appends, each made to count by a cosigned checkpoint.

Callers (batches of queries preparing, MPC jobs finishing, registrations, aborts) ask to
append entries; every request waiting when a round starts goes into one SQLite transaction
with one log-signed checkpoint, which every party's witness is then asked to cosign (each
checks the new entries into its own mirror first). An append returns only once a quorum of
parties cosigned: nothing is released on a checkpoint that is not cosigned (safety over
liveness), and the caller gets a PeerError naming who did not cosign.

A round's critical path is the log's transaction (durable before any witness sees the
checkpoint), then the witnesses (each party's mirror and witness write side by side), then
the check of the cosignatures. The checkpoint with its cosignatures is then stored in the
next round's transaction, or on its own once no round has come for a moment (and when the
writer stops): it is a copy of signatures the callers already hold (and the parties'
mirrors keep it too), over entries and witness states that are durable already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.anchor.errors import engine_error
from engine.anchor.party_ledger import CosignOutcome, PartyLedger
from engine.config import Federation
from engine.errors import EngineError, PeerError
from ledger import Batch, Entry, LedgerError, NoteSigner, Receipt
from ledger import Sequencer as LogSequencer
from ledger.note import NoteSignature, parse_note

log = logging.getLogger(__name__)

CATCH_UP_CHUNK = 4096  # entries per call when a party's mirror is far behind
FORWARD_SECONDS = 1.0  # how often each party's mirror is sent the latest cosigned checkpoint
STORE_IDLE_SECONDS = 0.2  # a cosigned checkpoint no round took along is stored after this


@dataclass(frozen=True)
class CosignCall:
    """What the sequencer sends one witness (see the Cosign RPC)."""

    entries: list[bytes]
    from_size: int
    note: str
    old_size: int
    proof: list[bytes]
    apply_only: bool = False
    # The last checkpoint a quorum cosigned, for the party's mirror to keep ("" but about
    # once a second: checking its cosignatures costs a party more than the rest of a round).
    cosigned_note: str = ""


RemoteCosign = Callable[[str, CosignCall], Awaitable[CosignOutcome]]


@dataclass(frozen=True)
class Anchored:
    """Where appended entries landed, and the cosigned checkpoint that covers them."""

    first_index: int
    count: int
    note: str
    size: int  # the size of the checkpoint in ``note``


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
            ledger.quorum,
            verify_entries=False,
        )
        self._remote = remote_cosign
        self._queue: list[_Request] = []
        self._wake = asyncio.Event()
        self._sizes: dict[str, tuple[int, int]] = {}  # party -> (mirror, witness) sizes
        self._own_witness = -1  # the size this party's witness last cosigned (-1: unknown)
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0
        self.appended = 0
        self._cosigned_note = ""  # the last checkpoint a quorum cosigned
        self._forwarded: dict[str, float] = {}  # party -> when it was last sent that
        self._kept_by: dict[str, str] = {}  # party -> the cosigned note it was last sent
        self._forwarding: dict[str, asyncio.Task[None]] = {}  # idle sends under way
        self._unstored: list[str] = []  # cosigned notes not yet in the log's store

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ledger-writer")

    async def stop(self) -> None:
        for task in [self._task, *self._forwarding.values()]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._unstored:
            await self._store_cosigned()

    def append(self, entries: Sequence[Entry]) -> asyncio.Future[Anchored]:
        """Queue ``entries`` for the next round; return a future of where they landed.

        Entries of one call are appended in order and contiguously, and calls in call
        order. The future is done once a quorum cosigned a checkpoint covering them; it
        raises PeerError when the quorum is not met or the log cannot be written.
        """
        future: asyncio.Future[Anchored] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(list(entries), future))
        self._wake.set()
        return future

    def receipt(self, index: int, anchored: Anchored) -> Receipt:
        """Return the inclusion receipt of entry ``index`` against a round's cosigned note."""
        proof = self._ledger.store.inclusion_proof(index, anchored.size)
        return Receipt(index, tuple(proof), anchored.note)

    async def _loop(self) -> None:
        while True:
            if not self._unstored:
                await self._wake.wait()
            else:  # the next round takes the cosigned note along, unless none comes soon
                try:
                    await asyncio.wait_for(self._wake.wait(), STORE_IDLE_SECONDS)
                except TimeoutError:
                    await self._store_cosigned()
                    self._forward_idle()
                    continue
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

    async def _store_cosigned(self) -> None:
        """Store the cosigned checkpoints that no round's transaction has taken along."""
        notes, self._unstored = self._unstored, []
        try:
            await asyncio.to_thread(self._ledger.store.store_checkpoints, notes)
        except LedgerError as exc:
            log.warning("ledger: cosigned checkpoint not stored: %s", exc)

    def _forward_idle(self) -> None:
        """Send every other party's mirror the last cosigned checkpoint, in the background.

        Rounds carry it about once a second; once queries stop, this brings every mirror's
        latest cosigned checkpoint up to the log's size (what `jointstat ledger checkpoint`
        shows at that party). A party that is down gets it with the next round.
        """
        note = self._cosigned_note
        for name, (mirror, _) in self._sizes.items():
            if note and self._kept_by.get(name) != note and name not in self._forwarding:
                self._forwarding[name] = asyncio.create_task(self._forward(name, mirror, note))

    async def _forward(self, name: str, mirror: int, note: str) -> None:
        call = CosignCall([], mirror, note, 0, [], apply_only=True, cosigned_note=note)
        try:
            await self._remote(name, call)
        except EngineError as exc:
            log.debug("ledger: cosigned checkpoint not sent to %s: %s", name, exc)
            return
        finally:
            self._forwarding.pop(name, None)
        self._forwarded[name] = time.monotonic()
        self._kept_by[name] = note

    async def _round(self, requests: list[_Request]) -> None:
        began = time.perf_counter()
        entries = [e for r in requests for e in r.entries]
        cosigned, self._unstored = self._unstored, []
        try:
            batch, encoded, proofs = await asyncio.to_thread(self._append, entries, cosigned)
        except LedgerError as exc:
            if not cosigned:
                raise engine_error(exc, "ledger: append refused by the log", PeerError) from None
            # Never let a cosigned note that cannot be stored block the log: drop it.
            log.warning("ledger: cosigned checkpoint not stored (%s); appending without it", exc)
            try:
                batch, encoded, proofs = await asyncio.to_thread(self._append, entries, [])
            except LedgerError as again:
                raise PeerError(f"ledger: append refused by the log ({again})") from None
        appended = time.perf_counter()
        names = [p.name for p in self._federation.parties]
        results = await asyncio.gather(
            *(self._cosigned_by(name, batch, entries, encoded, proofs) for name in names),
            return_exceptions=True,
        )
        cosigned_at = time.perf_counter()
        signatures = [s for r in results if isinstance(r, list) for s in r]
        failures = {
            name: str(r) for name, r in zip(names, results, strict=True) if not isinstance(r, list)
        }
        note = parse_note(batch.note).with_signatures(*signatures).format()
        cosigners = len({(s.name, s.key_id) for s in signatures})
        if cosigners < self._federation.ledger_quorum:
            missing = ", ".join(f"{n} ({reason})" for n, reason in sorted(failures.items()))
            raise PeerError(
                f"ledger: checkpoint {batch.size} cosigned by {cosigners} "
                f"parties, want {self._federation.ledger_quorum} (not cosigned by: {missing}); "
                "the query is refused rather than left unanchored"
            )
        self._cosigned_note = note
        self._unstored.append(note)
        first = batch.first_index
        for request in requests:
            if not request.future.done():
                request.future.set_result(Anchored(first, len(request.entries), note, batch.size))
            first += len(request.entries)
        self.rounds += 1
        self.appended += len(entries)
        log.debug(
            "ledger round: %d entries at %d, size %d, %.1f ms (append %.1f, cosign %.1f, "
            "combine %.1f)",
            len(entries),
            batch.first_index,
            batch.size,
            (time.perf_counter() - began) * 1000,
            (appended - began) * 1000,
            (cosigned_at - appended) * 1000,
            (time.perf_counter() - cosigned_at) * 1000,
        )

    def _append(
        self, entries: list[Entry], cosigned: list[str]
    ) -> tuple[Batch, list[bytes], dict[int, list[bytes]]]:
        """Append entries (storing earlier cosigned notes in the same transaction); return
        the batch, its entries' bytes, and the consistency proofs to its size from every
        size a witness is known to be at."""
        store = self._ledger.store
        if self._own_witness < 0:
            latest = self._ledger.witness.latest()
            self._own_witness = 0 if latest is None else latest.size
        batch = self._log.append(entries, checkpoints=cosigned)
        # Indexed now, not at the own witness's cosign: a round that fails to gather its
        # cosignatures still appended its entries (an abort must not be appended twice).
        self._ledger.index_decoded(enumerate(entries, batch.first_index))
        encoded = store.entries_bytes(batch.first_index, batch.size)
        olds = {self._own_witness, *(w for _, w in self._sizes.values())}
        proofs = {o: store.consistency_proof(o, batch.size) for o in olds if 0 < o < batch.size}
        return batch, encoded, proofs

    async def _cosigned_by(
        self,
        name: str,
        batch: Batch,
        entries: list[Entry],
        encoded: list[bytes],
        proofs: dict[int, list[bytes]],
    ) -> list[NoteSignature]:
        """Return one party's cosignatures of the batch's checkpoint, each verified as soon
        as the party answers (lines of unknown keys are dropped). Raises PeerError, also
        when a known witness's cosignature does not verify."""
        lines = await self._cosign(name, batch, entries, encoded, proofs)
        try:
            return self._log.verified_cosignatures(parse_note(batch.note), lines)
        except LedgerError as exc:
            what = f"ledger: {name}'s cosignature does not verify"
            raise engine_error(exc, what, PeerError) from None

    async def _proof(self, old: int, size: int, proofs: dict[int, list[bytes]]) -> list[bytes]:
        """Return the consistency proof from ``old`` to ``size`` (precomputed if known)."""
        if not 0 < old < size:
            return []
        proof = proofs.get(old)
        if proof is None:
            proof = await asyncio.to_thread(self._ledger.store.consistency_proof, old, size)
        return proof

    async def _cosign(
        self,
        name: str,
        batch: Batch,
        entries: list[Entry],
        encoded: list[bytes],
        proofs: dict[int, list[bytes]],
    ) -> str:
        """Return one party's cosignature of checkpoint ``size`` (bringing its mirror up)."""
        note, size = batch.note, batch.size
        store = self._ledger.store
        if name == self._ledger.name:
            for _ in range(2):
                old = self._own_witness
                proof = await self._proof(old, size, proofs)
                new = list(enumerate(entries, batch.first_index))
                outcome = await asyncio.to_thread(self._ledger.cosign_own, note, old, proof, new)
                if outcome.cosignature:
                    self._own_witness = size
                    return outcome.cosignature
                self._own_witness = outcome.witness_size
            raise PeerError(f"ledger: own witness is at {self._own_witness}, not {old}")
        mirror, witness_size = self._sizes.get(name, (batch.first_index, -1))
        for _ in range(4):
            if size - mirror > CATCH_UP_CHUNK:
                mirror = await self._catch_up(name, mirror, size)
                continue
            if witness_size < 0:
                witness_size = mirror  # a first guess: the witness cosigned what it holds
            if mirror == batch.first_index:
                sent = encoded
            else:
                sent = await asyncio.to_thread(store.entries_bytes, mirror, size)
            forward = time.monotonic() - self._forwarded.get(name, -FORWARD_SECONDS)
            call = CosignCall(
                sent,
                mirror,
                note,
                witness_size,
                await self._proof(witness_size, size, proofs),
                cosigned_note=self._cosigned_note if forward >= FORWARD_SECONDS else "",
            )
            outcome = await self._remote(name, call)
            if call.cosigned_note:
                self._forwarded[name] = time.monotonic()
                self._kept_by[name] = call.cosigned_note
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
