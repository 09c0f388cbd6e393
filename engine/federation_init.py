"""Create a new federation directory: CA, party and analyst keys, and the config files.

Layout written by :func:`create_federation` (``DIR`` is the target directory); each
directory but the top one belongs to exactly one holder, and :func:`handout` prints who
receives what::

    DIR/federation.toml           public: parties (hosts, ports), analysts, public keys
    DIR/ca.crt                    public: the federation CA's certificate
    DIR/ca/ca.key, ca.crt         the CA: stays with the federation's administrator, offline;
                                  in no member's bundle (``jointstat ca sign`` uses it)
    DIR/<party>/party.toml        private to the agency: its keys and datasets
    DIR/<party>/tls.crt, tls.key  TLS identity (gRPC and MPyC links)
    DIR/<party>/signing.key       Ed25519 key (approvals, ledger cosignatures)
    DIR/<sequencer>/log.key       Ed25519 key signing the ledger's checkpoints
    DIR/analysts/<name>/identity.toml, tls.crt, tls.key, signing.key

A member that made its own keys (:mod:`engine.key_requests`) gets its certificate and
config here but no private key: it adds the keys it kept to its directory.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine import pki
from engine.config import LARGE_LANE_PORT_OFFSET, NAME_PATTERN
from engine.errors import ConfigError
from engine.key_requests import KeyRequest, short_fingerprint, sign_request

DEFAULT_HOST = "127.0.0.1"
HOST_PATTERN = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)

DEFAULT_BASE_PORT = 7300
MPC_PORT_OFFSET = 100


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset to declare in a party's ``party.toml`` at creation time."""

    name: str
    file: str  # relative to the party directory
    columns: dict[str, str | dict[str, object]]
    min_group_size: int = 10
    analysts: tuple[str, ...] = ("*",)
    # other [[dataset]] keys: release, overlap_control, dominance, epsilon_per_query, ...
    options: tuple[tuple[str, object], ...] = ()


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dataset_toml(spec: DatasetSpec) -> str:
    """Return the ``[[dataset]]`` TOML block declaring ``spec``."""
    lines = [
        "[[dataset]]",
        f"name = {_toml_value(spec.name)}",
        f"file = {_toml_value(spec.file)}",
        f"min_group_size = {spec.min_group_size}",
        f"analysts = {_toml_value(list(spec.analysts))}",
        *(f"{key} = {_toml_value(value)}" for key, value in spec.options),
        "[dataset.columns]",
    ]
    lines += [f"{col} = {_toml_value(policy)}" for col, policy in spec.columns.items()]
    return "\n".join(lines) + "\n"


def _check_hosts(hosts: Mapping[str, str], parties: list[str]) -> None:
    for party, host in hosts.items():
        if party not in parties:
            raise ConfigError(f"host: got party {party!r}, want one of {', '.join(parties)}")
        if not HOST_PATTERN.fullmatch(host):
            raise ConfigError(
                f"host of {party}: got {host!r}, want a host name or IPv4 address (no port)"
            )


def _index_requests(
    requests: Sequence[KeyRequest], parties: list[str], analysts: list[str]
) -> dict[tuple[str, str], KeyRequest]:
    by_member: dict[tuple[str, str], KeyRequest] = {}
    for request in requests:
        member = (request.role, request.name)
        if request.name not in (parties if request.role == "party" else analysts):
            raise ConfigError(
                f"key request: got {request.role} {request.name!r}, want a member named in "
                f"--{request.role}s"
            )
        if member in by_member:
            raise ConfigError(f"key request: got two for {request.role} {request.name}, want one")
        by_member[member] = request
    for (role, name), request in by_member.items():
        if role == "party" and (name == parties[0]) != (request.log_public_key is not None):
            want = "one (make it with --sequencer)" if name == parties[0] else "none"
            raise ConfigError(
                f"key request of {name}: got {'a' if request.log_public_key else 'no'} log key, "
                f"want {want}: the first party, {parties[0]}, is the sequencer"
            )
    return by_member


def create_federation(
    directory: Path,
    parties: list[str],
    analysts: list[str],
    *,
    name: str = "federation",
    base_port: int = DEFAULT_BASE_PORT,
    host: str = DEFAULT_HOST,
    hosts: Mapping[str, str] | None = None,
    datasets: dict[str, list[DatasetSpec]] | None = None,
    requests: Sequence[KeyRequest] = (),
) -> Path:
    """Create a federation in ``directory`` and return the path of its federation.toml.

    Party ``i`` listens for gRPC on ``base_port + i`` (the Analyst service), on
    ``base_port + 200 + i`` (the Federation service, see engine.config), for MPyC on
    ``base_port + 100 + i`` and for large MPC jobs on ``base_port + 1100 + i``, at
    ``hosts[party]`` (default ``host``). A member with a key
    request in ``requests`` gets a certificate for its own TLS key and its own public keys
    registered; no private key is made for it. Raises ConfigError for bad names or hosts,
    fewer than 3 parties, a request for no member or with a wrong log key, or a directory
    that already holds a federation (or is a file).
    """
    hosts = dict(hosts or {})
    _check_layout(directory, parties, analysts, name, base_port, hosts)
    by_member = _index_requests(requests, parties, analysts)
    directory.mkdir(parents=True, exist_ok=True)
    datasets = datasets or {}

    ca = pki.new_ca(name)
    pki.write_private(directory / "ca" / "ca.key", ca.key_pem)
    (directory / "ca" / "ca.crt").write_bytes(ca.certificate_pem)
    (directory / "ca.crt").write_bytes(ca.certificate_pem)

    log_public = _log_public_key(directory / parties[0], by_member.get(("party", parties[0])))
    # One secret shared by every party: row identities that overlap control compares
    # across releases (engine.overlap). Never given to analysts.
    overlap_secret = (secrets.token_hex(32) + "\n").encode()
    fed_lines = [
        "# jointstat federation: shared by every party and analyst (see README, Configuration)",
        "[federation]",
        f"name = {_toml_value(name)}",
        'ca_certificate = "ca.crt"',
        f"sequencer = {_toml_value(parties[0])}",
        f"threshold = {(len(parties) - 1) // 2}",
        "max_request_age_seconds = 300",
        "query_timeout_seconds = 600",
        f"log_public_key = {_toml_value(_b64(log_public))}",
        "",
    ]
    for index, party in enumerate(parties):
        pdir = directory / party
        signing_public = _member_keys(
            pdir,
            by_member.get(("party", party)),
            ca,
            index,
            f"{pki.PARTY_PREFIX}{party}",
            pki.party_names(party, index),
        )
        party_host = hosts.get(party, host)
        pki.write_private(pdir / "overlap.key", overlap_secret)
        fed_lines += [
            "[[party]]",
            f"name = {_toml_value(party)}",
            f'address = "{party_host}:{base_port + index}"',
            f'mpc_address = "{party_host}:{base_port + MPC_PORT_OFFSET + index}"',
            f"signing_public_key = {_toml_value(_b64(signing_public))}",
            "",
        ]
        (pdir / "party.toml").write_text(
            _party_toml(party, sequencer=index == 0, datasets=datasets.get(party, []))
        )
    for analyst in analysts:
        adir = directory / "analysts" / analyst
        signing_public = _member_keys(
            adir, by_member.get(("analyst", analyst)), ca, None, f"{pki.ANALYST_PREFIX}{analyst}"
        )
        fed_lines += [
            "[[analyst]]",
            f"name = {_toml_value(analyst)}",
            f"signing_public_key = {_toml_value(_b64(signing_public))}",
            "",
        ]
        (adir / "identity.toml").write_text(_identity_toml(analyst, parties[0]))
    path = directory / "federation.toml"
    path.write_text("\n".join(fed_lines))
    return path


def _check_layout(
    directory: Path,
    parties: list[str],
    analysts: list[str],
    name: str,
    base_port: int,
    hosts: Mapping[str, str],
) -> None:
    """Raise ConfigError for bad or duplicate names, too few parties, a base port that
    leaves no room, bad hosts, or a directory that is a file or holds a federation."""
    for what, names in (("party", parties), ("analyst", analysts), ("federation", [name])):
        for item in names:
            if not NAME_PATTERN.fullmatch(item):
                raise ConfigError(f"{what} name: got {item!r}, want {NAME_PATTERN.pattern}")
        if len(set(names)) != len(names):
            raise ConfigError(f"{what} names: got duplicates, want unique names")
    if len(parties) < 3:
        raise ConfigError(
            f"parties: got {len(parties)}, want at least 3 (add a compute-only party)"
        )
    top = 65535 - MPC_PORT_OFFSET - LARGE_LANE_PORT_OFFSET - len(parties)
    if not 1024 <= base_port <= top:
        raise ConfigError(f"base port: got {base_port}, want 1024..{top}")
    _check_hosts(hosts, parties)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory}: got a file, want a new directory")
    if (directory / "federation.toml").exists():
        raise ConfigError(f"{directory}: got an existing federation.toml, want a new directory")


def _log_public_key(sequencer_dir: Path, request: KeyRequest | None) -> bytes:
    """Return the log's public key: the sequencer's own (from its key request), or a new
    key pair whose private half is written to the sequencer's directory."""
    if request is not None and request.log_public_key is not None:
        return request.log_public_key
    log_key = pki.new_signing_key()
    pki.write_private(sequencer_dir / "log.key", pki.signing_key_pem(log_key))
    return pki.public_key_bytes(log_key)


def _member_keys(
    member_dir: Path,
    request: KeyRequest | None,
    ca: pki.IssuedCertificate,
    index: int | None,
    subject: str,
    names: list[str] | None = None,
) -> bytes:
    """Write a member's TLS certificate (for its own key, when it sent a request; else for
    a new key written beside it, with a new signing key); return its signing public key.
    ``index`` is a party's position (None: an analyst, a client certificate)."""
    member_dir.mkdir(parents=True, exist_ok=True)
    if request is not None:
        (member_dir / "tls.crt").write_bytes(sign_request(request, ca, index))
        return request.signing_public_key
    tls = pki.issue(ca, subject, names or [], server=index is not None)
    pki.write_private(member_dir / "tls.key", tls.key_pem)
    (member_dir / "tls.crt").write_bytes(tls.certificate_pem)
    signing = pki.new_signing_key()
    pki.write_private(member_dir / "signing.key", pki.signing_key_pem(signing))
    return pki.public_key_bytes(signing)


def _party_toml(party: str, *, sequencer: bool, datasets: Sequence[DatasetSpec]) -> str:
    """Return a party's party.toml: its files, and its datasets (or how to declare one)."""
    lines = [
        f"# jointstat party {party}: private to this agency (see README, Configuration)",
        "[party]",
        f"name = {_toml_value(party)}",
        'federation = "../federation.toml"',
        'tls_certificate = "tls.crt"',
        'tls_key = "tls.key"',
        'signing_key = "signing.key"',
        'overlap_key = "overlap.key"  # shared by every party (overlap control)',
        'state_dir = "state"',
        *(['log_key = "log.key"  # the sequencer signs ledger checkpoints'] if sequencer else []),
        "",
    ]
    blocks = [dataset_toml(d) for d in datasets]
    if not blocks:
        lines.append("# No datasets: a compute-only party. Declare datasets as:")
        lines += [
            "# [[dataset]]",
            '# name = "people"',
            '# file = "data/people.csv"',
            "# min_group_size = 10",
            "# [dataset.columns]",
            '# citizen_id = "join_key"',
            '# district = { policy = "group_by", domain = ["North", "South"] }',
            '# income = { policy = "aggregate", decimals = 2 }',
        ]
    return "\n".join(lines) + "\n" + "\n".join(blocks)


def _identity_toml(analyst: str, default_party: str) -> str:
    """Return an analyst's identity.toml."""
    lines = [
        f"# jointstat analyst {analyst}",
        "[analyst]",
        f"name = {_toml_value(analyst)}",
        'federation = "../../federation.toml"',
        'tls_certificate = "tls.crt"',
        'tls_key = "tls.key"',
        'signing_key = "signing.key"',
        f"default_party = {_toml_value(default_party)}",
    ]
    return "\n".join(lines) + "\n"


def handout(
    directory: Path, parties: list[str], analysts: list[str], requests: Sequence[KeyRequest] = ()
) -> str:
    """Return, as text, which files of a new federation go to whom, and how to start.

    Every member receives ``federation.toml`` and ``ca.crt`` (public) and its own
    directory, in the same layout; ``ca/`` (the CA's private key) goes to nobody.
    """
    made = {(r.role, r.name): r for r in requests}
    rows: list[tuple[str, str, str]] = []
    for index, party in enumerate(parties):
        who = f"agency {party}" + (" (sequencer)" if index == 0 else "")
        rows.append((who, f"{party}/", _own_keys(made.get(("party", party)))))
    for analyst in analysts:
        rows.append(
            (
                f"analyst {analyst}",
                f"analysts/{analyst}/",
                _own_keys(made.get(("analyst", analyst))),
            )
        )
    width = max(len(r[0]) for r in rows)
    lines = [
        f"hand out, keeping this layout (paths under {directory}/): each member gets the public "
        "federation.toml and ca.crt and its own directory, which holds its private keys",
        *(f"  {who:<{width}}  federation.toml ca.crt {own}{note}" for who, own, note in rows),
        f"  {'nobody':<{width}}  ca/ holds the CA's private key: keep it offline (it signs "
        "certificates: jointstat ca sign)",
        "then, on each agency's machine (declare its datasets in party.toml first):",
        *(f"  jointstat party serve --config {directory / p}" for p in parties),
    ]
    return "\n".join(lines)


def _own_keys(request: KeyRequest | None) -> str:
    if request is None:
        return ""
    return (
        f"  (made its own keys, request {short_fingerprint(request)}: it adds "
        f"{', '.join(request.key_files)} to this directory)"
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
