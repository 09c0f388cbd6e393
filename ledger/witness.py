"""A witness: cosigns a log's checkpoints only if they extend the last one it cosigned.

Follows the C2SP tlog-witness `add-checkpoint` rules (c2sp.org/tlog-witness), with the
check-and-record done atomically in one SQLite transaction:

- the checkpoint must carry a valid signature by the log key, for the configured origin;
- a checkpoint smaller than the latest cosigned one is refused (no rollback);
- `old_size` must equal the latest cosigned size (0 if none), else ConflictError, which
  carries the latest size so the caller can retry with the right proof;
- the first checkpoint is accepted on trust (old size 0, empty proof) unless the witness
  was built with trust_on_first_use=False, in which case `start_from` must set it;
- at equal sizes the roots must be equal; otherwise the consistency proof from the latest
  cosigned checkpoint must verify.

When a validly signed checkpoint is inconsistent with the latest cosigned one, the witness
keeps both signed notes and the offered proof in its `fork_evidence` table before raising
ForkError. Equal sizes with different roots is conclusive evidence of a forking log; a
proof that fails to verify is kept too, as it may be.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger._sqlite import connect, connect_readonly, transaction
from ledger._text import b64decode_hash, b64encode, parse_decimal
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.cosignature import CosignatureSigner, CosignatureVerifier
from ledger.errors import (
    ConflictError,
    ForkError,
    FormatError,
    ProofError,
    StoreError,
    WitnessError,
)
from ledger.note import Verifier
from ledger.proof import verify_consistency

MAX_PROOF_LINES = 63

_DDL = """
CREATE TABLE IF NOT EXISTS witness_state (
    origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fork_evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, recorded_at INTEGER NOT NULL,
    reason TEXT NOT NULL, cosigned_note TEXT NOT NULL, offered_note TEXT NOT NULL,
    old_size INTEGER NOT NULL, proof TEXT NOT NULL);
"""


@dataclass(frozen=True)
class ForkEvidence:
    """Two log-signed checkpoints that the witness found inconsistent, and why."""

    id: int
    origin: str
    recorded_at: int
    reason: str
    cosigned_note: str
    offered_note: str
    old_size: int
    proof: tuple[bytes, ...]


class Witness:
    """Cosigns checkpoints of one log, keeping its state in a SQLite database."""

    def __init__(
        self,
        name: str,
        private_key: Ed25519PrivateKey | bytes,
        db_path: str | os.PathLike[str],
        *,
        log: Verifier,
        origin: str | None = None,
        trust_on_first_use: bool = True,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """Build a witness named `name` for the log whose key is `log`.

        origin defaults to the log key's name. `clock` gives cosignature timestamps.
        """
        self._clock = clock or (lambda: int(time.time()))
        self._signer = CosignatureSigner(name, private_key, self._clock)
        self._log = log
        self.origin = log.name if origin is None else origin
        self._tofu = trust_on_first_use
        self._conn = connect(db_path)
        self._conn.executescript(_DDL)
        self._lock = threading.Lock()  # one connection, shared by the caller's threads

    @property
    def name(self) -> str:
        return self._signer.name

    @property
    def verifier(self) -> CosignatureVerifier:
        """Return the verifier of this witness's cosignatures."""
        return self._signer.verifier

    def latest(self) -> Checkpoint | None:
        """Return the latest checkpoint this witness cosigned (or started from)."""
        with self._lock:
            row = self._state()
        return None if row is None else Checkpoint.parse(_note_text(row[2]))

    def latest_note(self) -> str | None:
        """Return the signed note of the latest checkpoint this witness cosigned, if any."""
        with self._lock:
            row = self._state()
        return None if row is None else row[2]

    def _state(self) -> tuple[int, bytes, str] | None:
        """Return (size, root, note) of the latest cosigned checkpoint; caller holds the lock."""
        row = self._conn.execute(
            "SELECT size, root, note FROM witness_state WHERE origin = ?", (self.origin,)
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]), str(row[2]))

    def start_from(self, note: str) -> Checkpoint:
        """Set an explicit, trusted starting checkpoint (for trust_on_first_use=False).

        Raises SignatureError/FormatError for a bad note, WitnessError if the witness already
        has a different state.
        """
        checkpoint, _ = open_checkpoint(note, [self._log], self.origin)
        with self._lock, transaction(self._conn):
            state = self._state()
            if state is not None and (state[0], state[1]) != (checkpoint.size, checkpoint.root):
                raise WitnessError(
                    f"witness start: already at size {state[0]}, got a start at {checkpoint.size}"
                )
            if state is None:
                self._save(checkpoint, note)
        return checkpoint

    def cosign(self, note: str, old_size: int, proof: Sequence[bytes]) -> str:
        """Return this witness's cosignature line for a checkpoint note (see module doc).

        Raises FormatError, SignatureError, WitnessError, ConflictError or ForkError.
        """
        checkpoint, _ = open_checkpoint(note, [self._log], self.origin)
        if len(proof) > MAX_PROOF_LINES:
            raise WitnessError(f"consistency proof: got {len(proof)} hashes, want <= 63")
        evidence: int | None = None
        with self._lock, transaction(self._conn):
            state = self._state()
            if state is None and not self._tofu:
                raise WitnessError("witness: no starting checkpoint, and trust on first use is off")
            latest_size, _, latest_note = state or (0, b"", "")
            if checkpoint.size < latest_size:
                raise WitnessError(
                    f"checkpoint size: got {checkpoint.size}, want >= {latest_size} "
                    "(rollback refused)"
                )
            if not 0 <= old_size <= checkpoint.size:
                raise WitnessError(f"old size: got {old_size}, want 0..{checkpoint.size}")
            if old_size != latest_size:
                raise ConflictError(
                    f"old size: got {old_size}, want {latest_size} (latest cosigned)", latest_size
                )
            reason = self._inconsistency(checkpoint, proof, state)
            if reason is not None:
                evidence = self._record(reason, latest_note, note, old_size, proof)
            elif state is None or checkpoint.size > latest_size:
                self._save(checkpoint, note)
        if evidence is not None:
            raise ForkError(f"{reason}; evidence {evidence} kept", evidence)
        return self._signer.cosign(checkpoint.text()).line()

    def _inconsistency(
        self, checkpoint: Checkpoint, proof: Sequence[bytes], state: tuple[int, bytes, str] | None
    ) -> str | None:
        """Return why checkpoint does not extend the latest cosigned one, or None if it does.

        Raises WitnessError for a proof where none belongs.
        """
        size, root = (0, b"") if state is None else state[:2]
        if state is not None and checkpoint.size == size:
            if proof:
                raise WitnessError(
                    f"consistency proof at equal sizes: got {len(proof)} hashes, want 0"
                )
            if checkpoint.root != root:
                return f"checkpoint {size}: two different roots signed for one size"
            return None
        if size == 0:  # first checkpoint, or the empty tree: every tree extends it
            if proof:
                raise WitnessError(
                    f"consistency proof from size 0: got {len(proof)} hashes, want 0"
                )
            return None
        try:
            verify_consistency(size, checkpoint.size, proof, root, checkpoint.root)
        except ProofError as e:
            return f"checkpoint {checkpoint.size} is not consistent with cosigned {size}: {e}"
        return None

    def _save(self, checkpoint: Checkpoint, note: str) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO witness_state (origin, size, root, note) VALUES (?, ?, ?, ?)",
            (self.origin, checkpoint.size, checkpoint.root, note),
        )

    def _record(
        self, reason: str, cosigned: str, offered: str, old_size: int, proof: Sequence[bytes]
    ) -> int:
        cur = self._conn.execute(
            "INSERT INTO fork_evidence (origin, recorded_at, reason, cosigned_note, "
            "offered_note, old_size, proof) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.origin, self._clock(), reason, cosigned, offered, old_size, _proof_text(proof)),
        )
        return int(cur.lastrowid or 0)

    def fork_evidence(self) -> list[ForkEvidence]:
        """Return every inconsistency this witness recorded, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, origin, recorded_at, reason, cosigned_note, offered_note, old_size, "
                "proof FROM fork_evidence ORDER BY id"
            ).fetchall()
        out = []
        for r in rows:
            proof = tuple(b64decode_hash(x, "evidence proof") for x in str(r[7]).splitlines())
            out.append(ForkEvidence(int(r[0]), r[1], int(r[2]), r[3], r[4], r[5], int(r[6]), proof))
        return out

    def add_checkpoint(self, body: str) -> str:
        """Handle a C2SP tlog-witness add-checkpoint request body; return the response body."""
        old_size, proof, note = parse_add_checkpoint(body)
        return self.cosign(note, old_size, proof)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()


def witnessed_checkpoint(
    db_path: str | os.PathLike[str], origin: str
) -> tuple[Checkpoint, str] | None:
    """Return the latest checkpoint (and its note) a witness database records for
    ``origin``, opening it read-only; None if it records none.

    For auditors: the witness cosigned this checkpoint, so its log reached that size.
    Raises StoreError if the file is not a witness database.
    """
    conn = connect_readonly(db_path)
    try:
        row = conn.execute("SELECT note FROM witness_state WHERE origin = ?", (origin,)).fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"witness database {os.fspath(db_path)}: {exc}") from None
    finally:
        conn.close()
    if row is None:
        return None
    note = str(row[0])
    return Checkpoint.parse(_note_text(note)), note


def _proof_text(proof: Sequence[bytes]) -> str:
    return "".join(b64encode(h) + "\n" for h in proof)


def _note_text(note: str) -> str:
    return note[: note.rfind("\n\n") + 1]


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> str:
    """Return a C2SP tlog-witness add-checkpoint request body."""
    return f"old {old_size}\n" + _proof_text(proof) + "\n" + note


def parse_add_checkpoint(body: str) -> tuple[int, list[bytes], str]:
    """Parse an add-checkpoint request body into (old size, proof, checkpoint note).

    Raises FormatError for anything but "old N", up to 63 base64 hashes, a blank line, a note.
    """
    head, sep, note = body.partition("\n\n")
    if not sep:
        raise FormatError("add-checkpoint: got no blank line before the checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old "):
        raise FormatError("add-checkpoint: got no 'old <size>' line first")
    old_size = parse_decimal(lines[0][4:], "add-checkpoint old size")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise FormatError(f"add-checkpoint: got {len(lines) - 1} proof lines, want <= 63")
    proof = [b64decode_hash(line, "add-checkpoint proof line") for line in lines[1:]]
    return old_size, proof, note
