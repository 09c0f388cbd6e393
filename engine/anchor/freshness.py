"""Is a ledger copy current? Compare it with checkpoints others have signed.

A copy can be valid in itself (every hash and signature recomputes) and still be old: a
copy restored from a backup, or truncated to an earlier checkpoint, verifies on its own.
What proves the log went further is a signed checkpoint of a larger size: the checkpoint
the party's own witness last cosigned (``state/witness.sqlite``, log-signed), and the
latest quorum-cosigned checkpoint and witness state of every other party (the Analyst
service's GetCheckpoint). A copy with fewer entries than such a checkpoint was rolled
back (or, measured against other parties only, it may never have caught up: a party that
missed a round gets its entries with the next one); one whose root at that size differs
is not the log the parties signed.

What it reveals: asking a party reveals to it that someone audits (and who: the caller's
certificate); the answers hold sizes and roots only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.anchor import keys
from engine.config import Federation
from engine.errors import EngineError
from ledger import Checkpoint, LedgerError, LedgerStore, open_checkpoint, witnessed_checkpoint
from ledger.errors import differing_hex


@dataclass(frozen=True)
class Witnessed:
    """A signed checkpoint of the federation's log, and who holds it."""

    source: str  # e.g. "tax's witness", "party social (cosigned by a quorum)"
    checkpoint: Checkpoint
    own: bool = False  # the witness of the party whose copy this is


@dataclass(frozen=True)
class Comparison:
    """What a copy was compared with, what was not reachable, and what is wrong."""

    compared: tuple[Witnessed, ...]
    unreachable: tuple[str, ...]  # "party tax (reason)"
    problems: tuple[str, ...]

    @property
    def largest(self) -> Witnessed | None:
        return max(self.compared, key=lambda w: w.checkpoint.size, default=None)


def local_witness(path: Path, federation: Federation, source: str) -> Witnessed | None:
    """Return the checkpoint the witness database at ``path`` (the witness of the copy's
    party, named ``source``) last cosigned; None if it has none or there is no such file.
    Raises LedgerError for a foreign file or a note the log did not sign."""
    if not path.exists():
        return None
    found = witnessed_checkpoint(path, federation.log_origin)
    if found is None:
        return None
    checkpoint, _ = open_checkpoint(found[1], [keys.log_verifier(federation)])
    return Witnessed(source, checkpoint, own=True)


def verify_answers(
    federation: Federation, answers: Mapping[str, tuple[str, str] | EngineError]
) -> tuple[list[Witnessed], list[str]]:
    """Verify what the parties answered when asked for their latest cosigned checkpoint
    and their witness's (engine.rpc.checkpoints.party_checkpoints).

    Returns the checkpoints that verify, and the parties not reached or answering with a
    note that does not verify (each with the reason).
    """
    quorum = keys.quorum(federation)
    log = keys.log_verifier(federation)
    found: list[Witnessed] = []
    missed: list[str] = []
    for name, answer in answers.items():
        if isinstance(answer, EngineError):
            missed.append(f"party {name} ({answer})")
            continue
        cosigned_note, witness_note = answer
        try:
            if cosigned_note:
                cosigned = quorum.verify(cosigned_note)
                found.append(Witnessed(f"party {name} (cosigned by a quorum)", cosigned))
            if witness_note:
                witnessed, _ = open_checkpoint(witness_note, [log], federation.log_origin)
                found.append(Witnessed(f"party {name}'s witness", witnessed))
        except LedgerError as exc:
            missed.append(f"party {name} (answered a checkpoint that does not verify: {exc})")
    return found, missed


def compare(
    store: LedgerStore, witnessed: Sequence[Witnessed], missed: Sequence[str]
) -> Comparison:
    """Compare the copy in ``store`` with each signed checkpoint (see the module docstring)."""
    problems = []
    size = store.size
    largest = max(witnessed, key=lambda w: w.checkpoint.size, default=None)
    if largest is not None and largest.checkpoint.size > size:
        top = largest.checkpoint.size
        if largest.own:  # this copy's own witness cosigned it: the copy held those entries
            problems.append(
                f"rolled back from {top} to {size}: {largest.source} cosigned a checkpoint "
                f"of {top} entries, this copy has {size}"
            )
        else:
            problems.append(
                f"rolled back from {top} to {size} (or never caught up): {largest.source} "
                f"holds a signed checkpoint of {top} entries, this copy has {size}"
            )
    for w in witnessed:
        if w.checkpoint.size > size or w.checkpoint.size == 0:
            continue
        root = store.root_at(w.checkpoint.size)
        if root != w.checkpoint.root:
            got, want = differing_hex(root, w.checkpoint.root)
            problems.append(
                f"not the signed log: at size {w.checkpoint.size} this copy's root is {got}, "
                f"want {want} ({w.source})"
            )
    return Comparison(tuple(witnessed), tuple(missed), tuple(problems))


def describe(comparison: Comparison) -> list[str]:
    """Return the lines that say what the copy was compared with (for the CLI)."""
    lines = []
    if comparison.compared:
        parts = [f"{w.source} at {w.checkpoint.size}" for w in comparison.compared]
        lines.append("compared with: " + "; ".join(parts))
    else:
        lines.append("compared with: nothing (no witness state and no party reached)")
    if comparison.unreachable:
        lines.append("not compared with: " + "; ".join(comparison.unreachable))
    return lines
