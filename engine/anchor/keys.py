"""The federation's ledger keys: log verifier, witnesses, key ring, quorum, and hashes.

Witnesses are the parties, cosigning with their Ed25519 signing keys under their names;
the log key (held by the sequencer) signs checkpoints under the origin
``jointstat/<federation>``. A checkpoint counts once ``ledger_quorum`` parties cosigned it.
"""

from __future__ import annotations

import hashlib
import json

from engine.catalog import DatasetInfo
from engine.config import Federation
from ledger import CosignatureVerifier, KeyRing, NoteVerifier, Quorum, Role


def log_verifier(federation: Federation) -> NoteVerifier:
    """Return the verifier of the sequencer's checkpoint signatures."""
    return NoteVerifier(federation.log_origin, federation.log_public_key)


def quorum(federation: Federation) -> Quorum:
    """Return the federation's checkpoint policy: log signature + k party cosignatures."""
    witnesses = [CosignatureVerifier(p.name, p.signing_public_key) for p in federation.parties]
    return Quorum(log_verifier(federation), witnesses, federation.ledger_quorum)


def keyring(federation: Federation) -> KeyRing:
    """Return every author of ledger entries: parties and analysts with their roles."""
    ring = KeyRing()
    for party in federation.parties:
        ring.add(party.name, party.signing_public_key, Role.PARTY)
    for analyst in federation.analysts:
        ring.add(analyst.name, analyst.signing_public_key, Role.ANALYST)
    return ring


def _digest(body: object) -> bytes:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).digest()


def schema_hash(dataset: DatasetInfo) -> bytes:
    """Return SHA-256 of a dataset's canonical schema: column names and types."""
    return _digest([[c.name, c.type.value] for c in dataset.columns])


def policy_hash(dataset: DatasetInfo) -> bytes:
    """Return SHA-256 of a dataset's canonical policy: uses, decimals, minimum, grants."""
    return _digest(
        {
            "columns": [[c.name, c.policy.value, c.decimals] for c in dataset.columns],
            "min_group_size": dataset.min_group_size,
            "analysts": sorted(dataset.analysts),
        }
    )
