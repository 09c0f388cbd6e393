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
MAX_OVERLAP_MIN_GROUP_SIZE = 100  # overlap control's sketches grow with the minimum (2m - 1)
MAX_DECIMALS = 9
MAX_DOMAIN_LABELS = 100_000  # labels of one group_by column
# Without a federation_address, a party serves the Federation service (party to party) on
# its gRPC address's port + 200: the Analyst service and the Federation service listen on
# two ports so that each has its own message size limit (engine.rpc.options).
FEDERATION_PORT_OFFSET = 200


class ColumnPolicy(StrEnum):
    """How a dataset column may be used in a query."""

    JOIN_KEY = "join_key"  # only to link records across agencies; never output or filtered
    GROUP_BY = "group_by"  # may label a released group, be filtered on and be aggregated
    AGGREGATE = "aggregate"  # only inside aggregates and WHERE predicates
    HIDDEN = "hidden"  # never usable


LARGE_LANE_PORT_OFFSET = 1000  # default mpc_large_address: the MPC port + this


class ReleaseMode(StrEnum):
    """How a dataset's owner lets results over it be released (engine/disclosure docs)."""

    EXACT = "exact"  # exact cells under statistical disclosure control (the default)
    DP = "dp"  # noisy cells under differential privacy, the budget kept on the ledger


@dataclass(frozen=True)
class DomainSpec:
    """Where a group_by column's public labels come from.

    ``values``: the labels listed in the policy; ``range``: the integers ``low..high``;
    ``data``: the column's distinct values, read once at start-up and published as
    catalogue metadata (the owner's deliberate choice to make that set public).
    """

    kind: str  # "values", "range" or "data"
    values: tuple[str | int | float | bool, ...] = ()
    low: int = 0
    high: int = 0


@dataclass(frozen=True)
class Dominance:
    """The (n, k) dominance rule: a SUM or AVG cell whose n largest contributions exceed
    k% of its total (of absolute values) is suppressed (statistics offices' NK rule)."""

    n: int = 1
    k: int = 85


@dataclass(frozen=True)
class PrivacyBudget:
    """A dp dataset's budget: epsilon charged per query, in total and per analyst."""

    epsilon_per_query: float
    budget: float
    analyst_budget: float


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
    mpc_large_host: str = ""  # the large MPC lane's link (engine.daemon.lanes)
    mpc_large_port: int = 0
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

    def mpc_link(self, lane: str) -> tuple[str, int]:
        """Return the (host, port) of this party's MPC link in ``lane`` ("small"/"large")."""
        if lane == "large":
            return self.mpc_large_host, self.mpc_large_port
        return self.mpc_host, self.mpc_port


@dataclass(frozen=True)
class Limits:
    """Bounds on what one query, and one analyst's queries in flight, may cost
    (:mod:`engine.cost`); ``[federation]`` keys of the same names."""

    max_result_groups: int = 100_000
    max_result_cells: int = 1_000_000
    max_secure_operations: int = 1_000_000_000
    large_job_operations: int = 200_000


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
    limits: Limits = Limits()

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
    domain: DomainSpec | None = None  # group_by only (required there)
    bounds: tuple[float, float] | None = None  # declared value range, enforced at load
    order_statistics: bool = False  # may MIN, MAX, MEDIAN, QUANTILE_CONT read it?


@dataclass(frozen=True)
class DatasetConfig:
    """A dataset an agency offers: its file, its column policies and who may query it."""

    name: str
    file: Path
    format: str  # "csv" or "parquet"
    columns: tuple[ColumnConfig, ...]
    min_group_size: int
    analysts: tuple[str, ...]  # "*" grants every analyst of the federation
    release: ReleaseMode = ReleaseMode.EXACT
    overlap_control: bool = True  # exact mode: query-set overlap control
    dominance: Dominance | None = Dominance()  # exact mode: None disables the rule
    budget: PrivacyBudget | None = None  # dp mode only (required there)

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
    # the federation's shared secret for row identities in overlap control (engine.overlap)
    overlap_key: Path | None = None

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


FEDERATION_FILE = "federation.toml"
PARTY_FILE = "party.toml"
IDENTITY_FILE = "identity.toml"


def config_file(path: Path, file_name: str) -> Path:
    """Return the file a command-line path names: ``path`` itself, or ``path/file_name``.

    Every command that takes a config or identity accepts either the file or the
    directory that holds it (``fed/tax`` or ``fed/tax/party.toml``). Nothing is read here:
    a path that is neither is reported by the loader that opens it.
    """
    return path / file_name if path.is_dir() else path


def _read_toml(path: Path, what: str, file_name: str) -> dict[str, Any]:
    want = f"want a {file_name} file or the directory holding it"
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(f"{what}: got no file at {path}, {want}") from None
    except IsADirectoryError:
        raise ConfigError(
            f"{what}: got a directory without {file_name} at {path}, {want}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path} ({exc.strerror}), {want}") from None
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
    """Load and validate a ``federation.toml`` (or the directory holding one).

    Raises ConfigError naming the file, the key, what was found and what was expected.
    """
    path = config_file(path, FEDERATION_FILE).resolve()
    root = _Table(_read_toml(path, "federation file", FEDERATION_FILE), path.name)
    fed = root.table("federation")
    name = fed.name("name")
    ca = path.parent / fed.get("ca_certificate", str)
    parties: list[PartyInfo] = []
    for i, item in enumerate(_tables(root, "party")):
        host, port = _host_port(item, "address")
        mpc_host, mpc_port = _host_port(item, "mpc_address")
        if "mpc_large_address" in item.data:
            large_host, large_port = _host_port(item, "mpc_large_address")
        else:
            item.used.add("mpc_large_address")
            large_host, large_port = mpc_host, mpc_port + LARGE_LANE_PORT_OFFSET
            if large_port >= 65536:
                raise ConfigError(
                    f"{item.where}.mpc_address: got port {mpc_port}, want one below "
                    f"{65536 - LARGE_LANE_PORT_OFFSET} (or set mpc_large_address)"
                )
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
                mpc_large_host=large_host,
                mpc_large_port=large_port,
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
        *((p.mpc_large_host, p.mpc_large_port) for p in parties),
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
    defaults = Limits()
    limits = Limits(
        *(
            fed.get(key, int, getattr(defaults, key))
            for key in (
                "max_result_groups",
                "max_result_cells",
                "max_secure_operations",
                "large_job_operations",
            )
        )
    )
    if min(limits.max_result_groups, limits.max_result_cells, limits.max_secure_operations) < 1:
        raise ConfigError(f"{path.name}: got a limit below 1, want every max_* >= 1")
    if limits.large_job_operations < 0:
        raise ConfigError(f"{path.name}: federation.large_job_operations got a negative, want >= 0")
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
        limits=limits,
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
    domain = _domain(table, policy)
    bounds = _bounds(table, policy)
    order = table.get("order_statistics", bool, False)
    if order and policy not in (ColumnPolicy.AGGREGATE, ColumnPolicy.GROUP_BY):
        raise ConfigError(
            f"{where}.order_statistics: got it on a {policy.value} column, want it on an "
            "aggregate or group_by column"
        )
    table.finish()
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{where}: got column name {name!r}, want {NAME_PATTERN.pattern}")
    return ColumnConfig(name, policy, decimals, reveal, domain, bounds, order)


_DOMAIN_HINT = (
    'want domain = ["label", ...] (the labels, listed), domain = { from = A, to = B } '
    '(the integers A..B) or domain = "data" (publish the column\'s distinct values, read '
    "at start-up)"
)


def _domain(table: _Table, policy: ColumnPolicy) -> DomainSpec | None:
    """Read a group_by column's ``domain`` (required there, refused elsewhere)."""
    table.used.add("domain")
    raw = table.data.get("domain")
    where = f"{table.where}.domain"
    if policy is not ColumnPolicy.GROUP_BY:
        if raw is not None:
            raise ConfigError(f"{where}: got a domain on a {policy.value} column, want none")
        return None
    if raw is None:
        raise ConfigError(
            f"{table.where}: a group_by column needs public labels: got no domain, " + _DOMAIN_HINT
        )
    if raw == "data":
        return DomainSpec("data")
    if isinstance(raw, list):
        values: list[str | int | float | bool] = []
        for item in raw:
            if not isinstance(item, str | int | float | bool):
                raise ConfigError(
                    f"{where}: got a {type(item).__name__} label, want strings, numbers or booleans"
                )
            if item not in values:
                values.append(item)
        if not values:
            raise ConfigError(f"{where}: got an empty list, {_DOMAIN_HINT}")
        if len(values) > MAX_DOMAIN_LABELS:
            raise ConfigError(
                f"{where}: got {len(values)} labels, want at most {MAX_DOMAIN_LABELS}"
            )
        return DomainSpec("values", tuple(values))
    if isinstance(raw, dict):
        bounds = _Table(raw, where)
        low, high = bounds.get("from", int), bounds.get("to", int)
        bounds.finish()
        if not low <= high or high - low + 1 > MAX_DOMAIN_LABELS:
            raise ConfigError(
                f"{where}: got from = {low}, to = {high}, want from <= to and at most "
                f"{MAX_DOMAIN_LABELS} labels"
            )
        return DomainSpec("range", low=low, high=high)
    raise ConfigError(f"{where}: got {raw!r}, {_DOMAIN_HINT}")


def _bounds(table: _Table, policy: ColumnPolicy) -> tuple[float, float] | None:
    """Read an aggregate column's declared ``bounds = [low, high]`` (enforced at load)."""
    table.used.add("bounds")
    raw = table.data.get("bounds")
    if raw is None:
        return None
    where = f"{table.where}.bounds"
    if policy is not ColumnPolicy.AGGREGATE:
        raise ConfigError(f"{where}: got bounds on a {policy.value} column, want none")
    if (
        not isinstance(raw, list)
        or len(raw) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw)
        or not raw[0] <= raw[1]
    ):
        raise ConfigError(f"{where}: got {raw!r}, want [low, high] with low <= high")
    return float(raw[0]), float(raw[1])


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
    release_text = table.get("release", str, ReleaseMode.EXACT.value)
    try:
        release = ReleaseMode(release_text)
    except ValueError:
        raise ConfigError(
            f"{table.where}.release: got {release_text!r}, want 'exact' or 'dp'"
        ) from None
    overlap = table.get("overlap_control", bool, True)
    dominance = _dominance(table)
    budget = _budget(table, release)
    if release is ReleaseMode.EXACT:
        if overlap and min_group > MAX_OVERLAP_MIN_GROUP_SIZE:
            raise ConfigError(
                f"{table.where}: overlap_control with min_group_size {min_group}: want "
                f"min_group_size <= {MAX_OVERLAP_MIN_GROUP_SIZE} (or overlap_control = false)"
            )
    else:
        for column in columns:
            if column.policy is ColumnPolicy.AGGREGATE and column.bounds is None:
                raise ConfigError(
                    f"{table.where}.columns.{column.name}: release = 'dp' needs the "
                    "sensitivity of every aggregate column: got no bounds, want "
                    "bounds = [low, high]"
                )
            if column.order_statistics:
                raise ConfigError(
                    f"{table.where}.columns.{column.name}.order_statistics: got true with "
                    "release = 'dp', want false (exact order statistics are not "
                    "differentially private)"
                )
    table.finish()
    return DatasetConfig(
        name,
        file,
        fmt,
        columns,
        min_group,
        tuple(analysts),
        release,
        overlap,
        dominance,
        budget,
    )


def _dominance(table: _Table) -> Dominance | None:
    table.used.add("dominance")
    raw = table.data.get("dominance", True)
    where = f"{table.where}.dominance"
    if raw is False:
        return None
    if raw is True:
        return Dominance()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: got {raw!r}, want {{ n = 1, k = 85 }} or false")
    rule = _Table(raw, where)
    n, k = rule.get("n", int, 1), rule.get("k", int, 85)
    rule.finish()
    if not 1 <= n <= 10 or not 1 <= k <= 99:
        raise ConfigError(f"{where}: got n = {n}, k = {k}, want 1 <= n <= 10 and 1 <= k <= 99")
    return Dominance(n, k)


def _budget(table: _Table, release: ReleaseMode) -> PrivacyBudget | None:
    keys = ("epsilon_per_query", "budget", "analyst_budget")
    if release is not ReleaseMode.DP:
        present = [k for k in keys if k in table.data]
        if present:
            raise ConfigError(
                f"{table.where}: got {', '.join(present)} with release = 'exact', want them "
                "only with release = 'dp'"
            )
        return None
    epsilon = table.get("epsilon_per_query", float, 0.5)
    total = table.get("budget", float, 10.0)
    per_analyst = table.get("analyst_budget", float, total)
    if not 0 < epsilon <= per_analyst <= total:
        raise ConfigError(
            f"{table.where}: got epsilon_per_query = {epsilon}, analyst_budget = "
            f"{per_analyst}, budget = {total}, want 0 < epsilon_per_query <= analyst_budget "
            "<= budget"
        )
    return PrivacyBudget(epsilon, total, per_analyst)


def load_party(path: Path) -> PartyConfig:
    """Load and validate a ``party.toml`` (or the directory holding one) and its federation.

    Raises ConfigError naming the file, the key, what was found and what was expected.
    """
    path = config_file(path, PARTY_FILE).resolve()
    root = _Table(_read_toml(path, "party file", PARTY_FILE), path.name)
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
        overlap_key=base / key if (key := party.get("overlap_key", str, None)) else None,
    )
    controlled = [d.name for d in datasets if d.release is ReleaseMode.EXACT and d.overlap_control]
    if controlled and config.overlap_key is None:
        raise ConfigError(
            f"{path.name}: dataset {controlled[0]} has overlap control but party.overlap_key "
            "is not set; want the path of the federation's shared overlap key (jointstat init "
            "writes overlap.key into every party's directory; copy it from another party)"
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


def load_identity(path: Path) -> AnalystIdentity:
    """Load an analyst identity: its directory, or the ``identity.toml`` in it.

    Raises ConfigError naming the file, the key, what was found and what was expected.
    """
    path = config_file(path, IDENTITY_FILE).resolve()
    root = _Table(_read_toml(path, "analyst identity", IDENTITY_FILE), path.name)
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
