"""Keys and certificates of a federation: a CA, TLS certificates, Ed25519 signing keys.

TLS keys are ECDSA P-256 (supported by gRPC and Python's ssl); certificates carry the
subject common name ``party:<name>`` or ``analyst:<name>`` so that a server can tell the
role of an authenticated peer. A party certificate also names the party in its DNS
subject alternative names (the name clients verify) and ``MPyC party <index>`` (the name
MPyC's TLS links verify).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from engine.errors import ConfigError

_VALIDITY = dt.timedelta(days=3650)
PARTY_PREFIX = "party:"
ANALYST_PREFIX = "analyst:"


def mpc_host_name(index: int) -> str:
    """Return the TLS name MPyC verifies for the party at ``index`` (0-based)."""
    return f"MPyC party {index}"


@dataclass(frozen=True)
class IssuedCertificate:
    """A private key and the certificate the CA issued for it, both PEM-encoded."""

    key_pem: bytes
    certificate_pem: bytes


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _private_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def new_ca(federation: str) -> IssuedCertificate:
    """Return a new self-signed CA for the federation named ``federation``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"jointstat CA {federation}")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return IssuedCertificate(_private_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def party_names(party: str, index: int) -> list[str]:
    """Return the DNS names a party certificate carries: its name and its MPyC name."""
    return [party, mpc_host_name(index)]


def issue(
    ca: IssuedCertificate,
    common_name: str,
    dns_names: list[str],
    *,
    server: bool,
) -> IssuedCertificate:
    """Return a new key and a certificate for it signed by ``ca``.

    ``server`` certificates may serve TLS (and also act as clients, as parties do);
    the others are client-only (analysts).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = certify(ca, key.public_key(), common_name, dns_names, server=server)
    return IssuedCertificate(_private_pem(key), certificate)


def certify(
    ca: IssuedCertificate,
    public_key: ec.EllipticCurvePublicKey,
    common_name: str,
    dns_names: list[str],
    *,
    server: bool,
) -> bytes:
    """Return a PEM certificate for ``public_key`` signed by ``ca``, as :func:`issue` does.

    Used for a key the CA never sees (a key request). Raises ConfigError if the CA key
    is not an ECDSA key.
    """
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.certificate_pem)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"CA key: got {type(ca_key).__name__}, want an ECDSA key")
    now = _now()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def load_ca(directory: Path) -> IssuedCertificate:
    """Load the CA kept in ``directory`` (``ca.key`` and ``ca.crt``, as init writes them).

    Raises ConfigError when either file is missing.
    """
    return IssuedCertificate(
        read_pem(directory / "ca.key", "CA key"), read_pem(directory / "ca.crt", "CA certificate")
    )


def new_signing_key() -> ed25519.Ed25519PrivateKey:
    """Return a new Ed25519 signing key."""
    return ed25519.Ed25519PrivateKey.generate()


def signing_key_pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    """Return ``key`` as unencrypted PKCS#8 PEM."""
    return _private_pem(key)


def public_key_bytes(key: ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey) -> bytes:
    """Return the raw 32-byte Ed25519 public key of ``key``."""
    public = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_signing_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """Load an Ed25519 private key from a PEM file.

    Raises ConfigError when the file is missing or holds another kind of key.
    """
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(f"signing key: got no file at {path}, want an Ed25519 PEM key") from None
    except OSError as exc:
        raise ConfigError(
            f"signing key: cannot read {path} ({exc.strerror}), want an Ed25519 PEM key"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"signing key {path}: got unreadable PEM ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"signing key {path}: got {type(key).__name__}, want Ed25519")
    return key


def read_pem(path: Path, what: str) -> bytes:
    """Return the bytes of a PEM file, raising ConfigError naming ``what`` if absent."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(f"{what}: got no file at {path}, want a PEM file") from None
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path} ({exc.strerror}), want a PEM file") from None


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def peer_common_name(certificate_pem: bytes) -> str:
    """Return the subject common name of a PEM certificate ('' if it has none)."""
    cert = x509.load_pem_x509_certificate(certificate_pem)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else value.decode()
