"""The one place where the ledger's errors become the engine's.

The ledger package raises its own tree (:mod:`ledger.errors`); the engine reports
EngineErrors (engine.errors), which the daemons turn into gRPC status codes and the CLI
prints. :data:`ENGINE_ERROR_OF` maps every ledger error class to the engine's class for it
(a test checks that none is missing), and :func:`engine_error` is how engine code crosses
the boundary.
"""

from __future__ import annotations

from engine.errors import AuthError, DataError, EngineError, PeerError
from ledger.errors import (
    CommitmentError,
    ConflictError,
    ForkError,
    FormatError,
    LedgerError,
    ProofError,
    QuorumError,
    SignatureError,
    StoreError,
    WitnessError,
)

ENGINE_ERROR_OF: dict[type[LedgerError], type[EngineError]] = {
    LedgerError: PeerError,
    # What someone sent does not verify: a forged, altered or foreign entry, note or proof.
    FormatError: AuthError,
    ProofError: AuthError,
    SignatureError: AuthError,
    QuorumError: AuthError,
    CommitmentError: AuthError,
    # A witness refuses to cosign: the federation's parties disagree.
    WitnessError: PeerError,
    ConflictError: PeerError,
    ForkError: PeerError,
    # The local SQLite file cannot serve: not a ledger, read-only, out of range.
    StoreError: DataError,
}


def engine_error(exc: LedgerError, what: str, kind: type[EngineError] | None = None) -> EngineError:
    """Return the EngineError for ``exc``: "<what>: <the ledger's message>", of ``kind``
    or else of the class :data:`ENGINE_ERROR_OF` gives its nearest mapped ancestor."""
    if kind is None:
        kind = next(ENGINE_ERROR_OF[c] for c in type(exc).__mro__ if c in ENGINE_ERROR_OF)
    return kind(f"{what}: {exc}")
