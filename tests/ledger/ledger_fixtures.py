"""A small test federation: three parties, one analyst, a log key and witness keys.

Keys are derived from fixed seeds so failures are reproducible; they are test keys only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.commitment import commit_result
from ledger.cosignature import CosignatureSigner
from ledger.entries import (
    DatasetRegistered,
    Decision,
    Entry,
    QueryAborted,
    QueryDecided,
    QueryRequested,
    ResultCommitted,
    sign_entry,
)
from ledger.keyring import KeyRing, Role
from ledger.note import NoteSigner, parse_note
from ledger.quorum import Quorum

ORIGIN = "jointstat.example/federation-test"
PARTIES = ("agency-a", "agency-b", "bureau-c")
ANALYST = "analyst-1"


def seed(label: str) -> bytes:
    return hashlib.sha256(b"jointstat test seed:" + label.encode()).digest()


def key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed(label))


KEYS = {name: key(name) for name in (*PARTIES, ANALYST)}
KEYRING = KeyRing(
    {
        name: (k.public_key(), Role.ANALYST if name == ANALYST else Role.PARTY)
        for name, k in KEYS.items()
    }
)
LOG_SIGNER = NoteSigner(ORIGIN, seed("log"))


def witness_signer(
    party: str, clock: Callable[[], int] = lambda: 1_700_000_000
) -> CosignatureSigner:
    return CosignatureSigner(f"{party}.example/witness", seed(party + "/witness"), clock)


WITNESS_SIGNERS = [witness_signer(p) for p in PARTIES]


def query_entries(n: int) -> list[Entry]:
    """Return the entries of query number n: request, decisions, result (or abort)."""
    qid = f"q-{n:06d}"
    request = f"request {n}: SELECT count(*) FROM t".encode()
    req = QueryRequested(qid, ANALYST, request, coordinator=PARTIES[n % len(PARTIES)])
    req = sign_entry(req, ANALYST, KEYS[ANALYST])
    req = sign_entry(req, req.coordinator, KEYS[req.coordinator])
    rhash = req.request_hash
    out: list[Entry] = [req]
    for party in PARTIES:
        refused = n % 7 == 3 and party == PARTIES[1]
        decision = Decision.REFUSED if refused else Decision.APPROVED
        reason = "column t.income: rule aggregate-only" if refused else ""
        entry = QueryDecided(qid, party, rhash, decision, reason)
        out.append(sign_entry(entry, party, KEYS[party]))
    if n % 7 == 3:
        abort = QueryAborted(qid, PARTIES[0], rhash, "refused by agency-b")
        out.append(sign_entry(abort, PARTIES[0], KEYS[PARTIES[0]]))
        return out
    commitment, _ = commit_result(b"result %d" % n, opening=seed(f"opening {n}"))
    result = ResultCommitted(qid, rhash, commitment)
    for party in PARTIES:
        result = sign_entry(result, party, KEYS[party])
    out.append(result)
    return out


def dataset_entry(name: str, owner: str = PARTIES[0]) -> DatasetRegistered:
    entry = DatasetRegistered(name, owner, seed(name + "/schema"), seed(name + "/policy"))
    return sign_entry(entry, owner, KEYS[owner])


def sample_entries(count: int, first_query: int = 0) -> list[Entry]:
    """Return `count` signed entries of every kind, deterministic."""
    out: list[Entry] = [dataset_entry("census-2024"), dataset_entry("tax-2024", PARTIES[1])]
    n = first_query
    while len(out) < count:
        out.extend(query_entries(n))
        n += 1
    return out[:count]


def make_quorum(k: int = 2) -> Quorum:
    """Return the test federation's quorum: log key plus the three witnesses, k of 3."""
    return Quorum(LOG_SIGNER.verifier, [w.verifier for w in WITNESS_SIGNERS], k)


def log_note(size: int, root: bytes) -> str:
    """Return a checkpoint note for (size, root) signed by the test log key."""
    return sign_checkpoint(Checkpoint(ORIGIN, size, root), LOG_SIGNER)


def cosigned_note(size: int, root: bytes, witnesses: int = 3) -> str:
    """Return a checkpoint note signed by the log and the first `witnesses` witnesses."""
    note = parse_note(log_note(size, root))
    text = note.text
    return note.with_signatures(*(w.cosign(text) for w in WITNESS_SIGNERS[:witnesses])).format()
