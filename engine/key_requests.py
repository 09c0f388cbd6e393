"""Key requests: a party or analyst makes its own private keys and the federation's CA signs.

DESIGN.md "Identities and keys": real agencies generate their own keys, so that no private
key is ever made by another agency::

    jointstat keys request DIR --party tax                  # at the agency, on its machine
    jointstat keys request DIR --party registry --sequencer # the sequencer: also log.key
    jointstat keys request DIR --analyst alice
    jointstat init fed --parties registry,tax,social --request tax.toml ...   # at the CA
    jointstat ca sign tax.toml --ca fed/ca --federation fed --out tax-cert    # later: renew

``keys request`` writes the private keys into ``DIR`` (readable by the owner only; they
never leave it) and ``DIR/request.toml``, which is public: the role and name, a PKCS#10
certificate signing request for the TLS key (signed by that key), the Ed25519 public
signing key (and the ledger's checkpoint key for the sequencer), and a signature by each
Ed25519 key over the rest, so that the CA knows the requester holds every private key.
Whoever carries the file cannot alter it unnoticed by the CA, but could replace it whole:
the requester and the CA compare its fingerprint (printed by both commands) by a channel
they trust, such as a phone call.

What a request reveals: public keys and the member's name, nothing else.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from engine import pki
from engine.config import NAME_PATTERN, config_file, load_federation
from engine.errors import ConfigError

REQUEST_FILE = "request.toml"
ROLES = {"party": pki.PARTY_PREFIX, "analyst": pki.ANALYST_PREFIX}
_DOMAIN = b"jointstat key request v1\n"


@dataclass(frozen=True)
class KeyRequest:
    """A verified key request: who asks, and the public keys to certify and register."""

    role: str  # "party" or "analyst"
    name: str
    tls_public_key: ec.EllipticCurvePublicKey
    signing_public_key: bytes  # raw Ed25519
    log_public_key: bytes | None  # raw Ed25519; the sequencer's request only
    fingerprint: str  # hex SHA-256 of the signed body, for an out-of-band check

    @property
    def key_files(self) -> list[str]:
        """Return the private key files the requester keeps (and must add to its directory)."""
        return ["tls.key", "signing.key"] + (["log.key"] if self.log_public_key else [])


def _body(role: str, name: str, csr_pem: str, signing: str, log: str) -> bytes:
    return _DOMAIN + "\n".join([role, name, csr_pem.strip(), signing, log]).encode() + b"\n"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def make_request(directory: Path, role: str, name: str, *, sequencer: bool = False) -> KeyRequest:
    """Create fresh private keys in ``directory`` and write its public ``request.toml``.

    Raises ConfigError for a bad role or name, a sequencer flag on an analyst, or a
    directory that already holds keys (they are never overwritten).
    """
    if role not in ROLES:
        raise ConfigError(f"key request role: got {role!r}, want party or analyst")
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{role} name: got {name!r}, want {NAME_PATTERN.pattern}")
    if sequencer and role != "party":
        raise ConfigError("--sequencer: got it for an analyst, want it for a party only")
    files = ["tls.key", "signing.key", REQUEST_FILE] + (["log.key"] if sequencer else [])
    present = [f for f in files if (directory / f).exists()]
    if present:
        raise ConfigError(
            f"{directory}: got existing {', '.join(present)}, want a directory without keys "
            "(keys are never overwritten)"
        )
    tls_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ROLES[role] + name)])
    csr = (
        x509.CertificateSigningRequestBuilder().subject_name(subject).sign(tls_key, hashes.SHA256())
    )
    csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    signing = pki.new_signing_key()
    log_key = pki.new_signing_key() if sequencer else None
    signing_b64 = _b64(pki.public_key_bytes(signing))
    log_b64 = _b64(pki.public_key_bytes(log_key)) if log_key else ""
    body = _body(role, name, csr_pem, signing_b64, log_b64)
    pki.write_private(
        directory / "tls.key",
        tls_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    pki.write_private(directory / "signing.key", pki.signing_key_pem(signing))
    lines = [
        f"# jointstat key request of {role} {name}: public; send it to the federation's CA",
        f'role = "{role}"',
        f'name = "{name}"',
        f'signing_public_key = "{signing_b64}"',
        f'signature = "{_b64(signing.sign(body))}"',
    ]
    if log_key is not None:
        pki.write_private(directory / "log.key", pki.signing_key_pem(log_key))
        lines += [f'log_public_key = "{log_b64}"', f'log_signature = "{_b64(log_key.sign(body))}"']
    lines.append(f"tls_request = '''\n{csr_pem}'''")
    (directory / REQUEST_FILE).write_text("\n".join(lines) + "\n")
    return read_request(directory / REQUEST_FILE)


def _text(data: dict[str, object], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{where}: got no text key {key!r}, want one")
    return value


def _raw(text: str, where: str, size: int) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ConfigError(f"{where}: got invalid base64, want {size} bytes") from None
    if len(raw) != size:
        raise ConfigError(f"{where}: got {len(raw)} bytes, want {size}")
    return raw


def _check_signature(public: bytes, signature: str, body: bytes, where: str) -> None:
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(_raw(signature, where, 64), body)
    except InvalidSignature:
        raise ConfigError(f"{where}: got a signature that does not verify, want one") from None


def read_request(path: Path) -> KeyRequest:
    """Read and verify a ``request.toml`` (or the directory holding one).

    Raises ConfigError when the file is missing or malformed, a signature does not verify
    (the CSR's, or an Ed25519 key's over the request), or the CSR names another member.
    """
    path = config_file(path, REQUEST_FILE)
    where = f"key request {path}"
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(
            f"{where}: cannot read it ({exc.strerror}), want a request.toml"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: got invalid TOML ({exc})") from None
    known = {"role", "name", "signing_public_key", "signature", "tls_request"}
    known |= {"log_public_key", "log_signature"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: got unknown key(s) {', '.join(unknown)}")
    role, name = _text(data, "role", where), _text(data, "name", where)
    if role not in ROLES or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"{where}: got role {role!r} name {name!r}, want party/analyst and a name"
        )
    csr_pem = _text(data, "tls_request", where)
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError:
        raise ConfigError(f"{where}.tls_request: got unreadable PEM, want a PKCS#10 CSR") from None
    if not csr.is_signature_valid:
        raise ConfigError(f"{where}.tls_request: got a CSR whose signature does not verify")
    names = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [ROLES[role] + name]:
        raise ConfigError(
            f"{where}.tls_request: got subject {csr.subject.rfc4514_string()!r}, "
            f"want CN={ROLES[role]}{name}"
        )
    tls_public = csr.public_key()
    if (
        not isinstance(tls_public, ec.EllipticCurvePublicKey)
        or tls_public.curve.name != "secp256r1"
    ):
        raise ConfigError(f"{where}.tls_request: got another key type, want ECDSA P-256")
    signing_b64 = _text(data, "signing_public_key", where)
    log_b64 = _text(data, "log_public_key", where, "")
    body = _body(role, name, csr_pem, signing_b64, log_b64)
    signing = _raw(signing_b64, f"{where}.signing_public_key", 32)
    _check_signature(signing, _text(data, "signature", where), body, f"{where}.signature")
    log = None
    if log_b64:
        log = _raw(log_b64, f"{where}.log_public_key", 32)
        _check_signature(log, _text(data, "log_signature", where), body, f"{where}.log_signature")
    return KeyRequest(role, name, tls_public, signing, log, hashlib.sha256(body).hexdigest())


def sign_request(request: KeyRequest, ca: pki.IssuedCertificate, mpc_index: int | None) -> bytes:
    """Return the CA's PEM certificate for the request's TLS key.

    ``mpc_index`` is the party's position in the federation (its certificate names its
    MPyC index too); None for an analyst.
    """
    if request.role == "party":
        assert mpc_index is not None
        names = pki.party_names(request.name, mpc_index)
        return pki.certify(
            ca, request.tls_public_key, ROLES["party"] + request.name, names, server=True
        )
    return pki.certify(
        ca, request.tls_public_key, ROLES["analyst"] + request.name, [], server=False
    )


def short_fingerprint(request: KeyRequest) -> str:
    """Return the fingerprint in groups of four hex digits (easy to read out)."""
    digits = request.fingerprint[:32]
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


# --------------------------------------------------------------------------- CLI


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``keys request`` and ``ca sign`` to the CLI."""
    keys = commands.add_parser("keys", help="make your own keys and a request for the CA")
    sub = keys.add_subparsers(dest="keys_command", required=True)
    request = sub.add_parser("request", help="make private keys and a public request.toml")
    request.add_argument("directory", type=Path, help="where to write the keys (kept private)")
    who = request.add_mutually_exclusive_group(required=True)
    who.add_argument("--party", help="the party (agency) name the keys are for")
    who.add_argument("--analyst", help="the analyst name the keys are for")
    request.add_argument(
        "--sequencer",
        action="store_true",
        help="also make the ledger's checkpoint key (log.key): the first party is the sequencer",
    )
    ca = commands.add_parser("ca", help="the federation's CA: sign key requests")
    ca_sub = ca.add_subparsers(dest="ca_command", required=True)
    sign = ca_sub.add_parser("sign", help="issue a TLS certificate for a request.toml")
    sign.add_argument("request", type=Path, help="the request.toml (or its directory)")
    sign.add_argument("--ca", type=Path, required=True, help="the CA directory (ca.key, ca.crt)")
    sign.add_argument(
        "--federation", type=Path, required=True, help="federation.toml (or its directory)"
    )
    sign.add_argument("--out", type=Path, required=True, help="directory to write tls.crt into")


def run(args: argparse.Namespace) -> int:
    """Run ``jointstat keys ...`` or ``jointstat ca ...``; return the exit code."""
    if args.command == "keys":
        role, name = ("party", args.party) if args.party else ("analyst", args.analyst)
        args.directory.mkdir(parents=True, exist_ok=True)
        made = make_request(args.directory, role, name, sequencer=args.sequencer)
        print(f"wrote private keys {', '.join(made.key_files)} to {args.directory} (keep them)")
        print(f"send {args.directory / REQUEST_FILE} to the federation's CA (it is public)")
        print(f"fingerprint: {short_fingerprint(made)}  (read it out to the CA to compare)")
        return 0
    request = read_request(args.request)
    federation = load_federation(args.federation)
    index = None
    registered: bytes | None = None
    if request.role == "party":
        index = federation.party(request.name).index
        registered = federation.party(request.name).signing_public_key
    elif (analyst := federation.analyst(request.name)) is not None:
        registered = analyst.signing_public_key
    certificate = sign_request(request, pki.load_ca(args.ca), index)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tls.crt").write_bytes(certificate)
    print(f"signed {request.role} {request.name}: {args.out / 'tls.crt'}")
    print(f"fingerprint: {short_fingerprint(request)}  (compare it with the requester's)")
    key_line = f'signing_public_key = "{_b64(request.signing_public_key)}"'
    if registered is None:
        print(
            "federation.toml has no such analyst: add this block to every copy of it and "
            f'restart the parties:\n[[analyst]]\nname = "{request.name}"\n{key_line}'
        )
    elif registered != request.signing_public_key:
        block = "[[party]]" if request.role == "party" else "[[analyst]]"
        print(
            f"federation.toml holds another signing key: in the {block} named "
            f"{request.name!r} of every copy of it, set {key_line} and restart the parties"
        )
    return 0
