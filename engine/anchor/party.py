"""A party's side of the ledger: its verified mirror, its witness, and what it signs.

Every party keeps a full copy of the log (``state/ledger.sqlite``) extended only with
entries it has checked (signatures, canonical encoding, and a root it recomputes itself),
and a witness (``state/witness.sqlite``) that cosigns a checkpoint only if it extends the
last one it cosigned. The sequencer's own copy is the log itself.

Before touching data for a query, a party checks that the request and its own approval are
in its mirror; before running an MPC job, that the job's queries come in ledger order.

All methods block (SQLite with full sync): call them from a worker thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.anchor import keys
from engine.catalog import DatasetInfo
from engine.config import PartyConfig
from engine.errors import PeerError
from ledger import (
    ConflictError,
    DatasetRegistered,
    Decision,
    Entry,
    LedgerError,
    LedgerStore,
    Mirror,
    QueryAborted,
    QueryDecided,
    QueryRequested,
    ResultCommitted,
    Witness,
    commit_result,
    decode_entry,
    sign_entry,
)
from ledger import request_hash as ledger_request_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CosignOutcome:
    """A witness's answer: its cosignature line(s), or the sizes it is really at."""

    cosignature: str  # "" when the request's sizes did not match
    mirror_size: int
    witness_size: int


class PartyLedger:
    """One party's mirror of the federation's ledger, its witness, and its signing key."""

    def __init__(self, config: PartyConfig, signing_key: Ed25519PrivateKey) -> None:
        federation = config.federation
        self.name = config.name
        self._key = signing_key
        self.keyring = keys.keyring(federation)
        self.quorum = keys.quorum(federation)
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = LedgerStore(config.state_dir / "ledger.sqlite")
        self.witness = Witness(
            config.name,
            signing_key,
            config.state_dir / "witness.sqlite",
            log=keys.log_verifier(federation),
        )
        self._mirror = Mirror(self.store, self.keyring, keys.log_verifier(federation))
        self._lock = threading.Lock()
        self._requests: dict[str, set[int]] = {}  # query id -> indices of its request entries
        self._approved: set[tuple[str, str]] = set()  # (query id, party) approvals anchored
        self._registered: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        self._last_executed = -1
        self._kept_note = ""
        self.index_entries(self.store.iter_entries())

    # ------------------------------------------------------------------ reading

    def index_entries(self, entries: Iterable[tuple[int, bytes]]) -> None:
        """Remember requests, approvals and registrations among stored entries."""
        with self._lock:
            for index, data in entries:
                self._index(index, decode_entry(data))

    def _index(self, index: int, entry: Entry) -> None:
        if isinstance(entry, QueryRequested):
            self._requests.setdefault(entry.query_id, set()).add(index)
        elif isinstance(entry, QueryDecided) and entry.decision is Decision.APPROVED:
            self._approved.add((entry.query_id, entry.party))
        elif isinstance(entry, DatasetRegistered):
            self._registered[(entry.owner, entry.dataset)] = (entry.schema_hash, entry.policy_hash)

    def registered(self, owner: str, dataset: str) -> tuple[bytes, bytes] | None:
        """Return the (schema, policy) hashes last registered for a dataset, if any."""
        with self._lock:
            return self._registered.get((owner, dataset))

    def check_anchored(self, query_id: str, index: int) -> None:
        """Raise PeerError unless the request at ``index`` and this party's approval are here."""
        with self._lock:
            found = self._requests.get(query_id, set())
            approved = (query_id, self.name) in self._approved
        if index not in found:
            raise PeerError(
                f"ledger: query {query_id} is not anchored at index {index} in {self.name}'s "
                "mirror, want the request on the ledger before any data is touched"
            )
        if not approved:
            raise PeerError(f"ledger: {self.name}'s approval of query {query_id} is not anchored")

    def check_order(self, indices: Sequence[int]) -> None:
        """Raise PeerError unless these request indices follow every job run before, in order."""
        with self._lock:
            previous = self._last_executed
            for index in indices:
                if index <= previous:
                    raise PeerError(
                        f"ledger order: got a job with request {index} after {previous}, want "
                        "MPC jobs in the order of their requests on the ledger"
                    )
                previous = index
            self._last_executed = previous

    # ------------------------------------------------------------------ witnessing

    def cosign(
        self,
        entries: Sequence[bytes],
        from_size: int,
        note: str,
        old_size: int,
        proof: Sequence[bytes],
        *,
        apply_only: bool = False,
        cosigned_note: str = "",
    ) -> CosignOutcome:
        """Append the sequencer's new entries to the mirror after checking them, then cosign.

        ``entries`` continue the log from ``from_size``. Returns the current sizes instead
        of a cosignature when they do not match what the sequencer assumed, or when
        ``apply_only`` (catching up). Raises LedgerError (a forged or reordered entry, a bad
        root, a rollback, a fork).
        """
        with self._lock:
            if cosigned_note:
                self._keep_cosigned(cosigned_note)
            if from_size != self.store.size:
                return CosignOutcome("", self.store.size, self._witness_size())
            if entries:
                self._mirror.apply(entries, note)
                for offset, data in enumerate(entries):
                    self._index(from_size + offset, decode_entry(data))
            if apply_only:
                return CosignOutcome("", self.store.size, self._witness_size())
            return self._cosign(note, old_size, proof)

    def _keep_cosigned(self, note: str) -> None:
        """Store a checkpoint a quorum cosigned, if this mirror holds its entries."""
        if note == self._kept_note:
            return
        self._kept_note = note
        try:
            checkpoint = self.quorum.verify(note)
            if checkpoint.size <= self.store.size:
                self.store.store_checkpoint(note)
        except LedgerError as exc:
            log.warning("ledger: cosigned checkpoint not kept: %s", exc)

    def cosign_own(
        self, note: str, old_size: int, proof: Sequence[bytes], new: Iterable[tuple[int, bytes]]
    ) -> CosignOutcome:
        """Cosign the sequencer's own checkpoint (its store is the log itself)."""
        self.index_entries(new)
        with self._lock:
            return self._cosign(note, old_size, proof)

    def _cosign(self, note: str, old_size: int, proof: Sequence[bytes]) -> CosignOutcome:
        try:
            line = self.witness.cosign(note, old_size, proof)
        except ConflictError as exc:
            return CosignOutcome("", self.store.size, exc.latest_size)
        return CosignOutcome(line, self.store.size, self._witness_size())

    def _witness_size(self) -> int:
        latest = self.witness.latest()
        return 0 if latest is None else latest.size

    # ------------------------------------------------------------------ signing

    def decide(self, query_id: str, request: bytes, refusal: str | None) -> QueryDecided:
        """Return this party's signed decision on a request (refusal reason or None)."""
        entry = QueryDecided(
            query_id,
            self.name,
            ledger_request_hash(request),
            Decision.REFUSED if refusal else Decision.APPROVED,
            (refusal or "")[:4000],
        )
        return sign_entry(entry, self.name, self._key)

    def commit(
        self, query_id: str, request_hash: bytes, result: bytes
    ) -> tuple[ResultCommitted, bytes]:
        """Return this party's signed commitment to its sealed result, and the opening."""
        commitment, opening = commit_result(result)
        entry = ResultCommitted(query_id, request_hash, commitment)
        return sign_entry(entry, self.name, self._key), opening

    def abort(self, query_id: str, request_hash: bytes, reason: str) -> QueryAborted:
        """Return this party's signed record that a query was aborted, and why."""
        entry = QueryAborted(query_id, self.name, request_hash, reason[:4000] or "aborted")
        return sign_entry(entry, self.name, self._key)

    def request_entry(
        self, query_id: str, analyst: str, request: bytes, signature: bytes
    ) -> QueryRequested:
        """Return a request entry coordinated (and co-signed) by this party."""
        entry = QueryRequested(query_id, analyst, request, self.name, signature)
        return sign_entry(entry, self.name, self._key)

    def registrations(self, datasets: Sequence[DatasetInfo]) -> list[DatasetRegistered]:
        """Return signed registrations of this party's datasets (available ones)."""
        out = []
        for dataset in datasets:
            if dataset.owner != self.name or not dataset.available:
                continue
            entry = DatasetRegistered(
                dataset.name, self.name, keys.schema_hash(dataset), keys.policy_hash(dataset)
            )
            out.append(sign_entry(entry, self.name, self._key))
        return out

    def close(self) -> None:
        try:
            self.store.close()
        except LedgerError:
            log.warning("ledger store of %s did not close cleanly", self.name)
