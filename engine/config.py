"""Federation, party and analyst configuration: TOML files loaded into frozen dataclasses.

Three files, documented in README.md ("Configuration"):

- ``federation.toml`` — shared by everyone: the parties (addresses, Ed25519 public keys),
  the analysts, the sequencer, the MPC threshold and timeouts;
- ``party.toml`` — one per agency, private to it: its keys and its datasets with the
  policy of every column;
- ``identity.toml`` — one per analyst: its keys and the party it talks to by default.

Paths inside a file are relative to that file's directory. Unknown keys are rejected and
everything is validated once, at load time; a problem raises :class:`ConfigError` naming
the file, the key, what was found and what was expected.
"""

from __future__ import annotations

import base64
import binascii
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_MIN_GROUP_SIZE = 10_000
MAX_DECIMALS = 9
# Without a federation_address, a party serves the Federation service (party to party) on
# its gRPC address's port + 200: the Analyst service and the Federation service listen on
# two ports so that each has its own message size limit (engine.daemon.grpc_options).
FEDERATION_PORT_OFFSET = 200


class ColumnPolicy(StrEnum):
    """How a dataset column may be used in a query."""

    JOIN_KEY = "join_key"  # only to link records across agencies; never output or filtered
    GROUP_BY = "group_by"  # may label a released group, be filtered on and be aggregated
    AGGREGATE = "aggregate"  # only inside aggregates and WHERE predicates
    HIDDEN = "hidden"  # never usable


@dataclass(frozen=True)
class PartyInfo:
    """A party as every member of the federation knows it."""

    name: str
    index: int
    host: str
    port: int
    mpc_host: str
    mpc_port: int
    signing_public_key: bytes
    federation_host: str = ""  # the Federation service (party to party); see load_federation
    federation_port: int = 0

    @property
    def address(self) -> str:
        """The gRPC address analysts (and auditors) call: the Analyst service."""
        return f"{self.host}:{self.port}"

    @property
    def federation_address(self) -> str:
        """The gRPC address the other parties call: the Federation service."""
        return f"{self.federation_host}:{self.federation_port}"


@dataclass(frozen=True)
class AnalystInfo:
    """An analyst registered in the federation."""

    name: str
    signing_public_key: bytes


@dataclass(frozen=True)
class Federation:
    """The shared federation description (``federation.toml``)."""

    name: str
    directory: Path
    ca_certificate: Path
    parties: tuple[PartyInfo, ...]
    analysts: tuple[AnalystInfo, ...]
    sequencer: str
    threshold: int
    max_request_age_seconds: int
    query_timeout_seconds: float
    log_public_key: bytes  # the sequencer's Ed25519 key for checkpoints
    ledger_quorum: int  # k: cosignatures a checkpoint needs
    ledger: bool  # anchor every query on the ledger (off only for benchmarks)

    @property
    def log_origin(self) -> str:
        """Return the ledger's checkpoint origin line."""
        return f"jointstat/{self.name}"

    def party(self, name: str) -> PartyInfo:
        """Return the party called ``name``; raise ConfigError if there is none."""
        for party in self.parties:
            if party.name == name:
                return party
        known = ", ".join(p.name for p in self.parties)
        raise ConfigError(f"party: got {name!r}, want one of {known}")

    def analyst(self, name: str) -> AnalystInfo | None:
        """Return the analyst called ``name``, or None if it is not registered."""
        for analyst in self.analysts:
            if analyst.name == name:
                return analyst
        return None


@dataclass(frozen=True)
class ColumnConfig:
    """The declared policy of one dataset column."""

    name: str
    policy: ColumnPolicy
    decimals: int | None  # fixed-point decimals for non-integer numeric columns
    # join_key only: may a join reveal to this owner which of its rows matched? jointstat's
    # join never does (hidden membership), so both settings are honoured.
    reveal_membership: bool = False


@dataclass(frozen=True)
class DatasetConfig:
    """A dataset an agency offers: its file, its column policies and who may query it."""

    name: str
    file: Path
    format: str  # "csv" or "parquet"
    columns: tuple[ColumnConfig, ...]
    min_group_size: int
    analysts: tuple[str, ...]  # "*" grants every analyst of the federation

    def column(self, name: str) -> ColumnConfig | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None


@dataclass(frozen=True)
class PartyConfig:
    """An agency's private configuration (``party.toml``)."""

    path: Path
    name: str
    federation: Federation
    tls_certificate: Path
    tls_key: Path
    signing_key: Path
    state_dir: Path
    datasets: tuple[DatasetConfig, ...]
    log_key: Path | None  # the ledger's checkpoint key; the sequencer's party.toml only

    @property
    def me(self) -> PartyInfo:
        return self.federation.party(self.name)


@dataclass(frozen=True)
class AnalystIdentity:
    """An analyst's identity directory (``identity.toml``)."""

    name: str
    federation: Federation
    tls_certificate: Path
    tls_key: Path
    signing_key: Path
    default_party: str


# --------------------------------------------------------------------------- helpers


class _Table:
    """A TOML table being read: tracks used keys so that unknown ones are rejected."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def get(self, key: str, kind: type, default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise ConfigError(f"{self.where}: got no key {key!r}, want one")
            return default
        value = self.data[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            raise ConfigError(
                f"{self.where}.{key}: got {type(value).__name__}, want {kind.__name__}"
            )
        return value

    def name(self, key: str) -> str:
        value: str = self.get(key, str)
        if not NAME_PATTERN.fullmatch(value):
            raise ConfigError(
                f"{self.where}.{key}: got {value!r}, want a lowercase name matching "
                f"{NAME_PATTERN.pattern}"
            )
        return value

    def table(self, key: str) -> _Table:
        return _Table(self.get(key, dict), f"{self.where}.{key}")

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"{self.where}: got unknown key(s) {', '.join(unknown)}")


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{what}: got no file at {path}, want a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path}: got invalid TOML ({exc})") from None


def _public_key(table: _Table, key: str) -> bytes:
    text = table.get(key, str)
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ConfigError(f"{table.where}.{key}: got invalid base64, want 32 bytes") from None
    if len(raw) != 32:
        raise ConfigError(f"{table.where}.{key}: got {len(raw)} bytes, want 32 (Ed25519)")
    return raw


def _host_port(table: _Table, key: str) -> tuple[str, int]:
    text = table.get(key, str)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{table.where}.{key}: got {text!r}, want host:port")
    return host, int(port)


def _tables(table: _Table, key: str) -> list[_Table]:
    items = table.get(key, list, [])
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigError(f"{table.where}.{key}[{i}]: got {type(item).__name__}, want table")
        out.append(_Table(item, f"{table.where}.{key}[{i}]"))
    return out


# --------------------------------------------------------------------------- federation


def load_federation(path: Path) -> Federation:
    """Load and validate a ``federation.toml``."""
    path = path.resolve()
    root = _Table(_read_toml(path, "federation file"), path.name)
    fed = root.table("federation")
    name = fed.name("name")
    ca = path.parent / fed.get("ca_certificate", str)
    parties: list[PartyInfo] = []
    for i, item in enumerate(_tables(root, "party")):
        host, port = _host_port(item, "address")
        mpc_host, mpc_port = _host_port(item, "mpc_address")
        if item.get("federation_address", str, None) is None:
            fed_host, fed_port = host, port + FEDERATION_PORT_OFFSET
            if fed_port >= 65536:
                raise ConfigError(
                    f"{item.where}.address: got port {port}, want one below "
                    f"{65536 - FEDERATION_PORT_OFFSET} (or a federation_address)"
                )
        else:
            fed_host, fed_port = _host_port(item, "federation_address")
        parties.append(
            PartyInfo(
                name=item.name("name"),
                index=i,
                host=host,
                port=port,
                mpc_host=mpc_host,
                mpc_port=mpc_port,
                signing_public_key=_public_key(item, "signing_public_key"),
                federation_host=fed_host,
                federation_port=fed_port,
            )
        )
        item.finish()
    analysts = []
    for item in _tables(root, "analyst"):
        analysts.append(AnalystInfo(item.name("name"), _public_key(item, "signing_public_key")))
        item.finish()
    if len(parties) < 3:
        raise ConfigError(
            f"{path.name}: got {len(parties)} parties, want at least 3 "
            "(add a compute-only party to a federation of two agencies)"
        )
    for what, names in (
        ("party", [p.name for p in parties]),
        ("analyst", [a.name for a in analysts]),
        ("party and analyst", [p.name for p in parties] + [a.name for a in analysts]),
    ):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"{path.name}: got duplicate {what} name(s) {', '.join(duplicates)}")
    endpoints = [
        *((p.host, p.port) for p in parties),
        *((p.mpc_host, p.mpc_port) for p in parties),
        *((p.federation_host, p.federation_port) for p in parties),
    ]
    if len(set(endpoints)) != len(endpoints):
        raise ConfigError(f"{path.name}: got the same host:port twice, want distinct ports")
    n = len(parties)
    threshold = fed.get("threshold", int, (n - 1) // 2)
    if not 0 < threshold <= (n - 1) // 2:
        raise ConfigError(
            f"{path.name}: federation.threshold got {threshold}, want 1..{(n - 1) // 2} "
            f"(honest majority of {n} parties)"
        )
    sequencer = fed.get("sequencer", str, parties[0].name)
    if sequencer not in {p.name for p in parties}:
        raise ConfigError(f"{path.name}: federation.sequencer got {sequencer!r}, want a party")
    max_age = fed.get("max_request_age_seconds", int, 300)
    timeout = fed.get("query_timeout_seconds", float, 600.0)
    log_public_key = _public_key(fed, "log_public_key")
    # k >= ceil((n + f + 1) / 2) with f = threshold dishonest parties (DESIGN.md, Ledger).
    least = (n + threshold + 2) // 2
    quorum = fed.get("ledger_quorum", int, least)
    if not least <= quorum <= n:
        raise ConfigError(
            f"{path.name}: federation.ledger_quorum got {quorum}, want {least}..{n} "
            f"(to tolerate {threshold} dishonest parties)"
        )
    ledger = fed.get("ledger", bool, True)
    if max_age <= 0 or timeout <= 0:
        raise ConfigError(f"{path.name}: got a non-positive age or timeout, want > 0")
    fed.finish()
    root.finish()
    return Federation(
        name=name,
        directory=path.parent,
        ca_certificate=ca,
        parties=tuple(parties),
        analysts=tuple(analysts),
        sequencer=sequencer,
        threshold=threshold,
        max_request_age_seconds=max_age,
        query_timeout_seconds=timeout,
        log_public_key=log_public_key,
        ledger_quorum=quorum,
        ledger=ledger,
    )


# --------------------------------------------------------------------------- party


def _column(name: str, value: Any, where: str) -> ColumnConfig:
    if isinstance(value, str):
        value = {"policy": value}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: got {type(value).__name__}, want a policy name or table")
    table = _Table(value, where)
    policy_text = table.get("policy", str)
    try:
        policy = ColumnPolicy(policy_text)
    except ValueError:
        allowed = ", ".join(p.value for p in ColumnPolicy)
        raise ConfigError(f"{where}.policy: got {policy_text!r}, want one of {allowed}") from None
    decimals = table.get("decimals", int, None)
    if decimals is not None and not 0 <= decimals <= MAX_DECIMALS:
        raise ConfigError(f"{where}.decimals: got {decimals}, want 0..{MAX_DECIMALS}")
    reveal = table.get("reveal_membership", bool, False)
    if reveal and policy is not ColumnPolicy.JOIN_KEY:
        raise ConfigError(
            f"{where}.reveal_membership: got it on a {policy.value} column, want it on a "
            "join_key column only"
        )
    table.finish()
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{where}: got column name {name!r}, want {NAME_PATTERN.pattern}")
    return ColumnConfig(name, policy, decimals, reveal)


def _dataset(table: _Table, base: Path) -> DatasetConfig:
    name = table.name("name")
    file = base / table.get("file", str)
    fmt = table.get("format", str, file.suffix.lstrip(".").lower())
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"{table.where}.format: got {fmt!r}, want 'csv' or 'parquet'")
    columns_table = table.table("columns")
    columns = tuple(
        _column(col, value, f"{columns_table.where}.{col}")
        for col, value in columns_table.data.items()
    )
    columns_table.used.update(columns_table.data)
    if not columns:
        raise ConfigError(f"{table.where}.columns: got none, want at least one column")
    min_group = table.get("min_group_size", int, 10)
    if not 1 <= min_group <= MAX_MIN_GROUP_SIZE:
        raise ConfigError(
            f"{table.where}.min_group_size: got {min_group}, want 1..{MAX_MIN_GROUP_SIZE}"
        )
    analysts = table.get("analysts", list, ["*"])
    if not all(isinstance(a, str) for a in analysts):
        raise ConfigError(f"{table.where}.analysts: got a non-string, want analyst names")
    table.finish()
    return DatasetConfig(name, file, fmt, columns, min_group, tuple(analysts))


def load_party(path: Path) -> PartyConfig:
    """Load and validate a ``party.toml`` and the federation file it names."""
    path = path.resolve()
    root = _Table(_read_toml(path, "party file"), path.name)
    party = root.table("party")
    base = path.parent
    name = party.name("name")
    federation = load_federation(base / party.get("federation", str))
    federation.party(name)  # must be a member
    datasets = tuple(_dataset(t, base) for t in _tables(root, "dataset"))
    seen = [d.name for d in datasets]
    if len(set(seen)) != len(seen):
        raise ConfigError(f"{path.name}: got duplicate dataset names, want unique names")
    config = PartyConfig(
        path=path,
        name=name,
        federation=federation,
        tls_certificate=base / party.get("tls_certificate", str),
        tls_key=base / party.get("tls_key", str),
        signing_key=base / party.get("signing_key", str),
        state_dir=base / party.get("state_dir", str, "state"),
        datasets=datasets,
        log_key=base / log_key if (log_key := party.get("log_key", str, None)) else None,
    )
    if federation.sequencer == name and config.log_key is None:
        raise ConfigError(
            f"{path.name}: party {name} is the sequencer but has no party.log_key, "
            "want the path of the ledger's checkpoint key"
        )
    party.finish()
    root.finish()
    return config


# --------------------------------------------------------------------------- analyst


def load_identity(directory: Path) -> AnalystIdentity:
    """Load an analyst identity directory (the one holding ``identity.toml``)."""
    path = (directory / "identity.toml").resolve()
    root = _Table(_read_toml(path, "analyst identity"), path.name)
    table = root.table("analyst")
    base = path.parent
    federation = load_federation(base / table.get("federation", str))
    name = table.name("name")
    if federation.analyst(name) is None:
        raise ConfigError(f"{path}: analyst {name!r} is not registered in the federation file")
    identity = AnalystIdentity(
        name=name,
        federation=federation,
        tls_certificate=base / table.get("tls_certificate", str),
        tls_key=base / table.get("tls_key", str),
        signing_key=base / table.get("signing_key", str),
        default_party=table.get("default_party", str, federation.parties[0].name),
    )
    federation.party(identity.default_party)
    table.finish()
    root.finish()
    return identity
