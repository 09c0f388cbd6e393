"""Every section of the conformance vectors is either checked by a test or out of scope,
with the reason (instead of skipped stubs).

A new section in tests/ledger/data/merkle_vectors.json fails this test until a test reads
it or it is listed below; a listed item that the file no longer has fails it too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HERE = Path(__file__).parent

OUT_OF_SCOPE: dict[tuple[str, ...], str] = {
    ("tlog_tiles_paths",): "C2SP tlog-tiles paths and partial-tile widths: the ledger serves "
    "proofs from SQLite, not from static tiles",
    ("cosignature_v1", "mldsa44_subtree_message_selfgenerated"): "ML-DSA-44 subtree/v1 "
    "cosignatures: the federation uses Ed25519 cosignature/v1",
    ("transparency_dev_probes", "also_available_not_inlined"): "subtree inclusion and "
    "consistency probe files (MTC subtrees) are listed, not copied; the inlined MTC digests "
    "are checked in test_ledger_merkle",
}


def _test_sources() -> str:
    return "\n".join(
        p.read_text(encoding="utf-8")
        for p in sorted(HERE.glob("test_*.py"))
        if p.name != Path(__file__).name
    )


def test_every_section_is_checked_or_out_of_scope(vectors: dict[str, Any]) -> None:
    sources = _test_sources()
    whole = {path[0] for path in OUT_OF_SCOPE if len(path) == 1}
    unread = [
        name
        for name in vectors
        if not name.startswith("_") and name not in whole and f'"{name}"' not in sources
    ]
    assert unread == [], f"sections no test reads and not listed out of scope: {unread}"


def test_what_is_out_of_scope_is_in_the_vectors(vectors: dict[str, Any]) -> None:
    for path, reason in OUT_OF_SCOPE.items():
        node: Any = vectors
        for key in path:
            assert isinstance(node, dict) and key in node, f"{'.'.join(path)} ({reason})"
            node = node[key]
