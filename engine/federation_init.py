"""Create a new federation directory: CA, party and analyst keys, and the config files.

Layout written by :func:`create_federation` (``DIR`` is the target directory)::

    DIR/federation.toml           shared: parties, analysts, public keys
    DIR/ca/ca.crt, ca.key         the federation CA (keep ca.key offline in production)
    DIR/<party>/party.toml        private to the agency: keys and datasets
    DIR/<party>/tls.crt, tls.key  TLS identity (gRPC and MPyC links)
    DIR/<party>/signing.key       Ed25519 key (approvals, ledger cosignatures)
    DIR/<sequencer>/log.key       Ed25519 key signing the ledger's checkpoints
    DIR/analysts/<name>/identity.toml, tls.crt, tls.key, signing.key
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from engine import pki
from engine.config import FEDERATION_PORT_OFFSET, NAME_PATTERN
from engine.errors import ConfigError

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
        "[dataset.columns]",
    ]
    lines += [f"{col} = {_toml_value(policy)}" for col, policy in spec.columns.items()]
    return "\n".join(lines) + "\n"


def create_federation(
    directory: Path,
    parties: list[str],
    analysts: list[str],
    *,
    name: str = "federation",
    base_port: int = DEFAULT_BASE_PORT,
    host: str = "127.0.0.1",
    datasets: dict[str, list[DatasetSpec]] | None = None,
) -> Path:
    """Create a federation in ``directory`` and return the path of its federation.toml.

    Party ``i`` listens for gRPC on ``base_port + i`` (the Analyst service), on
    ``base_port + 200 + i`` (the Federation service, see engine.config) and for MPyC on
    ``base_port + 100 + i``. Raises ConfigError for bad names, fewer than 3 parties, or a
    directory that already holds a federation.
    """
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
    if not 1024 <= base_port <= 65535 - FEDERATION_PORT_OFFSET - len(parties):
        top = 65535 - FEDERATION_PORT_OFFSET - len(parties)
        raise ConfigError(f"base port: got {base_port}, want 1024..{top}")
    if (directory / "federation.toml").exists():
        raise ConfigError(f"{directory}: got an existing federation.toml, want a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    datasets = datasets or {}

    ca = pki.new_ca(name)
    pki.write_private(directory / "ca" / "ca.key", ca.key_pem)
    (directory / "ca" / "ca.crt").write_bytes(ca.certificate_pem)

    log_key = pki.new_signing_key()
    pki.write_private(directory / parties[0] / "log.key", pki.signing_key_pem(log_key))
    fed_lines = [
        "# jointstat federation: shared by every party and analyst (see README, Configuration)",
        "[federation]",
        f"name = {_toml_value(name)}",
        'ca_certificate = "ca/ca.crt"',
        f"sequencer = {_toml_value(parties[0])}",
        f"threshold = {(len(parties) - 1) // 2}",
        "max_request_age_seconds = 300",
        "query_timeout_seconds = 600",
        f"log_public_key = {_toml_value(_b64(pki.public_key_bytes(log_key)))}",
        "",
    ]
    for index, party in enumerate(parties):
        pdir = directory / party
        tls = pki.issue(
            ca, f"{pki.PARTY_PREFIX}{party}", [party, pki.mpc_host_name(index)], server=True
        )
        pki.write_private(pdir / "tls.key", tls.key_pem)
        (pdir / "tls.crt").write_bytes(tls.certificate_pem)
        signing = pki.new_signing_key()
        pki.write_private(pdir / "signing.key", pki.signing_key_pem(signing))
        fed_lines += [
            "[[party]]",
            f"name = {_toml_value(party)}",
            f'address = "{host}:{base_port + index}"',
            f'mpc_address = "{host}:{base_port + MPC_PORT_OFFSET + index}"',
            f"signing_public_key = {_toml_value(_b64(pki.public_key_bytes(signing)))}",
            "",
        ]
        party_lines = [
            f"# jointstat party {party}: private to this agency (see README, Configuration)",
            "[party]",
            f"name = {_toml_value(party)}",
            'federation = "../federation.toml"',
            'tls_certificate = "tls.crt"',
            'tls_key = "tls.key"',
            'signing_key = "signing.key"',
            'state_dir = "state"',
            *(
                ['log_key = "log.key"  # the sequencer signs ledger checkpoints']
                if index == 0
                else []
            ),
            "",
        ]
        blocks = [dataset_toml(d) for d in datasets.get(party, [])]
        if not blocks:
            party_lines.append("# No datasets: a compute-only party. Declare datasets as:")
            party_lines += [
                "# [[dataset]]",
                '# name = "people"',
                '# file = "data/people.csv"',
                "# min_group_size = 10",
                "# [dataset.columns]",
                '# citizen_id = "join_key"',
                '# district = "group_by"',
                '# income = { policy = "aggregate", decimals = 2 }',
            ]
        (pdir / "party.toml").write_text("\n".join(party_lines) + "\n" + "\n".join(blocks))

    for analyst in analysts:
        adir = directory / "analysts" / analyst
        tls = pki.issue(ca, f"{pki.ANALYST_PREFIX}{analyst}", [], server=False)
        pki.write_private(adir / "tls.key", tls.key_pem)
        (adir / "tls.crt").write_bytes(tls.certificate_pem)
        signing = pki.new_signing_key()
        pki.write_private(adir / "signing.key", pki.signing_key_pem(signing))
        fed_lines += [
            "[[analyst]]",
            f"name = {_toml_value(analyst)}",
            f"signing_public_key = {_toml_value(_b64(pki.public_key_bytes(signing)))}",
            "",
        ]
        (adir / "identity.toml").write_text(
            "\n".join(
                [
                    f"# jointstat analyst {analyst}",
                    "[analyst]",
                    f"name = {_toml_value(analyst)}",
                    'federation = "../../federation.toml"',
                    'tls_certificate = "tls.crt"',
                    'tls_key = "tls.key"',
                    'signing_key = "signing.key"',
                    f"default_party = {_toml_value(parties[0])}",
                ]
            )
            + "\n"
        )
    path = directory / "federation.toml"
    path.write_text("\n".join(fed_lines))
    return path


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
