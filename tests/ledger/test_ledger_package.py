"""Package-level checks: import boundary, public API, documented exception hierarchy."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import ledger
from ledger import errors

LEDGER_DIR = Path(ledger.__file__).parent
ALLOWED_THIRD_PARTY = {"cryptography"}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports stay inside the package
                continue
            assert node.module is not None
            roots.add(node.module.split(".")[0])
    return roots


def test_ledger_imports_only_stdlib_and_cryptography() -> None:
    """DESIGN.md: `ledger` depends on the standard library and `cryptography` only."""
    files = sorted(LEDGER_DIR.glob("*.py"))
    assert len(files) > 10
    for path in files:
        foreign = {
            root
            for root in _imported_roots(path)
            if root not in sys.stdlib_module_names
            and root not in ALLOWED_THIRD_PARTY
            and root != "ledger"
        }
        assert not foreign, f"{path.name} imports {sorted(foreign)}"


def test_the_boundary_check_sees_nested_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import numpy\n    from engine.x import y\n")
    assert _imported_roots(bad) == {"numpy", "engine"}


def test_public_api_is_importable_and_listed() -> None:
    for name in ledger.__all__:
        assert hasattr(ledger, name), name
    assert len(set(ledger.__all__)) == len(ledger.__all__)


def test_every_error_class_is_in_the_documented_hierarchy() -> None:
    doc = ledger.__doc__ or ""
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.LedgerError)
    ]
    assert len(classes) >= 8
    for cls in classes:
        assert cls.__name__ in doc, f"{cls.__name__} missing from the ledger docstring"
        assert cls.__name__ in ledger.__all__
    assert issubclass(errors.QuorumError, errors.SignatureError)
    assert issubclass(errors.ConflictError, errors.WitnessError)
    assert issubclass(errors.ForkError, errors.WitnessError)


def test_the_docstring_example_runs(tmp_path: Path) -> None:
    from ledger_fixtures import KEYRING, KEYS, LOG_SIGNER, PARTIES, dataset_entry, seed

    from ledger import (
        DatasetRegistered,
        LedgerStore,
        Quorum,
        Receipt,
        Sequencer,
        Witness,
        encode_entry,
        sign_entry,
    )

    log_signer = LOG_SIGNER
    witnesses = [
        Witness(
            f"{p}.example/witness",
            seed(p + "/witness"),
            tmp_path / f"{p}.db",
            log=log_signer.verifier,
        )
        for p in PARTIES
    ]
    keyring = KEYRING
    entry = dataset_entry("census")
    assert isinstance(entry, DatasetRegistered)
    entry = sign_entry(entry, "agency-a", KEYS["agency-a"])

    quorum = Quorum(log_signer.verifier, [w.verifier for w in witnesses], k=2)
    seq = Sequencer(LedgerStore(tmp_path / "ledger.db"), log_signer, keyring, quorum)
    batch = seq.append([entry])
    assert seq.collect(witnesses).quorum_met
    text = seq.receipt(batch.first_index).format()
    Receipt.parse(text).verify(encode_entry(entry), quorum)
    report = LedgerStore(tmp_path / "ledger.db").verify(keyring, quorum)
    assert report.ok, (report.first_bad_index, report.problem)
