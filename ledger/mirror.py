"""A mirror: a party's full copy of the log, extended only with entries it has checked.

`Mirror.apply(entries, note)` accepts a batch from the sequencer when

- the note is a checkpoint signed by the log key for the federation's origin,
- the entries continue the mirror's copy exactly (checkpoint size = local size + count),
- every entry decodes canonically and every author signature verifies, and
- the root recomputed from the local tree plus the new entries equals the checkpoint's.

The last check is stronger than a consistency proof: the mirror rebuilds the new tree from
its own prefix, so an accepted checkpoint extends everything the mirror held before. The
entries and the checkpoint are stored in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entries import decode_entry, verify_entry
from ledger.errors import FormatError, ProofError, SignatureError
from ledger.keyring import KeyRing
from ledger.note import Verifier
from ledger.store import LedgerStore


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

    def apply(self, entries: Sequence[bytes], note: str) -> Checkpoint:
        """Check and append a batch from the sequencer; return its checkpoint.

        Raises FormatError, SignatureError (the note or an entry), ProofError (wrong size or
        root: the sequencer's log is not an extension of this copy). Nothing is written
        unless every check passes.
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
            self.store.store_checkpoint(note)
            return checkpoint
        self.store.append_batch(decoded, note_for=lambda _s, _r: note, expect_root=checkpoint.root)
        return checkpoint
