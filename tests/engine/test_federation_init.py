"""``jointstat init`` for real agencies (issue 16, item 8): per-party hosts, a layout each
member receives only its own part of, and keys that agencies make themselves."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from engine.client import Client
from engine.config import load_federation
from engine.errors import ConfigError
from engine.federation_init import DatasetSpec, create_federation
from engine.key_requests import make_request, read_request
from engine.launch import LocalFederation, free_port_block

PARTIES = ["registry", "tax", "social"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_init_gives_each_party_its_host_and_says_who_gets_what(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    done = _cli(
        "init",
        str(root),
        "--parties",
        ",".join(PARTIES),
        "--analysts",
        "alice",
        "--host",
        "tax=10.0.0.2",
        "--host",
        "social=social.city.example",
    )
    assert done.returncode == 0, done.stderr
    federation = load_federation(root)
    hosts = {p.name: (p.host, p.mpc_host) for p in federation.parties}
    assert hosts == {
        "registry": ("127.0.0.1", "127.0.0.1"),
        "tax": ("10.0.0.2", "10.0.0.2"),
        "social": ("social.city.example", "social.city.example"),
    }
    out = done.stdout
    assert "agency tax" in out and "federation.toml ca.crt tax/" in out
    assert "analyst alice" in out and "analysts/alice/" in out
    assert "ca/ holds the CA's private key" in out
    assert f"jointstat party serve --config {root / 'social'}" in out


@pytest.mark.parametrize(
    ("host", "needle"),
    [
        ("tax=10.0.0.2:80", "no port"),
        ("tax=::1", "no port"),
        ("tax=a b", "host name"),
        ("x=h", "want one of"),
    ],
)
def test_init_refuses_bad_hosts(tmp_path: Path, host: str, needle: str) -> None:
    done = _cli("init", str(tmp_path / "f"), "--parties", ",".join(PARTIES), "--host", host)
    assert done.returncode == 1 and needle in done.stderr, done.stderr
    assert not (tmp_path / "f").exists()


def test_each_private_key_sits_in_its_owners_directory_only(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    create_federation(root, PARTIES, ["alice"], base_port=24600)
    keys = sorted(str(p.relative_to(root)) for p in root.rglob("*.key"))
    assert keys == [
        "analysts/alice/signing.key",
        "analysts/alice/tls.key",
        "ca/ca.key",
        "registry/log.key",  # the sequencer's checkpoint key
        "registry/overlap.key",  # the one secret every party shares (overlap control)
        "registry/signing.key",
        "registry/tls.key",
        "social/overlap.key",
        "social/signing.key",
        "social/tls.key",
        "tax/overlap.key",
        "tax/signing.key",
        "tax/tls.key",
    ]
    secrets = {(root / p / "overlap.key").read_bytes() for p in PARTIES}
    assert len(secrets) == 1
    # What every member needs besides its own directory is public and outside ca/.
    assert load_federation(root).ca_certificate == (root / "ca.crt").resolve()
    assert (root / "ca.crt").read_bytes() == (root / "ca" / "ca.crt").read_bytes()


def test_key_requests_are_verified(tmp_path: Path) -> None:
    made = make_request(tmp_path / "tax", "party", "tax")
    path = tmp_path / "tax" / "request.toml"
    assert read_request(path) == made
    text = path.read_text()
    with pytest.raises(ConfigError, match="existing"):
        make_request(tmp_path / "tax", "party", "tax")  # never overwrites keys
    other = base64.b64encode(bytes(32)).decode()
    forged = text.replace(text.split('signing_public_key = "')[1].split('"')[0], other)
    path.write_text(forged)
    with pytest.raises(ConfigError, match="signature"):
        read_request(path)
    path.write_text(text.replace('name = "tax"', 'name = "tux"'))
    with pytest.raises(ConfigError, match="CN=party:tux"):
        read_request(path)
    path.write_text(text + 'colour = "red"\n')
    with pytest.raises(ConfigError, match="unknown key"):
        read_request(path)


def test_init_refuses_requests_that_do_not_fit(tmp_path: Path) -> None:
    tax = make_request(tmp_path / "tax", "party", "tax")
    with pytest.raises(ConfigError, match="sequencer"):  # tax first: it needs a log key
        create_federation(tmp_path / "a", ["tax", "registry", "social"], [], requests=[tax])
    with pytest.raises(ConfigError, match="want a member"):
        create_federation(tmp_path / "b", ["registry", "health", "social"], [], requests=[tax])
    with pytest.raises(ConfigError, match="two"):
        create_federation(tmp_path / "c", PARTIES, [], requests=[tax, tax])


def test_ca_sign_issues_a_certificate_for_a_request(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    create_federation(root, PARTIES, [], base_port=24700)
    make_request(tmp_path / "tax", "party", "tax")
    make_request(tmp_path / "carol", "analyst", "carol")
    out = tmp_path / "signed"
    done = _cli(
        "ca", "sign", str(tmp_path / "tax"), "--ca", str(root / "ca"), "--federation", str(root)
    )
    assert done.returncode == 2  # --out is required
    done = _cli(
        "ca", "sign", str(tmp_path / "tax"), "--ca", str(root / "ca"), "--federation",
        str(root), "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    certificate = x509.load_pem_x509_certificate((out / "tls.crt").read_bytes())
    certificate.verify_directly_issued_by(
        x509.load_pem_x509_certificate((root / "ca.crt").read_bytes())
    )
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"tax", "MPyC party 1"}
    assert "holds another signing key" in done.stdout  # tax's keys were made by init
    carol = _cli(
        "ca", "sign", str(tmp_path / "carol"), "--ca", str(root / "ca"), "--federation",
        str(root), "--out", str(tmp_path / "carol-cert"),
    )  # fmt: skip
    assert carol.returncode == 0, carol.stderr
    assert '[[analyst]]\nname = "carol"\nsigning_public_key = "' in carol.stdout


def _machine(root: Path, member: str, into: Path) -> Path:
    """Copy what ``member`` receives (the handout) into a directory of its own."""
    into.mkdir(parents=True)
    shutil.copy(root / "federation.toml", into)
    shutil.copy(root / "ca.crt", into)
    shutil.copytree(root / member, into / member)
    return into


def test_agencies_that_made_their_own_keys_run_a_query_each_from_its_own_bundle(
    tmp_path: Path,
) -> None:
    own = tmp_path / "own"  # made at the agencies; never seen by the CA
    requests = [
        make_request(own / "registry", "party", "registry", sequencer=True),
        make_request(own / "tax", "party", "tax"),
        make_request(own / "alice", "analyst", "alice"),
    ]
    root = tmp_path / "ca-side"
    create_federation(
        root,
        PARTIES,
        ["alice"],
        base_port=free_port_block(3),
        requests=requests,
        datasets={
            "tax": [
                DatasetSpec(
                    "income",
                    "data/income.csv",
                    {"sector": {"policy": "group_by", "domain": ["a", "b"]}},
                )
            ]
        },
    )
    # Only the federation's shared overlap secret, which every party needs, is made for them.
    for party in ("registry", "tax"):
        assert [p.name for p in (root / party).glob("*.key")] == ["overlap.key"]
    # Each member's machine: the public files, its own directory, the keys it kept.
    machines = tmp_path / "machines"
    for party in PARTIES:
        _machine(root, party, machines / party)
    _machine(root, "analysts/alice", machines / "alice")
    for name, where in (("registry", "registry"), ("tax", "tax"), ("alice", "analysts/alice")):
        for key in (own / name).glob("*.key"):
            shutil.copy(key, machines / name / where)
    data = machines / "tax" / "tax" / "data"
    data.mkdir()
    (data / "income.csv").write_text("sector\n" + "".join(f"{'ab'[i % 2]}\n" for i in range(30)))
    for party in PARTIES:  # nobody's machine holds another member's private key, nor ca/
        held = {p.name for p in (machines / party).rglob("*.key")}
        assert held == {"tls.key", "signing.key", "overlap.key"} | (
            {"log.key"} if party == "registry" else set()
        )
        assert not (machines / party / "ca").exists()
    launchers = [
        LocalFederation(machines / party, log_dir=tmp_path / "logs" / party) for party in PARTIES
    ]
    try:
        for launcher, party in zip(launchers, PARTIES, strict=True):
            launcher.start_party(party, wait=False)
        for launcher, party in zip(launchers, PARTIES, strict=True):
            launcher.wait_healthy(party, 60)
        with Client(machines / "alice" / "analysts" / "alice") as client:
            result = client.query("SELECT sector, COUNT(*) FROM tax.income GROUP BY sector")
        assert sorted(result.rows) == [("a", 15), ("b", 15)]
    finally:
        for launcher in launchers:
            launcher.stop()
