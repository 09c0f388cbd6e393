"""Import boundaries of DESIGN.md, checked on the source tree.

- only engine/mpc/_worker.py imports MPyC;
- ledger/ imports the standard library and cryptography only (never engine);
- generated protobuf code is used only at the edges (daemon, client, wire, launcher).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_EDGES = {"engine/wire.py", "engine/client.py"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _sources(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "_pb2" not in p.name]


def test_only_the_worker_imports_mpyc() -> None:
    users = {
        str(p.relative_to(ROOT))
        for p in _sources("engine")
        if any(n == "mpyc" or n.startswith("mpyc.") for n in _imports(p))
    }
    assert users == {"engine/mpc/_worker.py"}


def test_ledger_imports_only_stdlib_and_cryptography() -> None:
    allowed = set(sys.stdlib_module_names) | {"cryptography", "ledger"}
    for path in _sources("ledger"):
        for name in _imports(path):
            assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_generated_protobuf_code_stays_at_the_edges() -> None:
    for path in _sources("engine"):
        relative = str(path.relative_to(ROOT))
        if any(n.startswith("engine.rpc") for n in _imports(path)):
            assert relative in PROTO_EDGES or relative.startswith("engine/daemon/"), relative
