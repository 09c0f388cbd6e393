"""The one translation point of ledger errors into engine errors (engine.anchor.errors)."""

from __future__ import annotations

import inspect

import pytest

import ledger.errors
from engine.anchor.errors import ENGINE_ERROR_OF, engine_error
from engine.errors import AuthError, DataError, EngineError, PeerError
from ledger.errors import ConflictError, ForkError, LedgerError, QuorumError, StoreError


def _ledger_error_classes() -> set[type[LedgerError]]:
    found: set[type[LedgerError]] = set()
    todo: list[type[LedgerError]] = [LedgerError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo += cls.__subclasses__()
    return found


def test_every_ledger_error_class_is_mapped() -> None:
    declared = {
        cls
        for _, cls in inspect.getmembers(ledger.errors, inspect.isclass)
        if issubclass(cls, LedgerError)
    }
    assert declared <= _ledger_error_classes()
    missing = _ledger_error_classes() - set(ENGINE_ERROR_OF)
    assert not missing, (
        f"ledger errors without an engine error: {sorted(c.__name__ for c in missing)}"
    )
    assert all(issubclass(kind, EngineError) for kind in ENGINE_ERROR_OF.values())


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (QuorumError("checkpoint 7: got 1 cosignature, want 2"), AuthError),
        (ConflictError("old size: got 3, want 5", latest_size=5), PeerError),
        (ForkError("checkpoint 9: root differs", evidence_id=1), PeerError),
        (StoreError("index 12: got beyond the size 10"), DataError),
    ],
)
def test_a_ledger_error_becomes_its_engine_error_with_both_messages(
    error: LedgerError, kind: type[EngineError]
) -> None:
    translated = engine_error(error, "ledger verify")
    assert type(translated) is kind
    assert str(translated) == f"ledger verify: {error}"


def test_a_site_may_name_the_engine_error_it_reports() -> None:
    translated = engine_error(StoreError("read-only"), "ledger: append refused", PeerError)
    assert type(translated) is PeerError
