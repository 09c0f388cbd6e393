"""Federation creation and configuration loading: keys, certificates, strict validation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from engine.config import ColumnPolicy, load_federation, load_identity, load_party
from engine.errors import ConfigError
from engine.federation_init import DatasetSpec, create_federation


@pytest.fixture
def fed(tmp_path: Path) -> Path:
    spec = DatasetSpec(
        "people",
        "data/people.csv",
        {"id": "join_key", "age": {"policy": "aggregate", "decimals": 1}},
    )
    create_federation(
        tmp_path / "f",
        ["registry", "tax", "health", "bureau"],
        ["alice"],
        name="city",
        base_port=23000,
        datasets={"registry": [spec]},
    )
    return tmp_path / "f"


def test_init_writes_a_consistent_federation(fed: Path) -> None:
    federation = load_federation(fed / "federation.toml")
    assert [p.name for p in federation.parties] == ["registry", "tax", "health", "bureau"]
    assert [(p.port, p.mpc_port) for p in federation.parties][3] == (23003, 23103)
    assert federation.threshold == 1 and federation.sequencer == "registry"
    party = load_party(fed / "registry" / "party.toml")
    (dataset,) = party.datasets
    assert dataset.column("age") is not None
    assert dataset.column("age").policy is ColumnPolicy.AGGREGATE  # type: ignore[union-attr]
    assert load_party(fed / "bureau" / "party.toml").datasets == ()  # compute-only
    assert load_identity(fed / "analysts" / "alice").default_party == "registry"


def test_certificates_chain_to_the_ca_and_name_roles(fed: Path) -> None:
    ca = x509.load_pem_x509_certificate((fed / "ca" / "ca.crt").read_bytes())
    tax = x509.load_pem_x509_certificate((fed / "tax" / "tls.crt").read_bytes())
    alice = x509.load_pem_x509_certificate((fed / "analysts" / "alice" / "tls.crt").read_bytes())
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    for cert in (tax, alice):
        tax.verify_directly_issued_by(ca)
        assert cert.issuer == ca.subject
    assert tax.subject.rfc4514_string() == "CN=party:tax"
    assert alice.subject.rfc4514_string() == "CN=analyst:alice"
    names = tax.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"tax", "MPyC party 1"}


def test_private_keys_are_owner_only(fed: Path) -> None:
    for key in [
        fed / "ca" / "ca.key",
        fed / "tax" / "tls.key",
        fed / "tax" / "signing.key",
        fed / "analysts" / "alice" / "signing.key",
    ]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda t: t.replace("threshold = 1", "threshold = 2"), "threshold"),
        (lambda t: t.replace("[federation]", "[federation]\ncolour = 1"), "unknown key"),
        (lambda t: t.replace('sequencer = "registry"', 'sequencer = "nobody"'), "sequencer"),
        (lambda t: t.replace("23001", "23000"), "same host:port"),
        (lambda t: t.replace('name = "tax"', 'name = "Tax!"'), "lowercase"),
    ],
)
def test_bad_federation_files_are_refused(fed: Path, edit: object, needle: str) -> None:
    path = fed / "federation.toml"
    path.write_text(edit(path.read_text()))  # type: ignore[operator]
    with pytest.raises(ConfigError, match=needle):
        load_federation(path)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda t: t.replace('"join_key"', '"secret"'), "want one of"),
        (lambda t: t.replace("min_group_size = 10", "min_group_size = 0"), "min_group_size"),
        (lambda t: t.replace("decimals = 1", "decimals = 12"), "decimals"),
        (lambda t: t.replace("[party]", "[party]\nport = 5"), "unknown key"),
        (
            lambda t: t.replace('"join_key"', '{ policy = "aggregate", reveal_membership = true }'),
            "join_key column only",
        ),
        (
            lambda t: (
                t + "[[dataset]]\nname = 'x'\nfile = 'x.json'\n[dataset.columns]\na = 'hidden'\n"
            ),
            "format",
        ),
    ],
)
def test_bad_party_files_are_refused(fed: Path, edit: object, needle: str) -> None:
    path = fed / "registry" / "party.toml"
    path.write_text(edit(path.read_text()))  # type: ignore[operator]
    with pytest.raises(ConfigError, match=needle):
        load_party(path)


def test_init_refuses_two_parties_and_existing_directories(tmp_path: Path, fed: Path) -> None:
    with pytest.raises(ConfigError, match="at least 3"):
        create_federation(tmp_path / "g", ["a", "b"], [])
    with pytest.raises(ConfigError, match="existing"):
        create_federation(fed, ["a", "b", "c"], [])
