"""The fault suite: kill -9 and SIGSTOP of each party and of the sequencer at each stage.

Each case holds one query at a known stage — before Prepare, after its approval is
anchored, during Collect, during its MPC job, while its results are being anchored — with
a test pause (``JOINTSTAT_TEST_PAUSE``, see engine/daemon/pauses.py) or by waiting for the
job to start, then kills the target (``kill -9``, restarted a second later) or freezes it
(SIGSTOP, resumed three seconds later). Afterwards every ledger copy verifies, the copies
are identical, every request on the ledger ends in results or exactly one abort, and the
next query succeeds.

The default run takes a representative subset (one case per stage, both kinds of fault,
parties and the sequencer); ``-m slow`` runs the whole matrix (2 faults x 3 targets x 5
stages). These tests restart daemons of the shared federation and leave it running.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from engine.errors import EngineError

from .conftest import Federation
from .lifecycle_checks import PARTIES, check_ledgers, records, settle

SQL = "SELECT sector, COUNT(*), AVG(income) FROM tax.income GROUP BY sector"
MPC_SQL = "SELECT slot, COUNT(*), SUM(x) FROM registry.wide WHERE slot < 4000 GROUP BY slot"
PAUSE_SECONDS = 3
FROZEN_SECONDS = 3.0
STAGES = ("before-prepare", "approved", "collect", "mpc", "anchor-results")
FAULTS = ("kill", "stop")


@dataclass(frozen=True)
class Case:
    fault: str  # "kill" (-9, then restart) or "stop" (SIGSTOP, then SIGCONT)
    target: str
    stage: str

    @property
    def id(self) -> str:
        return f"{self.fault}-{self.target}-{self.stage}"

    def pauser(self) -> str | None:
        """Return the party whose test pause holds the query at this stage (None: no
        pause)."""
        if self.stage in ("approved", "anchor-results"):
            return "registry"  # the sequencer's own stages
        if self.stage == "collect":
            return self.target if self.target != "registry" else "tax"
        return None


def _log(federation: Federation, party: str) -> str:
    return (federation.launcher.log_dir / f"{party}.log").read_text()


def _restart(federation: Federation, party: str, env: dict[str, str] | None = None) -> None:
    if party in federation.launcher.processes:
        federation.launcher.stop_party(party, timeout=60)
    federation.launcher.start_party(party, extra_env=env)


def _inject(federation: Federation, case: Case) -> None:
    launcher = federation.launcher
    if case.fault == "kill":
        launcher.kill_party(case.target)
        time.sleep(1.0)
        launcher.start_party(case.target)
    else:
        launcher.suspend_party(case.target)
        time.sleep(FROZEN_SECONDS)
        launcher.resume_party(case.target)


def run_case(federation: Federation, case: Case) -> dict[str, Any]:
    """Run one case; return what the analyst got ("result" or "error") and the query id."""
    pauser = case.pauser()
    stage = case.stage
    if pauser is not None:
        _restart(federation, pauser, {"JOINTSTAT_TEST_PAUSE": f"{stage}:{PAUSE_SECONDS}"})
    watcher, marker = (
        (case.target, "MPC job of")
        if stage == "mpc"
        else (pauser or case.target, f"test pause: {stage}")
    )
    seen = _log(federation, watcher).count(marker)
    outcome: dict[str, Any] = {}
    sql = MPC_SQL if stage == "mpc" else SQL
    coordinator = "tax" if case.target == "registry" else "registry"

    def ask() -> None:
        try:
            with federation.client(coordinator) as client:
                signed, private = client.sign(sql)
                outcome["query_id"] = signed.query_id
                outcome["result"] = client.send(signed, private, timeout=120)
        except EngineError as exc:
            outcome["error"] = exc

    if stage == "before-prepare":
        # The fault comes first; the query is sent while the target is down or frozen.
        fault = threading.Thread(target=_inject, args=(federation, case))
        fault.start()
        time.sleep(0.2)
        ask()
        fault.join(60)
    else:
        thread = threading.Thread(target=ask)
        thread.start()
        deadline = time.monotonic() + 60
        while _log(federation, watcher).count(marker) == seen:
            assert time.monotonic() < deadline, f"{case.id}: the query never reached {stage}"
            time.sleep(0.05)
        time.sleep(0.3 if stage == "mpc" else 0.5)
        _inject(federation, case)
        thread.join(150)
        assert not thread.is_alive(), f"{case.id}: the analyst got no answer"
    if pauser is not None and not (case.fault == "kill" and case.target == pauser):
        _restart(federation, pauser)  # without the pause again (a killed one restarted so)
    assert "result" in outcome or "error" in outcome, outcome
    settle(federation, timeout=90)  # the next query succeeds
    check_ledgers(federation)
    query_id = outcome.get("query_id")
    found = records(federation).get(query_id or "", [])
    if found:
        latest = found[-1]
        assert latest.outcome != "pending"
        if "result" in outcome:
            assert latest.committed and not latest.aborts
        outcome["ledger"] = latest.outcome
    if case.fault == "kill" and stage in ("collect", "mpc"):
        # A query cannot finish without a party that died holding its scans or shares
        # (killed later, a witness comes back in time to cosign the results).
        assert "error" in outcome, f"{case.id}: got a result"
        assert found and found[-1].aborts, f"{case.id}: no abort anchored"
    print(f"{case.id}: {outcome.get('error') or 'result'} | ledger: {outcome.get('ledger')}")
    return outcome


SUBSET = (
    Case("kill", "tax", "before-prepare"),
    Case("stop", "registry", "approved"),
    Case("kill", "social", "collect"),
    Case("kill", "registry", "mpc"),
    Case("stop", "tax", "mpc"),
    Case("kill", "social", "anchor-results"),
)
MATRIX = tuple(
    Case(fault, target, stage)
    for fault in FAULTS
    for target in PARTIES
    for stage in STAGES
    if Case(fault, target, stage) not in SUBSET
)


@pytest.mark.parametrize("case", SUBSET, ids=[c.id for c in SUBSET])
def test_fault(federation: Federation, case: Case) -> None:
    run_case(federation, case)


@pytest.mark.slow
@pytest.mark.parametrize("case", MATRIX, ids=[c.id for c in MATRIX])
def test_fault_matrix(federation: Federation, case: Case) -> None:
    run_case(federation, case)
