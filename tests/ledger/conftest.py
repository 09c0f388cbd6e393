"""Shared fixtures for the ledger tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
VECTORS_PATH = HERE / "data" / "merkle_vectors.json"

# Helper modules (ledger_oracle, ledger_fixtures) sit beside the tests; make them importable
# whatever pytest import mode is configured. The repository root goes first so that `ledger`
# is always this checkout's regular package, even where an editable install was made before
# ledger/__init__.py existed (its finder then maps `ledger` to a namespace package).
for _path in (HERE, HERE.parent.parent):
    if str(_path) in sys.path:
        sys.path.remove(str(_path))
    sys.path.insert(0, str(_path))


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    """Return the conformance vectors (tests/ledger/data/merkle_vectors.json)."""
    data: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    return data
