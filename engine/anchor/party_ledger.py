"""A party's side of the ledger: its verified mirror, its witness, and what it signs.

Every party keeps a full copy of the log (``state/ledger.sqlite``) extended only with
entries it has checked (signatures, canonical encoding, and a root it recomputes itself),
storing only checkpoints a quorum cosigned (the sequencer's log-signed note of a batch is
checked, not kept: an auditor reading the mirror never sees a checkpoint below the
quorum), and a witness (``state/witness.sqlite``) that cosigns a checkpoint only if it extends the
last one it cosigned. The sequencer's own copy is the log itself.

Before touching data for a query, a party checks that the request and its own approval are
in its mirror; before running an MPC job, that the job's queries come in ledger order.

All methods block (SQLite with full sync): call them from a worker thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.anchor import keys
from engine.anchor.budget import MICRO, BudgetBook, micro
from engine.catalog import DatasetInfo
from engine.config import PartyConfig
from engine.errors import PeerError, PolicyError
from engine.plan import Charge
from ledger import (
    BudgetCharged,
    CheckedBatch,
    ConflictError,
    DatasetRegistered,
    Decision,
    Entry,
    LedgerError,
    LedgerStore,
    Mirror,
    ProofError,
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
from ledger.outcomes import OpenQuery, QueryOutcomes

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
        # One log verifier for the mirror, the witness and the quorum: each checks a
        # checkpoint's log signature, and a verifier checks a given signature once.
        log_key = self.quorum.log
        self.witness = Witness(
            config.name, signing_key, config.state_dir / "witness.sqlite", log=log_key
        )
        self._mirror = Mirror(self.store, self.keyring, log_key)
        self._lock = threading.Lock()
        self._requests: dict[str, set[int]] = {}  # query id -> indices of its request entries
        self._approved: set[tuple[str, str]] = set()  # (query id, party) approvals anchored
        self._registered: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        self._outcomes = QueryOutcomes()  # which requests have ended (results, refusal, abort)
        self._indexed = 0  # entries below this index are indexed (each exactly once)
        self._last_executed: dict[str, int] = {}  # MPC lane -> last request index run
        self._kept_note = ""
        self.budgets = BudgetBook(len(federation.parties))
        # The witness cosigns in its own thread while the mirror writes (see cosign).
        self._witness_pool = ThreadPoolExecutor(1, thread_name_prefix=f"witness-{self.name}")
        self.index_entries(self.store.iter_entries())

    # ------------------------------------------------------------------ reading

    def index_entries(self, entries: Iterable[tuple[int, bytes]]) -> None:
        """Remember requests, approvals and registrations among stored entries."""
        self.index_decoded((index, decode_entry(data)) for index, data in entries)

    def index_decoded(self, entries: Iterable[tuple[int, Entry]]) -> None:
        """Remember requests, approvals and registrations among decoded stored entries."""
        with self._lock:
            for index, entry in entries:
                self._index(index, entry)

    def _index(self, index: int, entry: Entry) -> None:
        if index < self._indexed:
            return  # the sequencer indexes its log at append, then again at its own cosign
        self._indexed = index + 1
        self._outcomes.add(index, entry)
        if isinstance(entry, QueryRequested):
            self._requests.setdefault(entry.query_id, set()).add(index)
            self.budgets.add(entry)
        elif isinstance(entry, QueryDecided):
            if entry.decision is Decision.APPROVED:
                self._approved.add((entry.query_id, entry.party))
            self.budgets.add(entry)
        elif isinstance(entry, BudgetCharged):
            self.budgets.add(entry)
        elif isinstance(entry, DatasetRegistered):
            self._registered[(entry.owner, entry.dataset)] = (entry.schema_hash, entry.policy_hash)

    def registered(self, owner: str, dataset: str) -> tuple[bytes, bytes] | None:
        """Return the (schema, policy) hashes last registered for a dataset, if any."""
        with self._lock:
            return self._registered.get((owner, dataset))

    def is_open(self, query_id: str) -> bool:
        """Return whether the query's latest request is on this copy and nothing ended it."""
        with self._lock:
            return self._outcomes.is_open(query_id)

    def query_state(self, query_id: str) -> str:
        """Return "absent" (no request on this copy), "open" or "ended"."""
        with self._lock:
            if query_id not in self._requests:
                return "absent"
            return "open" if self._outcomes.is_open(query_id) else "ended"

    def open_queries(self) -> list[OpenQuery]:
        """Return the requests on this copy that no result, refusal or abort has ended."""
        with self._lock:
            return self._outcomes.open_queries()

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

    def check_budget(self, analyst: str, charges: Sequence[Charge]) -> None:
        """Raise PolicyError if a dp query would overspend a budget, as the log says now
        (Prepare's early check; queries still in flight are not counted yet)."""
        with self._lock:
            for charge in charges:
                self._check_room(charge, analyst, micro(charge.epsilon))

    def _check_room(self, charge: Charge, analyst: str, wanted: int) -> None:
        for who, limit, spent in (
            (
                f"analyst {analyst}",
                charge.analyst_budget,
                self.budgets.spent(charge.owner, charge.dataset, analyst),
            ),
            ("all analysts", charge.budget, self.budgets.spent(charge.owner, charge.dataset)),
        ):
            left = micro(limit) - spent
            if wanted > left:
                raise PolicyError(
                    f"budget: {who} on {charge.owner}.{charge.dataset} has "
                    f"{max(left, 0) / MICRO:.6g} of {limit:g} epsilon left, want "
                    f"{wanted / MICRO:.6g} (release mode dp)"
                )

    def check_charged(self, query_id: str, analyst: str, charges: Sequence[Charge]) -> None:
        """Raise PolicyError unless every charge of a dp query is on the log and took effect.

        The log's order decides between concurrent queries (engine.anchor.budget).
        """
        with self._lock:
            found = self.budgets.charges(query_id)
            for charge in charges:
                match = [
                    fits
                    for entry, fits in found
                    if (entry.owner, entry.dataset) == (charge.owner, charge.dataset)
                ]
                if not match:
                    raise PeerError(
                        f"ledger: query {query_id} has no budget charge for "
                        f"{charge.owner}.{charge.dataset} in {self.name}'s mirror"
                    )
                if not match[0]:
                    raise PolicyError(
                        f"budget: the charge of query {query_id} on {charge.owner}."
                        f"{charge.dataset} did not take effect: earlier queries on the ledger "
                        f"spent the budget of analyst {analyst} or of the dataset (release "
                        "mode dp)"
                    )

    def remaining(self, owner: str, dataset: str, analyst: str | None = None) -> int:
        """Return the micro-epsilon spent on a dataset, by one analyst or by all."""
        with self._lock:
            return self.budgets.spent(owner, dataset, analyst)

    def charge(self, query_id: str, request: bytes, analyst: str, charge: Charge) -> BudgetCharged:
        """Return this owner's signed charge of a dp query to one of its datasets."""
        entry = BudgetCharged(
            query_id,
            ledger_request_hash(request),
            charge.owner,
            charge.dataset,
            analyst,
            micro(charge.epsilon),
            micro(charge.analyst_budget),
            micro(charge.budget),
        )
        return sign_entry(entry, self.name, self._key)

    def check_order(self, indices: Sequence[int], lane: str = "small") -> None:
        """Raise PeerError unless these request indices follow every job run before in the
        same MPC lane, in order (each lane runs its jobs in ledger order; see
        engine.daemon.lanes)."""
        with self._lock:
            previous = self._last_executed.get(lane, -1)
            for index in indices:
                if index <= previous:
                    raise PeerError(
                        f"ledger order ({lane} lane): got a job with request {index} after "
                        f"{previous}, want MPC jobs in the order of their requests on the ledger"
                    )
                previous = index
            self._last_executed[lane] = previous

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

        Every check of the entries and of the checkpoint is done before anything is
        written; then the mirror's transaction and the witness's run side by side (two
        databases, so the two syncs to disk overlap), and the cosignature is returned only
        once both are durable. ``cosigned_note`` (the last checkpoint a quorum cosigned) is
        verified and stored in the mirror's transaction.
        """
        with self._lock:
            if from_size != self.store.size:
                self._keep_cosigned(cosigned_note)
                return CosignOutcome("", self.store.size, self._witness_size())
            kept = self._cosigned_to_keep(cosigned_note)
            batch = self._mirror.check(entries, note) if entries else None
            if apply_only:  # catching up: the note may be one a quorum cosigned already
                self._write(batch, kept, from_size, keep_note=self._meets_quorum(note))
                return CosignOutcome("", self.store.size, self._witness_size())
            # Everything is checked: the witness cosigns while the mirror writes.
            witness = self._witness_pool.submit(self._witness_cosign, note, old_size, proof)
            try:
                self._write(batch, kept, from_size)
            finally:
                line, conflict = witness.result()  # raises what the witness refused
            if conflict is not None:
                return CosignOutcome("", self.store.size, conflict)
            return CosignOutcome(line, self.store.size, self._witness_size())

    def _write(
        self, batch: CheckedBatch | None, kept: list[str], from_size: int, keep_note: bool = False
    ) -> None:
        """Write a checked batch and a verified cosigned note to the mirror; index it.

        The batch's own checkpoint is stored only with ``keep_note`` (one a quorum
        cosigned): the mirror keeps no checkpoint below the quorum, so that an auditor
        reading it never takes the log's signature alone for the ledger's.
        """
        if batch is not None:
            self._mirror.store_batch(batch, checkpoints=kept, keep_note=keep_note)
            for index, entry in enumerate(batch.entries, from_size):
                self._index(index, entry)
        elif kept:
            self.store.store_checkpoints(kept)
        if kept:
            self._kept_note = kept[0]

    def _cosigned_to_keep(self, note: str) -> list[str]:
        """Return ``[note]`` if it is a checkpoint a quorum cosigned, not yet kept, whose
        entries this mirror holds; else ``[]`` (a bad note is logged, not raised)."""
        if not note or note == self._kept_note:
            return []
        try:
            checkpoint = self.quorum.verify(note)
            if checkpoint.size > self.store.size:
                return []
            if self.store.root_at(checkpoint.size) != checkpoint.root:
                raise ProofError(f"checkpoint {checkpoint.size}: root differs from the mirror's")
        except LedgerError as exc:
            self._kept_note = note
            log.warning("ledger: cosigned checkpoint not kept: %s", exc)
            return []
        return [note]

    def _meets_quorum(self, note: str) -> bool:
        try:
            self.quorum.verify(note)
        except LedgerError:
            return False
        return True

    def latest_cosigned(self) -> str:
        """Return the largest checkpoint in this party's store that a quorum cosigned ("" if
        none): what this party answers GetCheckpoint with."""
        for _, note in self.store.iter_checkpoints(newest_first=True):
            if self._meets_quorum(note):
                return note
        return ""

    def _keep_cosigned(self, note: str) -> None:
        """Store a checkpoint a quorum cosigned, if this mirror holds its entries."""
        kept = self._cosigned_to_keep(note)
        if not kept:
            return
        try:
            self.store.store_checkpoints(kept)
            self._kept_note = note
        except LedgerError as exc:
            log.warning("ledger: cosigned checkpoint not kept: %s", exc)

    def cosign_own(
        self, note: str, old_size: int, proof: Sequence[bytes], new: Iterable[tuple[int, Entry]]
    ) -> CosignOutcome:
        """Cosign the sequencer's own checkpoint (its store is the log itself), whose new
        entries are ``new`` (index, entry)."""
        self.index_decoded(new)
        with self._lock:
            return self._cosign(note, old_size, proof)

    def _cosign(self, note: str, old_size: int, proof: Sequence[bytes]) -> CosignOutcome:
        line, conflict = self._witness_cosign(note, old_size, proof)
        if conflict is not None:
            return CosignOutcome("", self.store.size, conflict)
        return CosignOutcome(line, self.store.size, self._witness_size())

    def _witness_cosign(
        self, note: str, old_size: int, proof: Sequence[bytes]
    ) -> tuple[str, int | None]:
        """Return the witness's cosignature line, or ("", its size) when ``old_size`` is
        not the size it last cosigned. Raises LedgerError for anything it refuses."""
        try:
            return self.witness.cosign(note, old_size, proof), None
        except ConflictError as exc:
            return "", exc.latest_size

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
        self._witness_pool.shutdown()
        try:
            self.store.close()
        except LedgerError:
            log.warning("ledger store of %s did not close cleanly", self.name)
