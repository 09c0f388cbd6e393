"""The sequencer: batches entries into the log, signs checkpoints, gathers cosignatures.

The sequencer is not trusted for integrity (DESIGN.md, Ledger): it checks entries'
signatures before appending so that an honest log stays verifiable, but parties verify
everything again in their mirrors and witnesses.

    seq = Sequencer(store, NoteSigner(origin, log_key), keyring, quorum)
    batch = seq.append(entries)                  # one transaction, signed checkpoint
    result = seq.collect(witnesses)              # C2SP add-checkpoint to each cosigner
    receipt = seq.receipt(batch.first_index)     # once result.quorum_met
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entries import Entry, verify_entry
from ledger.errors import ConflictError, LedgerError, QuorumError, SignatureError, StoreError
from ledger.keyring import KeyRing
from ledger.note import Note, NoteSignature, Signer, parse_note, parse_signature_line
from ledger.quorum import Quorum
from ledger.receipt import Receipt
from ledger.store import LedgerStore

log = logging.getLogger(__name__)


class Cosigner(Protocol):
    """Anything that cosigns like `ledger.witness.Witness` (in process or over RPC)."""

    @property
    def name(self) -> str: ...

    def cosign(self, note: str, old_size: int, proof: Sequence[bytes]) -> str:
        """Return cosignature line(s) for note, given a proof from old_size."""
        ...


@dataclass(frozen=True)
class Batch:
    """One appended batch: where it landed and the log-signed checkpoint of the new head."""

    first_index: int
    size: int
    root: bytes
    note: str
    checkpoint: Checkpoint


@dataclass(frozen=True)
class Cosigned:
    """The outcome of collecting cosignatures on one checkpoint."""

    note: str  # the checkpoint with every cosignature gathered so far
    checkpoint: Checkpoint
    cosigners: tuple[str, ...]
    quorum_met: bool
    failures: dict[str, LedgerError] = field(default_factory=dict)


class Sequencer:
    """Appends entries to a LedgerStore and produces checkpoints for witnesses."""

    def __init__(
        self,
        store: LedgerStore,
        signer: Signer,
        keyring: KeyRing,
        quorum: Quorum,
        *,
        verify_entries: bool = True,
    ) -> None:
        """Build a sequencer; the checkpoint origin is the quorum's origin."""
        self.store = store
        self.signer = signer
        self.keyring = keyring
        self.quorum = quorum
        self.origin = quorum.origin
        self._verify_entries = verify_entries
        self._witness_sizes: dict[str, int] = {}

    def append(self, entries: Sequence[Entry], *, checkpoints: Sequence[str] = ()) -> Batch:
        """Append entries in one transaction together with a signed checkpoint.

        `checkpoints` (notes of this log, e.g. an earlier checkpoint with its cosignatures,
        see `LedgerStore.append_batch`) are stored in the same transaction. Raises
        FormatError or SignatureError (an entry's authors) before writing anything,
        StoreError if the store cannot append.
        """
        if self._verify_entries:
            for entry in entries:
                verify_entry(entry, self.keyring)
        notes: list[str] = []

        def note_for(size: int, root: bytes) -> str:
            notes.append(sign_checkpoint(Checkpoint(self.origin, size, root), self.signer))
            return notes[-1]

        first, size, root = self.store.append_batch(
            entries, note_for=note_for, checkpoints=checkpoints
        )
        log.debug("appended %d entries at %d, size %d", len(entries), first, size)
        return Batch(first, size, root, notes[0], Checkpoint(self.origin, size, root))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Return the consistency proof from old_size to new_size (default: current size)."""
        return self.store.consistency_proof(old_size, new_size)

    def checkpoint_note(self, size: int | None = None) -> str:
        """Return the stored note (with cosignatures) of a checkpoint; default the latest."""
        note = self.store.latest_checkpoint() if size is None else self.store.checkpoint_note(size)
        if note is None:
            raise StoreError(f"checkpoint: got none stored for size {size}")
        return note

    def add_cosignatures(self, size: int, lines: str) -> Cosigned:
        """Verify cosignature lines from witnesses on checkpoint `size` and store them.

        Lines from unknown keys are dropped. Raises FormatError or SignatureError (a known
        witness's cosignature does not verify).
        """
        stored = parse_note(self.checkpoint_note(size))
        ours = self.verified_cosignatures(stored, lines)
        if ours:
            self.store.store_checkpoint(stored.with_signatures(*ours).format())
        return self._status(self.checkpoint_note(size), {})

    def collect(self, cosigners: Sequence[Cosigner], size: int | None = None) -> Cosigned:
        """Ask each cosigner to cosign checkpoint `size` (default: latest) and store results.

        Each cosigner gets a consistency proof from the size it last cosigned (learned from
        ConflictError when unknown). Failures are reported per cosigner, not raised. The
        verified cosignatures are stored together, in one transaction.
        """
        note = parse_note(self.checkpoint_note(size))
        checkpoint = Checkpoint.parse(note.text)
        failures: dict[str, LedgerError] = {}
        gathered: list[NoteSignature] = []
        for cosigner in cosigners:
            try:
                gathered += self.verified_cosignatures(
                    note, self._ask(cosigner, note.format(), checkpoint.size)
                )
            except LedgerError as e:
                log.warning(
                    "cosigner %s refused checkpoint %d: %s", cosigner.name, checkpoint.size, e
                )
                failures[cosigner.name] = e
        if gathered:
            self.store.store_checkpoint(note.with_signatures(*gathered).format())
        return self._status(self.checkpoint_note(checkpoint.size), failures)

    def verified_cosignatures(self, note: Note, lines: str) -> list[NoteSignature]:
        """Return the known witnesses' signatures among lines, each verified on note.

        Lines from unknown keys are dropped. Raises FormatError or SignatureError (a known
        witness's cosignature does not verify).
        """
        known = {(w.name, w.key_id): w for w in self.quorum.witnesses}
        text = note.text.encode()
        out = []
        for line in lines.splitlines():
            sig = parse_signature_line(line)
            witness = known.get((sig.name, sig.key_id))
            if witness is None:
                continue
            if not witness.verify(text, sig.signature):
                raise SignatureError(
                    f"cosignature by {sig.name}+{sig.key_id.hex()}: does not verify"
                )
            out.append(sig)
        return out

    def _ask(self, cosigner: Cosigner, note: str, size: int) -> str:
        old = min(self._witness_sizes.get(cosigner.name, 0), size)
        try:
            lines = cosigner.cosign(note, old, self.consistency_proof(old, size))
        except ConflictError as e:
            if not 0 <= e.latest_size <= size or e.latest_size == old:
                raise
            old = e.latest_size
            lines = cosigner.cosign(note, old, self.consistency_proof(old, size))
        self._witness_sizes[cosigner.name] = size
        return lines

    def _status(self, note: str, failures: dict[str, LedgerError]) -> Cosigned:
        checkpoint, names = self.quorum.open(note)
        return Cosigned(note, checkpoint, names, len(names) >= self.quorum.k, failures)

    def latest_cosigned(self) -> str | None:
        """Return the largest stored checkpoint note that meets the quorum, if any."""
        for _, note in self.store.iter_checkpoints(newest_first=True):
            try:
                self.quorum.verify(note)
                return note
            except QuorumError:
                continue
        return None

    def receipt(self, index: int, size: int | None = None) -> Receipt:
        """Return a receipt for entry `index` against a cosigned checkpoint.

        Uses the checkpoint of `size` (default: the latest one meeting the quorum). Raises
        QuorumError if that checkpoint lacks a quorum, ProofError if index is not in it.
        """
        note = self.latest_cosigned() if size is None else self.checkpoint_note(size)
        if note is None:
            raise QuorumError("receipt: got no checkpoint meeting the quorum")
        checkpoint = self.quorum.verify(note)
        proof = self.store.inclusion_proof(index, checkpoint.size)
        return Receipt(index, tuple(proof), note)
