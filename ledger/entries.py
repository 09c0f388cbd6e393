"""Typed ledger entries, their canonical encoding, and their authors' Ed25519 signatures.

Entries hold names, hashes and commitments, never data. Every entry is signed by the author
it names; `verify_entry` checks those signatures against a `KeyRing`.

Encoding, version 1 (integers big-endian; the version is part of both tags):

    entry   = "jointstat-ledger-entry/v1\\n"  || kind (u8) || body || signature(s)
    message = "jointstat-ledger-signed/v1\\n" || kind (u8) || body        (what authors sign)

    name = u8 length 1..255 || UTF-8, no control characters  (names, dataset names, query ids)
    text = u16 length 0..4096 || UTF-8, no control characters but tab and newline  (reasons)
    hash = 32 bytes          blob = u32 length 0..2**20 || bytes          sig = 64 bytes
    sigs = u8 count 1..255 || (name || sig)*, sorted by name bytes, names distinct

    1 DatasetRegistered  name dataset, name owner, hash schema, hash policy          | sig
    2 QueryRequested     name query_id, name analyst, blob request, name coordinator
                                                     | sig (analyst, over request), sig
    3 QueryDecided       name query_id, name party, hash request, u8 decision, text reason | sig
    4 ResultCommitted    name query_id, hash request, hash commitment                 | sigs
    5 QueryAborted       name query_id, name party, hash request, text reason          | sig
    6 BudgetCharged      name query_id, hash request, name owner, name dataset, name analyst,
                         u64 epsilon, u64 analyst_budget, u64 budget (micro-epsilon)  | sig

The analyst signs the engine's opaque request bytes exactly as the engine produced them (the
engine's encoding is responsible for its own domain separation); every other signature covers
`message`, so a signature can never be replayed as another kind of entry or as a note. The
coordinating party co-signs each request entry so that the query id, which the analyst's
signature does not cover, is authenticated too: every field of every entry is signed.
Decoding accepts exactly one byte string per entry: lengths, tags, enum values, UTF-8,
signature order and trailing bytes are all checked.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import _keys
from ledger._codec import MAX_REASON_BYTES, MAX_REQUEST_BYTES
from ledger._codec import Reader as _Reader
from ledger._codec import Writer as _Writer
from ledger.errors import FormatError
from ledger.keyring import KeyRing, Role, check_name

__all__ = [
    "ENTRY_TAG",
    "MAX_REASON_BYTES",
    "MAX_REQUEST_BYTES",
    "SIGNED_TAG",
    "AuthorSignature",
    "BudgetCharged",
    "DatasetRegistered",
    "Decision",
    "Entry",
    "QueryAborted",
    "QueryDecided",
    "QueryRequested",
    "ResultCommitted",
    "decode_entry",
    "encode_entry",
    "request_hash",
    "sign_entry",
    "signed_message",
    "verify_entry",
]

ENTRY_TAG = b"jointstat-ledger-entry/v1\n"
SIGNED_TAG = b"jointstat-ledger-signed/v1\n"
_SIG = 64


class Decision(enum.IntEnum):
    """A party's decision on a query request."""

    APPROVED = 1
    REFUSED = 2


def request_hash(request: bytes) -> bytes:
    """Return SHA-256 of an analyst's request bytes, as decisions and results cite it."""
    return hashlib.sha256(request).digest()


def _check_signature(signature: bytes, what: str) -> None:
    if len(signature) not in (0, _SIG):  # empty means "not signed yet"
        raise FormatError(f"{what}: got {len(signature)} bytes, want {_SIG}")


@dataclass(frozen=True)
class DatasetRegistered:
    """An owner registers a dataset by the hashes of its schema and its column policy."""

    KIND: ClassVar[int] = 1
    dataset: str
    owner: str
    schema_hash: bytes
    policy_hash: bytes
    signature: bytes = b""

    def __post_init__(self) -> None:
        self._write_body(_Writer())
        _check_signature(self.signature, "dataset registered signature")

    def _write_body(self, w: _Writer) -> None:
        w.name(self.dataset, "dataset name")
        w.name(self.owner, "owner")
        w.fixed(self.schema_hash, 32, "schema hash")
        w.fixed(self.policy_hash, 32, "policy hash")

    @classmethod
    def _read(cls, r: _Reader) -> DatasetRegistered:
        dataset, owner = r.name("dataset name"), r.name("owner")
        schema, policy = r.take(32, "schema hash"), r.take(32, "policy hash")
        return cls(dataset, owner, schema, policy, r.take(_SIG, "signature"))

    def authors(self) -> tuple[tuple[str, Role, bytes], ...]:
        """Return (name, required role, signature) for each signer."""
        return ((self.owner, Role.PARTY, self.signature),)


@dataclass(frozen=True)
class QueryRequested:
    """An analyst's signed request (opaque engine bytes), put on the ledger by a coordinator.

    The analyst signs the request bytes exactly; the coordinating party signs the whole
    entry, which binds the query id it assigned to that request.
    """

    KIND: ClassVar[int] = 2
    query_id: str
    analyst: str
    request: bytes
    coordinator: str
    signature: bytes = b""
    coordinator_signature: bytes = b""

    def __post_init__(self) -> None:
        self._write_body(_Writer())
        if self.analyst == self.coordinator:
            raise FormatError("query requested: got the analyst as coordinator, want a party")
        _check_signature(self.signature, "query requested analyst signature")
        _check_signature(self.coordinator_signature, "query requested coordinator signature")

    @property
    def request_hash(self) -> bytes:
        """Return SHA-256 of the request bytes."""
        return request_hash(self.request)

    def _write_body(self, w: _Writer) -> None:
        w.name(self.query_id, "query id")
        w.name(self.analyst, "analyst")
        w.blob(self.request, "request")
        w.name(self.coordinator, "coordinator")

    @classmethod
    def _read(cls, r: _Reader) -> QueryRequested:
        query_id, analyst, request = r.name("query id"), r.name("analyst"), r.blob("request")
        coordinator = r.name("coordinator")
        sig, coordinator_sig = r.take(_SIG, "signature"), r.take(_SIG, "signature")
        return cls(query_id, analyst, request, coordinator, sig, coordinator_sig)

    def authors(self) -> tuple[tuple[str, Role, bytes], ...]:
        """Return (name, required role, signature) for each signer."""
        return (
            (self.analyst, Role.ANALYST, self.signature),
            (self.coordinator, Role.PARTY, self.coordinator_signature),
        )


@dataclass(frozen=True)
class QueryDecided:
    """A party approves or refuses a request; a refusal says why."""

    KIND: ClassVar[int] = 3
    query_id: str
    party: str
    request_hash: bytes
    decision: Decision
    reason: str = ""
    signature: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.decision, Decision):
            raise FormatError(f"decision: got {self.decision!r}, want a Decision")
        if self.decision is Decision.REFUSED and not self.reason:
            raise FormatError("refusal reason: got an empty reason, want the rule refused")
        self._write_body(_Writer())
        _check_signature(self.signature, "query decided signature")

    def _write_body(self, w: _Writer) -> None:
        w.name(self.query_id, "query id")
        w.name(self.party, "party")
        w.fixed(self.request_hash, 32, "request hash")
        w.u8(self.decision.value)
        w.text(self.reason, "reason")

    @classmethod
    def _read(cls, r: _Reader) -> QueryDecided:
        query_id, party, rhash = r.name("query id"), r.name("party"), r.take(32, "request hash")
        value = r.uint(1, "decision")
        if value not in (1, 2):
            raise FormatError(f"entry decision: got {value}, want 1 or 2")
        reason = r.text("reason")
        return cls(query_id, party, rhash, Decision(value), reason, r.take(_SIG, "signature"))

    def authors(self) -> tuple[tuple[str, Role, bytes], ...]:
        """Return (name, required role, signature) for each signer."""
        return ((self.party, Role.PARTY, self.signature),)


@dataclass(frozen=True)
class AuthorSignature:
    """One co-author's signature on a multi-signer entry."""

    author: str
    signature: bytes


@dataclass(frozen=True)
class ResultCommitted:
    """A commitment to a query's result (see `ledger.commitment`), signed by the parties."""

    KIND: ClassVar[int] = 4
    query_id: str
    request_hash: bytes
    commitment: bytes
    signatures: tuple[AuthorSignature, ...] = ()

    def __post_init__(self) -> None:
        self._write_body(_Writer())
        names = [s.author for s in self.signatures]
        if len(names) > 255:
            raise FormatError(f"result signatures: got {len(names)}, want at most 255")
        keys = [n.encode() for n in names]
        if keys != sorted(set(keys)):
            raise FormatError("result signatures: got unsorted or repeated authors")
        for s in self.signatures:
            check_name(s.author, "result signer")
            _check_signature(s.signature, f"result signature by {s.author!r}")

    def _write_body(self, w: _Writer) -> None:
        w.name(self.query_id, "query id")
        w.fixed(self.request_hash, 32, "request hash")
        w.fixed(self.commitment, 32, "commitment")

    @classmethod
    def _read(cls, r: _Reader) -> ResultCommitted:
        query_id, rhash = r.name("query id"), r.take(32, "request hash")
        commitment = r.take(32, "commitment")
        count = r.uint(1, "signature count")
        sigs = [AuthorSignature(r.name("signer"), r.take(_SIG, "signature")) for _ in range(count)]
        return cls(query_id, rhash, commitment, tuple(sigs))

    def authors(self) -> tuple[tuple[str, Role, bytes], ...]:
        """Return (name, required role, signature) for each signer."""
        return tuple((s.author, Role.PARTY, s.signature) for s in self.signatures)


@dataclass(frozen=True)
class QueryAborted:
    """A party aborts a query (crash, timeout, refusal mid-way) and says why."""

    KIND: ClassVar[int] = 5
    query_id: str
    party: str
    request_hash: bytes
    reason: str
    signature: bytes = b""

    def __post_init__(self) -> None:
        if not self.reason:
            raise FormatError("abort reason: got an empty reason, want one")
        self._write_body(_Writer())
        _check_signature(self.signature, "query aborted signature")

    def _write_body(self, w: _Writer) -> None:
        w.name(self.query_id, "query id")
        w.name(self.party, "party")
        w.fixed(self.request_hash, 32, "request hash")
        w.text(self.reason, "reason")

    @classmethod
    def _read(cls, r: _Reader) -> QueryAborted:
        query_id, party, rhash = r.name("query id"), r.name("party"), r.take(32, "request hash")
        return cls(query_id, party, rhash, r.text("reason"), r.take(_SIG, "signature"))

    def authors(self) -> tuple[tuple[str, Role, bytes], ...]:
        """Return (name, required role, signature) for each signer."""
        return ((self.party, Role.PARTY, self.signature),)


@dataclass(frozen=True)
class BudgetCharged:
    """A dataset's owner charges a differentially private query's epsilon to its budget.

    Amounts are integers in millionths of epsilon (exact sums). The charge takes effect in
    ledger order, and only if the query was approved by every party and the effective
    charges before it leave room for it under both budgets stated in the entry (the
    analyst's on this dataset and the dataset's in total): every party recomputes this from
    its copy of the log, so that all reach the same decision (see ``effective_charges``).
    """

    KIND: ClassVar[int] = 6
    query_id: str
    request_hash: bytes
    owner: str
    dataset: str
    analyst: str
    epsilon: int
    analyst_budget: int
    budget: int
    signature: bytes = b""

    def __post_init__(self) -> None:
        for what, value in (
            ("epsilon", self.epsilon),
            ("analyst budget", self.analyst_budget),
            ("budget", self.budget),
        ):
            if not 0 < value < 1 << 63:
                raise FormatError(f"budget charged {what}: got {value}, want 1..2^63-1")
        self._write_body(_Writer())
        _check_signature(self.signature, "budget charged signature")

    def _write_body(self, w: _Writer) -> None:
        w.name(self.query_id, "query id")
        w.fixed(self.request_hash, 32, "request hash")
        w.name(self.owner, "owner")
        w.name(self.dataset, "dataset name")
        w.name(self.analyst, "analyst")
        for value in (self.epsilon, self.analyst_budget, self.budget):
            w.fixed(value.to_bytes(8, "big"), 8, "amount")

    @classmethod
    def _read(cls, r: _Reader) -> BudgetCharged:
        query_id, rhash = r.name("query id"), r.take(32, "request hash")
        owner, dataset, analyst = r.name("owner"), r.name("dataset name"), r.name("analyst")
        epsilon, per_analyst, total = (r.uint(8, "amount") for _ in range(3))
        return cls(
            query_id,
            rhash,
            owner,
            dataset,
            analyst,
            epsilon,
            per_analyst,
            total,
            r.take(_SIG, "signature"),
        )

    def authors(self) -> tuple[tuple[str, Role, bytes], ...]:
        """Return (name, required role, signature) for each signer."""
        return ((self.owner, Role.PARTY, self.signature),)


Entry = (
    DatasetRegistered
    | QueryRequested
    | QueryDecided
    | ResultCommitted
    | QueryAborted
    | BudgetCharged
)
EntryT = TypeVar(
    "EntryT",
    DatasetRegistered,
    QueryRequested,
    QueryDecided,
    ResultCommitted,
    QueryAborted,
    BudgetCharged,
)

_READERS: dict[int, Callable[[_Reader], Entry]] = {
    cls.KIND: cls._read
    for cls in (
        DatasetRegistered,
        QueryRequested,
        QueryDecided,
        ResultCommitted,
        QueryAborted,
        BudgetCharged,
    )
}


def signed_message(entry: Entry, author: str | None = None) -> bytes:
    """Return the bytes `author` signs: the request itself for a QueryRequested's analyst,
    the domain-tagged entry body for everyone else.
    """
    if isinstance(entry, QueryRequested) and author == entry.analyst:
        return entry.request
    w = _Writer()
    entry._write_body(w)
    return SIGNED_TAG + bytes([entry.KIND]) + w.value()


def encode_entry(entry: Entry) -> bytes:
    """Return the canonical bytes of a fully signed entry. Raises FormatError if unsigned."""
    w = _Writer()
    w.parts += [ENTRY_TAG, bytes([entry.KIND])]
    entry._write_body(w)
    if isinstance(entry, ResultCommitted):
        if not entry.signatures:
            raise FormatError("result signatures: got 0, want at least 1")
        w.u8(len(entry.signatures))
        for s in entry.signatures:
            w.name(s.author, "result signer")
            w.fixed(s.signature, _SIG, f"result signature by {s.author!r}")
    else:
        for name, _, signature in entry.authors():
            w.fixed(signature, _SIG, f"{type(entry).__name__} signature by {name!r}")
    return w.value()


def decode_entry(data: bytes) -> Entry:
    """Return the entry encoded by data. Raises FormatError unless data is canonical."""
    if not data.startswith(ENTRY_TAG):
        raise FormatError("entry: got an unknown tag or version, want jointstat-ledger-entry/v1")
    r = _Reader(data, len(ENTRY_TAG))
    kind = r.uint(1, "kind")
    reader = _READERS.get(kind)
    if reader is None:
        raise FormatError(f"entry kind: got {kind}, want 1..{len(_READERS)}")
    entry = reader(r)
    if r.pos != len(data):
        raise FormatError(f"entry: got {len(data) - r.pos} trailing bytes, want none")
    if isinstance(entry, ResultCommitted) and not entry.signatures:
        raise FormatError("result signatures: got 0, want at least 1")
    if encode_entry(entry) != data:  # belt and braces: one encoding per entry
        raise FormatError("entry: got a non-canonical encoding")
    return entry


def sign_entry(entry: EntryT, author: str, private_key: Ed25519PrivateKey | bytes) -> EntryT:
    """Return the entry with `author`'s signature added.

    Requires author to be one of the entry's named authors (any party for ResultCommitted).
    Raises FormatError otherwise.
    """
    key = _keys.private_key(private_key)
    signature = key.sign(signed_message(entry, author))
    if isinstance(entry, QueryRequested):
        if author == entry.analyst:
            return dataclasses.replace(entry, signature=signature)
        if author == entry.coordinator:
            return dataclasses.replace(entry, coordinator_signature=signature)
        raise FormatError(
            f"QueryRequested signer: got {author!r}, want {entry.analyst!r} or "
            f"{entry.coordinator!r}"
        )
    if isinstance(entry, ResultCommitted):
        check_name(author, "result signer")
        sigs: list[AuthorSignature] = [s for s in entry.signatures if s.author != author]
        sigs.append(AuthorSignature(author, signature))
        sigs.sort(key=lambda s: s.author.encode())
        return dataclasses.replace(entry, signatures=tuple(sigs))
    named = entry.authors()[0][0]
    if author != named:
        raise FormatError(f"{type(entry).__name__} signer: got {author!r}, want {named!r}")
    return dataclasses.replace(entry, signature=signature)


def verify_entry(entry: Entry, keyring: KeyRing) -> None:
    """Check every author signature of an entry and that each author has the right role.

    Raises FormatError for an unsigned entry, SignatureError for an unknown author, a wrong
    role or a signature that does not verify.
    """
    what = type(entry).__name__
    authors = entry.authors()
    if not authors:
        raise FormatError(f"{what}: got no signatures, want at least one")
    for name, role, signature in authors:
        if not signature:
            raise FormatError(f"{what}: got no signature by {name!r}, want one")
        keyring.verify(name, role, signed_message(entry, name), signature, what)
