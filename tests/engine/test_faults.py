"""Faults with real processes: a party killed mid-query, a party down, a port in use.

These tests stop and restart daemons of the shared federation and leave it running.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest

from engine.errors import EngineError, PeerError
from engine.oracle import compare

from .conftest import WIDE_ROWS, Federation

CHECK = "SELECT sector, COUNT(*), AVG(income) FROM tax.income GROUP BY sector"
LONG = "SELECT slot, COUNT(*), SUM(x) FROM registry.wide GROUP BY slot"


def _check_matches(federation: Federation, party: str | None = None) -> None:
    with federation.client(party) as client:
        result = client.query(CHECK)
    assert compare(result, federation.oracle.run(CHECK), (0,), 10, (1,)) == []


def test_party_killed_mid_query_fails_the_query_then_recovers(federation: Federation) -> None:
    _check_matches(federation)  # a live MPC session before the fault
    outcome: dict[str, object] = {}

    def run_long() -> None:
        began = time.monotonic()
        try:
            with federation.client() as client:
                outcome["result"] = client.query(LONG)
        except EngineError as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - began

    log = federation.launcher.log_dir / "social.log"
    jobs_before = log.read_text().count("MPC job of")
    thread = threading.Thread(target=run_long)
    thread.start()
    deadline = time.monotonic() + 30
    while log.read_text().count("MPC job of") == jobs_before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # inside the job, which takes several seconds
    federation.launcher.kill_party("social")
    thread.join(60)
    assert not thread.is_alive()
    assert "result" not in outcome, "a query cannot finish without one of the three parties"
    error = outcome["error"]
    assert isinstance(error, PeerError), error
    assert "social" in str(error) or "MPC" in str(error), str(error)
    assert isinstance(outcome["seconds"], float) and outcome["seconds"] < 60

    # The surviving daemons keep serving and say precisely who is missing.
    with federation.client("tax") as client, pytest.raises(PeerError, match="social"):
        client.query(CHECK)

    federation.launcher.start_party("social")
    _check_matches(federation)
    _check_matches(federation, "social")


def test_long_query_completes_when_no_one_fails(federation: Federation) -> None:
    with federation.client() as client:
        result = client.query("SELECT COUNT(*), SUM(x) FROM registry.wide")
    assert result.rows[0][0] == WIDE_ROWS


def test_party_down_is_named_and_restart_recovers(federation: Federation) -> None:
    assert federation.launcher.stop_party("tax") == 0  # graceful shutdown on SIGTERM
    with federation.client("registry") as client, pytest.raises(PeerError, match="tax"):
        client.query(CHECK)
    federation.launcher.start_party("tax")
    _check_matches(federation, "tax")


def test_sequencer_down_is_named(federation: Federation) -> None:
    federation.launcher.stop_party("registry")
    with federation.client("social") as client, pytest.raises(PeerError, match="registry"):
        client.query(CHECK)
    federation.launcher.start_party("registry")
    _check_matches(federation, "social")


def test_port_in_use_is_a_clear_error(federation: Federation) -> None:
    party = federation.launcher.federation.party("tax")
    # The running tax daemon holds its port: a second one must refuse to start.
    config = federation.directory / "tax" / "party.toml"
    second = subprocess.run(
        [sys.executable, "-m", "engine.cli", "party", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert f"gRPC address {party.host}:{party.port}: already in use" in second.stderr
    _check_matches(federation, "tax")


def test_port_in_use_for_mpc_is_a_clear_error(federation: Federation) -> None:
    party = federation.launcher.federation.party("social")
    federation.launcher.stop_party("social")
    with socket.socket() as holder:
        # Connections of the last MPC session may linger in TIME_WAIT on this port.
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind((party.mpc_host, party.mpc_port))
        holder.listen()
        with pytest.raises(PeerError, match="exited with code 1"):
            federation.launcher.start_party("social", timeout=30)
    log = (federation.launcher.log_dir / "social.log").read_text()
    assert f"MPC address {party.mpc_host}:{party.mpc_port}: already in use" in log
    federation.launcher.start_party("social")
    _check_matches(federation)
