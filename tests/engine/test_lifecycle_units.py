"""The pieces of a query's life without daemons: its state machine, the cost estimate and
limits, the rate-limited log of unauthenticated attempts, the config keys."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine.config import Limits, load_federation
from engine.cost import Cost, check, is_large
from engine.daemon.attempts import RefusedAttempts
from engine.daemon.lifecycle import Ending, Lives, Stage
from engine.errors import CapacityError, ConfigError
from engine.federation_init import create_federation


def test_a_life_ends_once_and_asks_for_one_abort_only_when_anchored() -> None:
    lives = Lives()
    life = lives.begin("q1", "alice")
    assert lives.is_live("q1")
    life.advance(Stage.PREPARING)
    assert life.fail("PeerError: down") is False  # not on the ledger: nothing to abort
    anchored = lives.begin("q2", "alice")
    anchored.index = 7
    anchored.advance(Stage.ANCHORED)
    assert anchored.fail("PeerError: down") is True
    assert anchored.fail("PeerError: again") is False  # exactly one abort
    anchored.succeed()
    assert anchored.ending is Ending.ABORTED and anchored.reason == "PeerError: down"
    lives.retire(anchored)
    assert not lives.is_live("q2") and lives.failure("q2") == "PeerError: down"


def test_giving_up_cancels_before_mpc_and_not_after() -> None:
    lives = Lives()
    early = lives.begin("q1", "alice")
    early.advance(Stage.COLLECTED)
    assert early.give_up("client gave up after 1 s") and early.dropped
    late = lives.begin("q2", "alice")
    late.advance(Stage.RUNNING)
    assert not late.give_up("client gave up after 1 s") and not late.dropped
    late.advance(Stage.ANCHORED)  # never backward
    assert late.stage is Stage.RUNNING


def test_limits_name_what_was_exceeded() -> None:
    limits = Limits(max_result_groups=10, max_result_cells=20, max_secure_operations=1000)
    check(Cost(10, 20, 1000), limits, "alice", 0)
    for cost, in_flight, name in (
        (Cost(11, 11, 1), 0, "federation.max_result_groups"),
        (Cost(10, 21, 1), 0, "federation.max_result_cells"),
        (Cost(1, 1, 600), 500, "federation.max_secure_operations"),
    ):
        with pytest.raises(CapacityError, match=name):
            check(cost, limits, "alice", in_flight)
    assert is_large(Cost(1, 1, 201), Limits(large_job_operations=200))
    assert not is_large(Cost(1, 1, 200), Limits(large_job_operations=200))


def test_unauthenticated_attempts_log_one_line_per_source_per_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts = RefusedAttempts("tax", every=10.0)
    caplog.set_level(logging.WARNING, "engine.daemon.attempts")
    for second in range(12):
        attempts.refused("analyst:mallory@ipv4:10.0.0.9", "AuthError", "signature: no", second)
    attempts.refused("analyst:eve@ipv4:10.0.0.8", "AuthError", "request.issued_at: old", 3)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert "(AuthError: signature)" in lines[0]
    assert "9 more from it since the last line" in lines[1]
    assert attempts.status() == "unauthenticated attempts refused: 13 (10 not logged)"


def test_the_large_lane_port_and_the_limits_come_from_federation_toml(tmp_path: Path) -> None:
    create_federation(tmp_path, ["a", "b", "c"], ["alice"], name="f", base_port=25000)
    path = tmp_path / "federation.toml"
    federation = load_federation(path)
    first = federation.parties[0]
    assert first.mpc_link("large") == (first.mpc_host, first.mpc_port + 1000)
    assert federation.limits == Limits()
    text = path.read_text().replace(
        "[federation]\n", "[federation]\nmax_result_groups = 50\nlarge_job_operations = 7\n", 1
    )
    text = text.replace(
        f'mpc_address = "127.0.0.1:{first.mpc_port}"',
        f'mpc_address = "127.0.0.1:{first.mpc_port}"\nmpc_large_address = "127.0.0.1:26001"',
    )
    path.write_text(text)
    federation = load_federation(path)
    assert federation.limits.max_result_groups == 50
    assert federation.limits.large_job_operations == 7
    assert federation.parties[0].mpc_link("large") == ("127.0.0.1", 26001)
    path.write_text(text.replace("max_result_groups = 50", "max_result_groups = 0"))
    with pytest.raises(ConfigError, match="limit below 1"):
        load_federation(path)
