"""Bad input through the real daemons: each refusal is precise, and the daemons keep serving."""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import pki
from engine.client import Client
from engine.errors import (
    AuthError,
    CapacityError,
    EngineError,
    PeerError,
    PolicyError,
    QueryError,
    UnsupportedError,
)
from engine.federation_init import create_federation
from engine.launch import free_port_block
from engine.request import new_request, sign
from engine.sealing import new_result_key

from .conftest import Federation

REFUSALS = [
    ("SELEC COUNT(*) FROM tax.income", QueryError, "syntax"),
    ("SELECT COUNT(*) FROM tax.nope", QueryError, "want one of"),
    ("SELECT COUNT(*) FROM nobody.income", QueryError, "nobody.income"),
    ("SELECT COUNT(*) FROM income", QueryError, "party.dataset"),
    ("SELECT SUM(salary) FROM tax.income", QueryError, "'salary'"),
    ("SELECT COUNT(*) FROM tax.edge WHERE secret > 3", PolicyError, "hidden"),
    ("SELECT AVG(secret) FROM tax.edge", PolicyError, "hidden"),
    ("SELECT SUM(citizen_id) FROM tax.income", PolicyError, "join_key"),
    ("SELECT COUNT(citizen_id) FROM tax.income", PolicyError, "join_key"),
    ("SELECT COUNT(*) FROM tax.income WHERE citizen_id = 5", PolicyError, "join_key"),
    ("SELECT citizen_id, COUNT(*) FROM tax.income GROUP BY citizen_id", PolicyError, "join_key"),
    ("SELECT income, COUNT(*) FROM tax.income GROUP BY income", PolicyError, "GROUP BY"),
    ("SELECT sector, COUNT(*) FROM tax.income", QueryError, "GROUP BY"),
    ("SELECT sector FROM tax.income GROUP BY sector", QueryError, "aggregate"),
    ("SELECT SUM(sector) FROM tax.income", QueryError, "want numeric"),
    ("SELECT quantile(income, 0.5) FROM tax.income", UnsupportedError, "QUANTILE_DISC"),
    (
        "SELECT MEDIAN(v) FROM (SELECT * FROM tax.edge UNION ALL SELECT * FROM social.edge) u",
        UnsupportedError,
        "UNION ALL",
    ),
    ("SELECT SUM(DISTINCT income) FROM tax.income", UnsupportedError, "DISTINCT inside SUM"),
    (
        "SELECT COUNT(DISTINCT t.sector) FROM tax.income t JOIN registry.people p "
        "ON t.citizen_id = p.citizen_id",
        UnsupportedError,
        "over a UNION ALL or a join",
    ),
    ("SELECT SUM(income / 2) FROM tax.income", UnsupportedError, "division in SUM"),
    ("SELECT MEDIAN(income * 2) FROM tax.income", UnsupportedError, "plain column"),
    (
        "SELECT COUNT(*) FROM tax.income t LEFT JOIN registry.people p "
        "ON t.citizen_id = p.citizen_id",
        UnsupportedError,
        "OUTER",
    ),
    (
        "SELECT COUNT(*) FROM tax.income t JOIN registry.people p ON t.sector = p.district",
        PolicyError,
        "join_key",
    ),
    (
        "SELECT COUNT(*) FROM tax.income t JOIN registry.people p ON t.citizen_id > p.citizen_id",
        UnsupportedError,
        "non-equi",
    ),
    (
        "SELECT COUNT(*) FROM tax.income t JOIN tax.edge e ON t.citizen_id = e.person",
        UnsupportedError,
        "same agency",
    ),
    ("SELECT COUNT(*) FROM tax.income t, registry.people p", UnsupportedError, "cross join"),
    (
        "SELECT sector, COUNT(*) FROM tax.income GROUP BY sector HAVING AVG(income) > 5",
        UnsupportedError,
        "HAVING",
    ),
    (
        "SELECT DISTINCT sector, COUNT(*) FROM tax.income GROUP BY sector",
        UnsupportedError,
        "DISTINCT",
    ),
    (
        "WITH t AS (SELECT sector, COUNT(*) AS n FROM tax.income GROUP BY sector) "
        "SELECT SUM(n) FROM t",
        UnsupportedError,
        "a subquery in FROM with aggregates, GROUP BY",
    ),
    (
        "WITH RECURSIVE t AS (SELECT * FROM tax.income) SELECT COUNT(*) FROM t",
        UnsupportedError,
        "WITH RECURSIVE",
    ),
    ("SELECT COUNT(*) FROM tax.income WHERE income > (SELECT 1)", UnsupportedError, "subquery"),
    ("SELECT SUM(income) OVER () FROM tax.income", UnsupportedError, "window"),
    (
        "SELECT COUNT(*) FROM tax.income WHERE read_csv('/etc/passwd') IS NULL",
        UnsupportedError,
        "READ_CSV",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT * FROM tax.edge UNION SELECT * FROM social.edge) u",
        UnsupportedError,
        "UNION ALL",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT * FROM tax.edge UNION ALL SELECT * FROM tax.income) u",
        QueryError,
        "same columns",
    ),
    ("SELECT COUNT(*) FROM tax.bad", QueryError, "row 31"),
    ("SELECT COUNT(*) FROM social.missing", QueryError, "no data file"),
    ("SELECT COUNT(*) FROM social.private", PolicyError, "not granted"),
    ("SELECT COUNT(*) FROM tax.income; SELECT 1", QueryError, "exactly one"),
    ("DELETE FROM tax.income", UnsupportedError, "SELECT"),
    (
        "SELECT COUNT(*) FROM tax.income WHERE " + " OR ".join(["income > 1"] * 8000),
        CapacityError,
        "at most",
    ),
]


@pytest.mark.parametrize(("sql", "error", "needle"), REFUSALS)
def test_bad_query_is_refused_precisely(
    federation: Federation, sql: str, error: type[EngineError], needle: str
) -> None:
    with federation.client() as client, pytest.raises(error) as caught:
        client.query(sql)
    assert needle.lower() in str(caught.value).lower(), str(caught.value)


def test_daemons_keep_serving_after_refusals(federation: Federation) -> None:
    with federation.client() as client:
        for sql, _, _ in REFUSALS[:5]:
            with pytest.raises(EngineError):
                client.query(sql)
        assert client.query("SELECT COUNT(*) FROM registry.people").rows[0][0] == 3000


def test_replayed_request_is_refused(federation: Federation) -> None:
    with federation.client() as client:
        signed, private = client.sign("SELECT COUNT(*) FROM registry.people")
        assert client.send(signed, private).rows == ((3000,),)
        with pytest.raises(AuthError, match="replayed"):
            client.send(signed, private)


def test_forged_signature_is_refused(federation: Federation) -> None:
    with federation.client() as client:
        signed, private = client.sign("SELECT COUNT(*) FROM registry.people")
        forged = dataclasses.replace(signed, signature=pki.new_signing_key().sign(signed.body))
        with pytest.raises(AuthError, match="signature"):
            client.send(forged, private)
        tampered = dataclasses.replace(signed, body=signed.body.replace(b"people", b"peoplf"))
        with pytest.raises(AuthError, match="signature"):
            client.send(tampered, private)


def test_stale_request_is_refused(federation: Federation) -> None:
    with federation.client() as client:
        _, public = new_result_key()
        request = new_request(
            "alice", "test", "SELECT COUNT(*) FROM registry.people", public, now=time.time() - 3600
        )
        signed = sign(request, pki.load_signing_key(federation.identity / "signing.key"))
        with pytest.raises(AuthError, match="issued_at"):
            client.send(signed, new_result_key()[0])


def test_request_signed_as_another_analyst_is_refused(federation: Federation) -> None:
    bob_key = pki.load_signing_key(federation.directory / "analysts" / "bob" / "signing.key")
    with federation.client() as client:  # alice's TLS certificate
        private, public = new_result_key()
        request = new_request("bob", "test", "SELECT COUNT(*) FROM registry.people", public)
        with pytest.raises(AuthError, match="TLS certificate names 'alice'"):
            client.send(sign(request, bob_key), private)


def _impostor(federation: Federation, tmp_path: Path, name: str, ca_dir: Path) -> Path:
    """Make an analyst identity named ``name`` whose certificate is issued by ``ca_dir``."""
    ca = pki.IssuedCertificate((ca_dir / "ca.key").read_bytes(), (ca_dir / "ca.crt").read_bytes())
    tls = pki.issue(ca, f"{pki.ANALYST_PREFIX}{name}", [], server=False)
    identity = tmp_path / name
    identity.mkdir()
    pki.write_private(identity / "tls.key", tls.key_pem)
    (identity / "tls.crt").write_bytes(tls.certificate_pem)
    pki.write_private(identity / "signing.key", pki.signing_key_pem(pki.new_signing_key()))
    (identity / "identity.toml").write_text(
        "[analyst]\n"
        f'name = "{name}"\n'
        f'federation = "{federation.directory / "federation.toml"}"\n'
        'tls_certificate = "tls.crt"\ntls_key = "tls.key"\nsigning_key = "signing.key"\n'
    )
    return identity


def test_unknown_analyst_is_refused(federation: Federation, tmp_path: Path) -> None:
    identity = _impostor(federation, tmp_path, "alice", federation.directory / "ca")
    # A key the federation does not know, under a registered name: the signature fails.
    with Client(identity) as client, pytest.raises(AuthError, match="signature"):
        client.query("SELECT COUNT(*) FROM registry.people")
    with federation.client() as client:
        private, public = new_result_key()
        request = new_request("mallory", "test", "SELECT COUNT(*) FROM registry.people", public)
        with pytest.raises(AuthError, match="got 'mallory', want a registered analyst"):
            client.send(sign(request, pki.new_signing_key()), private)
    text = (identity / "identity.toml").read_text().replace('"alice"', '"mallory"')
    (identity / "identity.toml").write_text(text)
    with pytest.raises(EngineError, match="not registered"):
        Client(identity)


def test_certificate_from_another_ca_is_refused(federation: Federation, tmp_path: Path) -> None:
    other = tmp_path / "other"
    create_federation(other, ["x", "y", "z"], ["eve"], base_port=free_port_block(3))
    identity = _impostor(federation, tmp_path, "alice", other / "ca")
    with Client(identity) as client, pytest.raises(PeerError, match="unreachable"):
        client.query("SELECT COUNT(*) FROM registry.people", timeout=10)
    with federation.client() as client:
        assert client.query("SELECT COUNT(*) FROM registry.people").rows == ((3000,),)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_json_output_and_exit_codes(federation: Federation) -> None:
    identity = str(federation.identity)
    done = _cli(
        "query",
        "--identity",
        identity,
        "--format",
        "json",
        "SELECT sex, COUNT(*) AS n FROM registry.people GROUP BY sex ORDER BY sex",
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["columns"] == ["sex", "n"]
    assert sum(row[1] for row in body["rows"]) == 3000
    refused = _cli("query", "--identity", identity, "SELECT SUM(citizen_id) FROM tax.income")
    assert refused.returncode == 1
    assert "join_key" in refused.stderr and refused.stdout == ""
    usage = _cli("query", "--identity", identity, "--format", "xml", "SELECT 1")
    assert usage.returncode == 2
    csv_out = _cli(
        "query",
        "--identity",
        identity,
        "--format",
        "csv",
        "--party",
        "social",
        "SELECT COUNT(*) AS n FROM registry.people",
    )
    assert csv_out.returncode == 0 and csv_out.stdout.splitlines() == ["n", "3000"]


def test_cli_lists_datasets_as_text_and_json(federation: Federation) -> None:
    identity = str(federation.identity)
    text = _cli("datasets", "--identity", identity)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert any(line.startswith("tax.income  (minimum group size") for line in lines)
    assert any(line.split()[:3] == ["citizen_id", "integer", "join_key"] for line in lines)
    as_json = _cli("datasets", "--identity", identity, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    listed = {f"{d['owner']}.{d['name']}" for d in json.loads(as_json.stdout)}
    assert {"registry.people", "tax.income"} <= listed


def test_result_key_must_be_x25519(federation: Federation) -> None:
    with federation.client() as client:
        signed, private = client.sign("SELECT COUNT(*) FROM registry.people")
        body = json.loads(signed.body.split(b"\n", 1)[1])
        body["result_key"] = base64.b64encode(b"short").decode()
        raw = (
            b"jointstat/query-request/v1\n"
            + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        )
        key = pki.load_signing_key(federation.identity / "signing.key")
        with pytest.raises(AuthError, match="result_key"):
            client.send(dataclasses.replace(signed, body=raw, signature=key.sign(raw)), private)
