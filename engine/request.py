"""The analyst's signed query request: canonical bytes, signing, verification, freshness.

A request is the UTF-8 JSON object below with sorted keys and no insignificant whitespace,
prefixed by a domain-separation line; the analyst signs exactly these bytes with Ed25519::

    jointstat/query-request/v1\\n{"analyst":"alice","federation":"demo","issued_at":1700000000,
    "nonce":"<32 hex>","result_key":"<X25519 public key, base64>","sql":"SELECT ..."}

``result_key`` is a fresh X25519 key of the analyst: parties encrypt their shares of the
result to it, so only the analyst can recombine the result. The query id is the SHA-256 of
the request bytes. Parties refuse a request whose signature does not verify, whose analyst
is unknown, whose time is outside the federation's window, or whose nonce was seen.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from engine.config import Federation
from engine.errors import AuthError, CapacityError

DOMAIN = b"jointstat/query-request/v1\n"
MAX_REQUEST_BYTES = 80 * 1024
CLOCK_SKEW_SECONDS = 30
_FIELDS = {"analyst", "federation", "issued_at", "nonce", "result_key", "sql"}


@dataclass(frozen=True)
class QueryRequest:
    """The fields of a query request."""

    analyst: str
    federation: str
    sql: str
    nonce: str
    issued_at: int
    result_key: bytes  # analyst's X25519 public key for the sealed result

    def to_bytes(self) -> bytes:
        """Return the canonical signed bytes of this request."""
        body = {
            "analyst": self.analyst,
            "federation": self.federation,
            "issued_at": self.issued_at,
            "nonce": self.nonce,
            "result_key": base64.b64encode(self.result_key).decode(),
            "sql": self.sql,
        }
        return DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SignedRequest:
    """Request bytes and the analyst's Ed25519 signature over them."""

    body: bytes
    signature: bytes

    @property
    def query_id(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:32]


def new_request(
    analyst: str, federation: str, sql: str, result_key: bytes, now: float | None = None
) -> QueryRequest:
    """Return a request with a fresh random nonce, issued now."""
    return QueryRequest(
        analyst=analyst,
        federation=federation,
        sql=sql,
        nonce=secrets.token_hex(16),
        issued_at=int(time.time() if now is None else now),
        result_key=result_key,
    )


def sign(request: QueryRequest, key: ed25519.Ed25519PrivateKey) -> SignedRequest:
    """Return ``request`` signed with the analyst's key."""
    body = request.to_bytes()
    return SignedRequest(body, key.sign(body))


def parse(body: bytes) -> QueryRequest:
    """Parse canonical request bytes; raise AuthError if they are not canonical."""
    if len(body) > MAX_REQUEST_BYTES:
        raise CapacityError(f"request: got {len(body)} bytes, want at most {MAX_REQUEST_BYTES}")
    if not body.startswith(DOMAIN):
        raise AuthError("request: got an unknown format, want jointstat/query-request/v1")
    try:
        fields = json.loads(body[len(DOMAIN) :])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AuthError("request: got invalid JSON, want the canonical request object") from None
    if not isinstance(fields, dict) or set(fields) != _FIELDS:
        raise AuthError(f"request: got other fields, want exactly {', '.join(sorted(_FIELDS))}")
    try:
        request = QueryRequest(
            analyst=_str(fields, "analyst"),
            federation=_str(fields, "federation"),
            sql=_str(fields, "sql"),
            nonce=_str(fields, "nonce"),
            issued_at=int(fields["issued_at"]),
            result_key=base64.b64decode(_str(fields, "result_key"), validate=True),
        )
    except (binascii.Error, TypeError, ValueError):
        raise AuthError("request: got a malformed field, want canonical values") from None
    if request.to_bytes() != body:
        raise AuthError("request: got non-canonical bytes, want the canonical encoding")
    if len(request.result_key) != 32:
        raise AuthError(f"request.result_key: got {len(request.result_key)} bytes, want 32")
    if len(request.nonce) != 32 or any(c not in "0123456789abcdef" for c in request.nonce):
        raise AuthError("request.nonce: got a malformed nonce, want 32 lowercase hex digits")
    return request


def _str(fields: dict[str, object], key: str) -> str:
    value = fields[key]
    if not isinstance(value, str):
        raise TypeError(key)
    return value


def verify(
    signed: SignedRequest, federation: Federation, *, peer_analyst: str | None, now: float
) -> QueryRequest:
    """Verify a signed request and return it.

    ``peer_analyst`` is the analyst named by the TLS client certificate (None when the
    request was relayed by a party). Raises AuthError naming the failed check.
    """
    request = parse(signed.body)
    if request.federation != federation.name:
        raise AuthError(f"request.federation: got {request.federation!r}, want {federation.name!r}")
    analyst = federation.analyst(request.analyst)
    if analyst is None:
        raise AuthError(f"analyst: got {request.analyst!r}, want a registered analyst")
    if peer_analyst is not None and peer_analyst != request.analyst:
        raise AuthError(
            f"analyst: request signed as {request.analyst!r} but TLS certificate names "
            f"{peer_analyst!r}, want the same analyst"
        )
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(analyst.signing_public_key).verify(
            signed.signature, signed.body
        )
    except InvalidSignature:
        raise AuthError(
            f"signature: got one that does not verify for analyst {request.analyst!r}, "
            "want an Ed25519 signature by the analyst's registered key"
        ) from None
    age = now - request.issued_at
    window = federation.max_request_age_seconds
    if age > window or age < -CLOCK_SKEW_SECONDS:
        raise AuthError(
            f"request.issued_at: got {age:.0f} s old, want between -{CLOCK_SKEW_SECONDS} and "
            f"{window} s (check the analyst's clock)"
        )
    return request
