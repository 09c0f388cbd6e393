"""The federation's checkpoint policy: the log's signature plus k of n witness cosignatures.

DESIGN.md asks for k >= ceil((n + f + 1) / 2) to tolerate f dishonest parties without a split
view: two quorums of k then overlap in at least f + 1 witnesses, so at least one honest
witness would have had to cosign both of two inconsistent checkpoints, which it never does.
`min_quorum(n, f)` computes that bound and `Quorum(..., f=f)` enforces it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.checkpoint import Checkpoint
from ledger.errors import QuorumError, SignatureError
from ledger.note import Note, Verifier, open_note


def min_quorum(n: int, f: int) -> int:
    """Return ceil((n + f + 1) / 2), the smallest safe k for n witnesses and f faults."""
    return (n + f + 2) // 2


class Quorum:
    """Accepts a checkpoint when the log signed it and at least k witnesses cosigned it."""

    def __init__(
        self,
        log: Verifier,
        witnesses: Sequence[Verifier],
        k: int,
        *,
        origin: str | None = None,
        f: int | None = None,
    ) -> None:
        """Build a policy. origin defaults to the log key's name.

        Requires 1 <= k <= len(witnesses), distinct witness keys, and with f given,
        k >= min_quorum(n, f). Raises QuorumError otherwise.
        """
        n = len(witnesses)
        if not 1 <= k <= n:
            raise QuorumError(f"quorum k: got {k}, want 1..{n}")
        if f is not None and not (f >= 0 and k >= min_quorum(n, f)):
            raise QuorumError(f"quorum k: got {k}, want >= {min_quorum(n, f)} for n={n}, f={f}")
        ids = {(w.name, w.key_id) for w in witnesses}
        if len(ids) != n or len({w.name for w in witnesses}) != n:
            raise QuorumError("quorum witnesses: got a repeated witness, want n distinct ones")
        if (log.name, log.key_id) in ids:
            raise QuorumError("quorum: got the log key among the witnesses")
        self.log = log
        self.witnesses = tuple(witnesses)
        self.k = k
        self.origin = log.name if origin is None else origin

    @property
    def n(self) -> int:
        """Return the number of witnesses."""
        return len(self.witnesses)

    def open(self, note: str | bytes | Note) -> tuple[Checkpoint, tuple[str, ...]]:
        """Check the log signature and every known cosignature; return the checkpoint and
        the names of the witnesses whose cosignatures verified.

        Does not require k cosignatures. Raises FormatError (malformed, wrong origin) or
        SignatureError (a known signature fails, or no log signature).
        """
        opened = open_note(note, [self.log, *self.witnesses])
        if self.log not in opened.verified:
            raise SignatureError(f"checkpoint: got no signature by the log key {self.log.name}")
        checkpoint = Checkpoint.parse(opened.text)
        if checkpoint.origin != self.origin:
            raise SignatureError(
                f"checkpoint origin: got {checkpoint.origin!r}, want {self.origin!r}"
            )
        names = tuple(v.name for v in opened.verified if v is not self.log)
        return checkpoint, names

    def verify(self, note: str | bytes | Note) -> Checkpoint:
        """Return the checkpoint if the log signed it and >= k witnesses cosigned it.

        Raises FormatError, SignatureError, or QuorumError when too few cosigned.
        """
        return self.verify_cosigned(note)[0]

    def verify_cosigned(self, note: str | bytes | Note) -> tuple[Checkpoint, tuple[str, ...]]:
        """Return what `verify` returns and the names of the witnesses that cosigned.

        Raises as `verify` does.
        """
        checkpoint, names = self.open(note)
        if len(names) < self.k:
            raise QuorumError(
                f"checkpoint {checkpoint.size}: got {len(names)} cosignatures, "
                f"want {self.k} of {self.n}"
            )
        return checkpoint, names
