"""A mirror: a party's full copy of the log, extended only with entries it has checked.

`Mirror.apply(entries, note)` accepts a batch from the sequencer when

- the note is a checkpoint signed by the log key for the federation's origin,
- the entries continue the mirror's copy exactly (checkpoint size = local size + count),
- every entry decodes canonically and every author signature verifies, and
- the root recomputed from the local tree plus the new entries equals the checkpoint's.

The last check is stronger than a consistency proof: the mirror rebuilds the new tree from
its own prefix, so an accepted checkpoint extends everything the mirror held before. The
entries and the checkpoint are stored in one transaction.

`apply` is `check` (every check, nothing written) followed by `store_batch` (one
transaction); a caller may do other work between the two, such as letting its witness
cosign the checkpoint while the entries are being written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entries import Entry, decode_entry, verify_entry
from ledger.errors import FormatError, ProofError, SignatureError, differing_hex
from ledger.keyring import KeyRing
from ledger.note import Verifier
from ledger.store import LedgerStore, PendingAppend


@dataclass(frozen=True)
class CheckedBatch:
    """A batch that passed every check of `Mirror.check`, ready for `Mirror.store`."""

    checkpoint: Checkpoint
    note: str
    entries: tuple[Entry, ...]  # decoded and verified
    pending: PendingAppend | None  # None when the batch adds no entries


class Mirror:
    """Keeps a verified copy of the log in a LedgerStore."""

    def __init__(
        self, store: LedgerStore, keyring: KeyRing, log: Verifier, origin: str | None = None
    ) -> None:
        """Build a mirror; origin defaults to the log key's name."""
        self.store = store
        self.keyring = keyring
        self.log = log
        self.origin = log.name if origin is None else origin

    def apply(
        self, entries: Sequence[bytes], note: str, *, checkpoints: Sequence[str] = ()
    ) -> Checkpoint:
        """Check and append a batch from the sequencer; return its checkpoint.

        `checkpoints` (notes of this log that the caller has verified, see
        `LedgerStore.append_batch`) are stored in the same transaction. Raises FormatError,
        SignatureError (the note or an entry), ProofError (wrong size or root: the
        sequencer's log is not an extension of this copy). Nothing is written unless every
        check passes.
        """
        return self.store_batch(self.check(entries, note), checkpoints=checkpoints)

    def check(self, entries: Sequence[bytes], note: str) -> CheckedBatch:
        """Run every check of `apply` on a batch, writing nothing.

        Raises as `apply` does. The result is valid until the store changes.
        """
        checkpoint, _ = open_checkpoint(note, [self.log], self.origin)
        start = self.store.size
        if checkpoint.size != start + len(entries):
            raise ProofError(
                f"mirror: checkpoint size got {checkpoint.size}, want {start} held + "
                f"{len(entries)} received"
            )
        decoded = []
        for offset, data in enumerate(entries):
            try:
                entry = decode_entry(data)
                verify_entry(entry, self.keyring)
            except FormatError as e:
                raise FormatError(f"mirror: entry {start + offset}: {e}") from None
            except SignatureError as e:
                raise SignatureError(f"mirror: entry {start + offset}: {e}") from None
            decoded.append(entry)
        if not decoded:
            if checkpoint.root != self.store.root:
                raise ProofError(f"mirror: checkpoint {checkpoint.size} root differs from the copy")
            return CheckedBatch(checkpoint, note, (), None)
        pending = self.store.prepare_append(decoded, encoded=entries)  # canonical, as decoded
        if pending.root != checkpoint.root:
            got, want = differing_hex(pending.root, checkpoint.root)
            raise ProofError(
                f"mirror: append of {len(decoded)} entries at {start}: new root "
                f"{got}, want {want} (the checkpoint's)"
            )
        return CheckedBatch(checkpoint, note, tuple(decoded), pending)

    def store_batch(
        self, batch: CheckedBatch, *, checkpoints: Sequence[str] = (), keep_note: bool = True
    ) -> Checkpoint:
        """Append a checked batch and its checkpoint (and `checkpoints`) in one transaction.

        With ``keep_note`` False the batch's own note is not stored (a mirror that keeps only
        checkpoints a quorum cosigned passes those in `checkpoints`). Raises StoreError if
        the store changed since `check`.
        """
        notes = [batch.note] if keep_note else []
        if batch.pending is None:
            if notes or checkpoints:
                self.store.store_checkpoints([*notes, *checkpoints])
        else:
            self.store.commit_append(
                batch.pending,
                note_for=(lambda _s, _r: batch.note) if keep_note else None,
                checkpoints=checkpoints,
            )
        return batch.checkpoint
