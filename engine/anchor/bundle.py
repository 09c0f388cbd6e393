"""The analyst's receipt bundle: proof that a query was anchored and its result committed.

A bundle (JSON, ``jointstat query --receipt FILE``) holds, for one query:

- the ``QueryRequested`` entry with the analyst's signed request, and its C2SP tlog-proof;
- for each party, its ``ResultCommitted`` entry and tlog-proof, the opening of its
  commitment, and the party's sealed result shares that the commitment covers.

:func:`verify_bundle` checks it offline against the federation's public keys and quorum:
every proof against a checkpoint cosigned by a quorum, every signature, and that each
commitment opens to the sealed shares in the bundle. With the analyst's result key (not in
the bundle) the sealed shares open to the result itself, so a bundle plus that key lets an
auditor recompute exactly what the analyst received.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from engine.anchor import keys
from engine.anchor.errors import engine_error
from engine.anchor.queries import QueryReceipts
from engine.config import Federation
from engine.errors import AuthError
from engine.request import parse
from engine.sealing import SealedShares
from ledger import (
    Checkpoint,
    LedgerError,
    QueryRequested,
    Receipt,
    ResultCommitted,
    decode_entry,
    verify_commitment,
    verify_entry,
)

FORMAT = "jointstat-receipt/v1"


@dataclass(frozen=True)
class BundleReport:
    """What a verified bundle proves."""

    query_id: str
    analyst: str
    sql: str
    issued_at: int
    request_index: int
    checkpoint_size: int
    cosigners: tuple[str, ...]
    committed_by: tuple[str, ...]


def make_bundle(
    federation: str, query_id: str, receipts: QueryReceipts, sealed: list[SealedShares]
) -> dict[str, Any]:
    """Return the JSON-ready bundle for a query's receipts and the sealed shares received."""
    by_party = {s.party: s for s in sealed}
    return {
        "format": FORMAT,
        "federation": federation,
        "query_id": query_id,
        "request": {
            "entry": _b64(receipts.request_entry),
            "proof": receipts.request_proof,
        },
        "results": [
            {
                "party": r.party,
                "entry": _b64(r.entry),
                "proof": r.proof,
                "opening": _b64(r.opening),
                "sealed": {
                    "ephemeral_key": _b64(by_party[r.party].ephemeral_key),
                    "ciphertext": _b64(by_party[r.party].ciphertext),
                },
            }
            for r in receipts.results
        ],
    }


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise AuthError(f"receipt bundle {what}: got {type(text).__name__}, want base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise AuthError(f"receipt bundle {what}: got invalid base64") from None


def verify_bundle(bundle: dict[str, Any], federation: Federation) -> BundleReport:
    """Verify a receipt bundle offline; return what it proves. Raises AuthError."""
    if bundle.get("format") != FORMAT:
        raise AuthError(f"receipt bundle: got format {bundle.get('format')!r}, want {FORMAT!r}")
    if bundle.get("federation") != federation.name:
        raise AuthError(
            f"receipt bundle: got federation {bundle.get('federation')!r}, want {federation.name!r}"
        )
    quorum = keys.quorum(federation)
    ring = keys.keyring(federation)
    query_id = bundle.get("query_id")
    try:
        request_bytes = _unb64(bundle["request"]["entry"], "request entry")
        request = decode_entry(request_bytes)
        verify_entry(request, ring)
        if not isinstance(request, QueryRequested) or request.query_id != query_id:
            raise AuthError("receipt bundle: the request entry is not this query's request")
        # Receipts from one round share its checkpoint: check its signatures once.
        checked: dict[str, tuple[Checkpoint, tuple[str, ...]]] = {}

        def included(receipt: Receipt, entry: bytes) -> tuple[Checkpoint, tuple[str, ...]]:
            if receipt.checkpoint not in checked:
                checked[receipt.checkpoint] = quorum.verify_cosigned(receipt.checkpoint)
            receipt.verify_included(entry, checked[receipt.checkpoint][0])
            return checked[receipt.checkpoint]

        request_receipt = Receipt.parse(bundle["request"]["proof"])
        checkpoint, cosigners = included(request_receipt, request_bytes)
        committed = []
        for item in bundle["results"]:
            party = item["party"]
            entry_bytes = _unb64(item["entry"], f"{party} result entry")
            entry = decode_entry(entry_bytes)
            verify_entry(entry, ring)
            if (
                not isinstance(entry, ResultCommitted)
                or entry.query_id != query_id
                or [s.author for s in entry.signatures] != [party]
                or entry.request_hash != request.request_hash
            ):
                raise AuthError(f"receipt bundle: {party}'s result entry is not for this query")
            included(Receipt.parse(item["proof"]), entry_bytes)
            sealed = SealedShares(
                party,
                _unb64(item["sealed"]["ephemeral_key"], f"{party} sealed key"),
                _unb64(item["sealed"]["ciphertext"], f"{party} sealed shares"),
            )
            verify_commitment(
                entry.commitment, sealed.to_bytes(), _unb64(item["opening"], f"{party} opening")
            )
            committed.append(party)
    except (KeyError, TypeError) as exc:
        raise AuthError(f"receipt bundle: got a missing or malformed field ({exc})") from None
    except LedgerError as exc:
        raise engine_error(exc, "receipt bundle: does not verify", AuthError) from None
    missing = {p.name for p in federation.parties} - set(committed)
    if missing:
        raise AuthError(f"receipt bundle: no result commitment by {', '.join(sorted(missing))}")
    fields = parse(request.request)
    return BundleReport(
        query_id=str(query_id),
        analyst=request.analyst,
        sql=fields.sql,
        issued_at=fields.issued_at,
        request_index=request_receipt.index,
        checkpoint_size=checkpoint.size,
        cosigners=cosigners,
        committed_by=tuple(committed),
    )


def dumps(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, indent=2, sort_keys=True) + "\n"
