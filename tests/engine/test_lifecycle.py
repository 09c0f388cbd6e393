"""A query's life on real daemons: it ends in results or exactly one abort, also when the
analyst gives up, a party dies, or the sequencer restarts; stops drain; lanes keep small
queries moving; refusals leave a trace.

These tests stop and restart daemons of the shared federation and leave it running.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine.client import Client, Result
from engine.errors import CapacityError, EngineError, GaveUpError, PeerError, PolicyError
from engine.oracle import compare
from engine.pki import read_pem

from .conftest import Federation
from .lifecycle_checks import check_ledgers, records, settle, wait_until_ended

CHECK = "SELECT sector, COUNT(*), AVG(income) FROM tax.income GROUP BY sector"
# A job of a few seconds, large for the test federation (large_job_operations = 20000).
LONG = "SELECT slot, COUNT(*), SUM(x) FROM registry.wide WHERE slot < 4000 GROUP BY slot"


def _in_thread(federation: Federation, sql: str, party: str | None = None) -> dict[str, Any]:
    """Run ``sql`` in a thread; the dict gets "result" or "error", and "done" (monotonic)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with federation.client(party) as client:
                signed, private = client.sign(sql)
                outcome["query_id"] = signed.query_id
                outcome["result"] = client.send(signed, private)
        except EngineError as exc:
            outcome["error"] = exc
        outcome["done"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    outcome["thread"] = thread
    return outcome


def _wait_for_log(federation: Federation, party: str, text: str, before: int) -> None:
    log = federation.launcher.log_dir / f"{party}.log"
    deadline = time.monotonic() + 30
    while log.read_text().count(text) == before:
        assert time.monotonic() < deadline, f"{party} never logged {text!r}"
        time.sleep(0.05)


def _health(federation: Federation, party: str) -> int:
    """Return the party's standard gRPC health status (called as that party)."""
    fed = federation.launcher.federation
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read_pem(fed.ca_certificate, "CA"),
        private_key=read_pem(federation.directory / party / "tls.key", "key"),
        certificate_chain=read_pem(federation.directory / party / "tls.crt", "certificate"),
    )
    options = [("grpc.ssl_target_name_override", party)]
    with grpc.secure_channel(fed.party(party).address, credentials, options=options) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    return int(reply.status)


def _count(federation: Federation, party: str, text: str) -> int:
    return (federation.launcher.log_dir / f"{party}.log").read_text().count(text)


def test_party_killed_mid_join_leaves_one_abort_across_retries(federation: Federation) -> None:
    settle(federation)
    before = _count(federation, "social", "MPC job of")
    running = _in_thread(federation, LONG)
    _wait_for_log(federation, "social", "MPC job of", before)
    time.sleep(0.3)
    federation.launcher.kill_party("social")
    running["thread"].join(60)
    error = running["error"]
    assert isinstance(error, PeerError)
    assert "social" in str(error), str(error)  # README: the message names the party
    time.sleep(7)  # the sequencer retries its abort every 2 s while social is down
    federation.launcher.start_party("social")
    record = wait_until_ended(federation, running["query_id"])
    assert len(record.aborts) == 1, record.aborts
    check_ledgers(federation)


def test_sequencer_restart_aborts_what_was_in_flight(federation: Federation) -> None:
    settle(federation)
    before = _count(federation, "registry", "MPC job of")
    running = _in_thread(federation, LONG, "tax")
    _wait_for_log(federation, "registry", "MPC job of", before)
    federation.launcher.kill_party("registry")
    running["thread"].join(60)
    assert "error" in running
    federation.launcher.start_party("registry")
    record = wait_until_ended(federation, running["query_id"])
    assert [reason for _, reason in record.aborts] == [
        "sequencer restarted: the query was in flight when it stopped"
    ]
    settle(federation)
    check_ledgers(federation)


def test_client_timeout_before_mpc_cancels_and_anchors_the_abort(federation: Federation) -> None:
    federation.launcher.stop_party("tax")
    federation.launcher.start_party("tax", extra_env={"JOINTSTAT_TEST_PAUSE": "collect:4"})
    try:
        with federation.client() as client:
            signed, private = client.sign(CHECK)
            with pytest.raises(GaveUpError, match=r"client gave up after 1\.5 s") as caught:
                client.send(signed, private, timeout=1.5)
        assert "cancelled" in str(caught.value)
        record = wait_until_ended(federation, signed.query_id)
        assert record.committed == []
        assert [reason for _, reason in record.aborts] == ["client gave up after 1.5 s"]
    finally:
        federation.launcher.stop_party("tax")
        federation.launcher.start_party("tax")
    settle(federation)


def test_client_timeout_during_mpc_says_it_continues(federation: Federation) -> None:
    federation.launcher.stop_party("social")
    federation.launcher.start_party("social", extra_env={"JOINTSTAT_TEST_PAUSE": "execute:4"})
    try:
        settle(federation)  # a live MPC session with the new social: the job starts at once
        with federation.client() as client:
            signed, private = client.sign(CHECK)
            with pytest.raises(GaveUpError) as caught:
                client.send(signed, private, timeout=2.5)
        message = str(caught.value)
        assert "continues" in message and signed.query_id in message
        assert "jointstat ledger log" in message
        record = wait_until_ended(federation, signed.query_id)
        assert record.aborts == [] and len(record.committed) == 3
    finally:
        federation.launcher.stop_party("social")
        federation.launcher.start_party("social")
    settle(federation)


def test_graceful_stop_finishes_the_query_under_way(federation: Federation) -> None:
    settle(federation)
    before = _count(federation, "social", "MPC job of")
    running = _in_thread(federation, LONG)
    _wait_for_log(federation, "social", "MPC job of", before)
    assert federation.launcher.stop_party("social", timeout=120) == 0
    running["thread"].join(60)
    assert "error" not in running, running.get("error")
    result: Result = running["result"]
    assert compare(result, federation.oracle.run(LONG), (0,), 10, (1,)) == []
    log = (federation.launcher.log_dir / "social.log").read_text()
    stopping = log.rindex("party social stopping")
    assert " ERROR " not in log[stopping:], log[stopping:]
    assert "drained" in log[stopping:]
    federation.launcher.start_party("social")
    settle(federation)
    check_ledgers(federation)


def test_new_queries_are_refused_while_a_party_drains(federation: Federation) -> None:
    settle(federation)
    before = _count(federation, "social", "MPC job of")
    running = _in_thread(federation, LONG)
    _wait_for_log(federation, "social", "MPC job of", before)
    process = federation.launcher.processes["social"]
    process.terminate()
    time.sleep(0.5)
    assert _health(federation, "social") == health_pb2.HealthCheckResponse.NOT_SERVING
    with federation.client("tax") as client, pytest.raises(PeerError, match="social: stopping"):
        client.query(CHECK)
    process.wait(120)
    federation.launcher.processes.pop("social")
    running["thread"].join(60)
    assert "result" in running, running.get("error")
    federation.launcher.start_party("social")
    settle(federation)


def test_small_query_finishes_while_a_large_job_runs(federation: Federation) -> None:
    # Large for the test federation (cost above large_job_operations), quick to decode.
    large_sql = "SELECT slot, COUNT(*) FROM registry.wide WHERE slot < 2000 GROUP BY slot"
    federation.launcher.stop_party("social")
    pause = {"JOINTSTAT_TEST_PAUSE": "execute-large:5"}  # holds the large lane's job
    federation.launcher.start_party("social", extra_env=pause)
    try:
        settle(federation)
        before = _count(federation, "social", "test pause: execute-large")
        large = _in_thread(federation, large_sql)
        _wait_for_log(federation, "social", "test pause: execute-large", before)
        small = _in_thread(federation, "SELECT COUNT(*) FROM tax.income")
        small["thread"].join(60)
        large["thread"].join(120)
    finally:
        federation.launcher.stop_party("social")
        federation.launcher.start_party("social")
    assert "result" in small and "result" in large, (small.get("error"), large.get("error"))
    assert small["done"] < large["done"], "the COUNT(*) waited behind the large job"


def test_result_cells_over_the_limit_are_refused_naming_it(federation: Federation) -> None:
    sql = "SELECT slot, COUNT(*), SUM(x), AVG(x) FROM registry.wide GROUP BY slot"
    with federation.client() as client, pytest.raises(CapacityError) as caught:
        client.query(sql)
    assert "federation.max_result_cells" in str(caught.value)
    with federation.client() as client:
        result = client.query(CHECK)  # the federation goes on
    assert compare(result, federation.oracle.run(CHECK), (0,), 10, (1,)) == []


def test_policy_refusal_at_any_coordinator_is_on_the_ledger(federation: Federation) -> None:
    sql = "SELECT secret, COUNT(*) FROM tax.edge GROUP BY secret"
    ids = []
    for party in ("registry", "tax"):  # the sequencer itself, and a party relaying to it
        with federation.client(party) as client:
            signed, private = client.sign(sql)
            with pytest.raises(PolicyError, match="hidden"):
                client.send(signed, private)
            ids.append(signed.query_id)
    for query_id in ids:
        record = wait_until_ended(federation, query_id)
        assert record.refusals and "hidden" in record.refusals[0][1]
        assert record.sql == sql and record.analyst == "alice"


def test_unauthenticated_attempts_are_logged_rate_limited_and_counted(
    federation: Federation,
) -> None:
    from engine.request import SignedRequest

    sql = "SELECT COUNT(*) FROM tax.income WHERE income > 123456789"
    lines_before = _count(federation, "social", "unauthenticated attempt")
    with federation.client("social") as client:
        signed, private = client.sign(sql)
        forged = SignedRequest(signed.body, bytes(64))
        for _ in range(5):
            with pytest.raises(EngineError, match="signature"):
                client.send(forged, private)
        with Client(federation.directory / "analysts" / "bob") as bob:
            as_bob, _ = bob.sign(sql)
        with pytest.raises(EngineError, match="TLS certificate names 'alice'"):
            client.send(as_bob, private)  # bob's request over alice's connection
    log = (federation.launcher.log_dir / "social.log").read_text()
    assert log.count("unauthenticated attempt") == lines_before + 1  # one line per 10 s
    assert "123456789" not in log and "SELECT" not in log
    assert signed.query_id not in records(federation)
    assert federation.launcher.stop_party("social") == 0
    stopped = (federation.launcher.log_dir / "social.log").read_text()
    assert "unauthenticated attempts refused: 6 (5 not logged)" in stopped
    federation.launcher.start_party("social")
    settle(federation)
