"""jointstat's tamper-evident ledger: a cosigned, append-only Merkle log of typed entries.

One log per federation, in the form Certificate Transparency and its successors use:

- RFC 9162 (RFC 6962) Merkle trees, inclusion and consistency proofs (`merkle`, `proof`);
- tree heads as C2SP checkpoints (c2sp.org/tlog-checkpoint) in C2SP signed notes
  (c2sp.org/signed-note), signed with Ed25519 by the sequencer (`note`, `checkpoint`);
- witness cosignatures, C2SP `cosignature/v1` (c2sp.org/tlog-cosignature), given only to
  checkpoints consistent with the last one cosigned, following c2sp.org/tlog-witness
  (`cosignature`, `witness`), and a k-of-n policy over them (`quorum`);
- typed, canonically encoded, author-signed entries holding hashes and commitments, never
  data (`entries`, `keyring`, `commitment`);
- SQLite storage with one transaction per batch and a full re-verification (`store`,
  `audit`), a sequencer that batches and gathers cosignatures (`sequencer`), a verified
  mirror for each party (`mirror`);
- receipts as C2SP transparency log proofs (c2sp.org/tlog-proof) that verify offline
  (`receipt`).

It depends on the standard library and `cryptography` only.

Example (tests/ledger/test_ledger_package.py runs the same steps)::

    from ledger import LedgerStore, Quorum, Receipt, Sequencer, encode_entry, sign_entry

    quorum = Quorum(log_signer.verifier, [w.verifier for w in witnesses], k=2)
    seq = Sequencer(LedgerStore("ledger.db"), log_signer, keyring, quorum)
    batch = seq.append([sign_entry(entry, "agency-a", agency_a_key)])
    if seq.collect(witnesses).quorum_met:           # each Witness checks consistency
        text = seq.receipt(batch.first_index).format()
        Receipt.parse(text).verify(encode_entry(entry), quorum)   # offline, anywhere

    report = LedgerStore("ledger.db").verify(keyring, quorum)     # recompute everything
    assert report.ok, (report.first_bad_index, report.problem)

where `log_signer = NoteSigner(origin, log_key)`, each witness is
`Witness(name, witness_key, "witness.db", log=log_signer.verifier)`, and
`keyring = KeyRing({"agency-a": (public_key, Role.PARTY), ...})`.

Exceptions (all messages "what: got X, want Y", never data values)::

    LedgerError
    ├── FormatError        malformed or non-canonical bytes/text: notes, checkpoints,
    │                      entries, receipts, keys, add-checkpoint bodies
    ├── ProofError         a Merkle proof does not verify or cannot be built; a root differs
    ├── SignatureError     a signature fails, an author is unknown or has the wrong role,
    │   │                  or no trusted key signed
    │   └── QuorumError    fewer than k witnesses cosigned; or an invalid quorum policy
    ├── CommitmentError    a result and opening do not match a commitment
    ├── WitnessError       a witness refuses to cosign (rollback, bad request)
    │   ├── ConflictError  old size is not the witness's latest (.latest_size says which)
    │   └── ForkError      inconsistent with the cosigned checkpoint; evidence kept
    │                      (.evidence_id)
    └── StoreError         the SQLite store cannot serve the request
"""

from ledger.audit import VerifyReport, verify_store
from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.commitment import commit_result, verify_commitment
from ledger.cosignature import (
    CosignatureSigner,
    CosignatureVerifier,
    cosignature_timestamp,
    cosigned_message,
    parse_vkey,
)
from ledger.entries import (
    AuthorSignature,
    BudgetCharged,
    DatasetRegistered,
    Decision,
    Entry,
    QueryAborted,
    QueryDecided,
    QueryRequested,
    ResultCommitted,
    decode_entry,
    encode_entry,
    request_hash,
    sign_entry,
    signed_message,
    verify_entry,
)
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
from ledger.keyring import KeyRing, Role
from ledger.merkle import EMPTY_ROOT, CompactRange, MerkleTree, leaf_hash, node_hash
from ledger.mirror import CheckedBatch, Mirror
from ledger.note import (
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    OpenedNote,
    Signer,
    Verifier,
    open_note,
    parse_note,
    sign_note,
)
from ledger.proof import (
    consistency_proof,
    inclusion_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from ledger.quorum import Quorum, min_quorum
from ledger.receipt import Receipt, build_receipt
from ledger.sequencer import Batch, Cosigned, Cosigner, Sequencer
from ledger.store import AppendResult, LedgerStore
from ledger.witness import (
    ForkEvidence,
    Witness,
    format_add_checkpoint,
    parse_add_checkpoint,
    witnessed_checkpoint,
)

__all__ = [
    "EMPTY_ROOT",
    "AppendResult",
    "AuthorSignature",
    "Batch",
    "BudgetCharged",
    "CheckedBatch",
    "Checkpoint",
    "CommitmentError",
    "CompactRange",
    "ConflictError",
    "CosignatureSigner",
    "CosignatureVerifier",
    "Cosigned",
    "Cosigner",
    "DatasetRegistered",
    "Decision",
    "Entry",
    "ForkError",
    "ForkEvidence",
    "FormatError",
    "KeyRing",
    "LedgerError",
    "LedgerStore",
    "MerkleTree",
    "Mirror",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "OpenedNote",
    "ProofError",
    "QueryAborted",
    "QueryDecided",
    "QueryRequested",
    "Quorum",
    "QuorumError",
    "Receipt",
    "ResultCommitted",
    "Role",
    "Sequencer",
    "SignatureError",
    "Signer",
    "StoreError",
    "Verifier",
    "VerifyReport",
    "Witness",
    "WitnessError",
    "build_receipt",
    "commit_result",
    "consistency_proof",
    "cosignature_timestamp",
    "cosigned_message",
    "decode_entry",
    "encode_entry",
    "format_add_checkpoint",
    "inclusion_proof",
    "leaf_hash",
    "min_quorum",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_add_checkpoint",
    "parse_note",
    "parse_vkey",
    "request_hash",
    "root_from_inclusion_proof",
    "sign_checkpoint",
    "sign_entry",
    "sign_note",
    "signed_message",
    "verify_commitment",
    "verify_consistency",
    "verify_entry",
    "verify_inclusion",
    "verify_store",
    "witnessed_checkpoint",
]
