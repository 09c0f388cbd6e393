"""A party daemon whose declared dataset cannot be loaded (issue 16, item 5).

It refuses to start, naming the dataset and its file, unless started with
``--allow-unavailable``; then its ready line and the federation catalog list the dataset
as unavailable, with the reason, to every analyst. Real daemon processes.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.client import Client
from engine.federation_init import DatasetSpec, create_federation
from engine.launch import free_port_block

from .conftest import Federation


@pytest.fixture
def fed(tmp_path: Path) -> Path:
    root = tmp_path / "fed"
    spec = DatasetSpec(
        "benefits", "data/benefits.csv", {"region": {"policy": "group_by", "domain": "data"}}
    )
    create_federation(
        root,
        ["registry", "tax", "social"],
        [],
        base_port=free_port_block(3),
        datasets={"social": [spec]},
    )
    return root


def _serve(party_dir: Path, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "party", "serve", "--config", str(party_dir), *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_missing_data_file_stops_the_daemon_and_names_dataset_and_file(fed: Path) -> None:
    process = _serve(fed / "social")
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError("the daemon started (want it to refuse)") from None
    assert process.returncode == 1
    assert "Traceback" not in stderr
    (line,) = [x for x in stderr.splitlines() if x.startswith("jointstat: ")]
    assert "social.benefits" in line
    assert str(fed / "social" / "data" / "benefits.csv") in line
    assert "--allow-unavailable" in line


def test_allow_unavailable_starts_and_says_so_in_the_ready_line(fed: Path) -> None:
    process = _serve(fed / "social", "--allow-unavailable")
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        ready = ""
        while time.monotonic() < deadline and not ready:
            line = process.stderr.readline()
            if not line:
                break
            if " ready on " in line:
                ready = line
        assert "datasets: none; unavailable: benefits" in ready, ready
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0


def test_analysts_see_an_unavailable_dataset_and_why(federation: Federation) -> None:
    # The shared federation starts with --allow-unavailable (social.missing has no file).
    with Client(federation.identity) as client:
        listed = {f"{d['owner']}.{d['name']}": d for d in client.datasets()}
    missing = listed["social.missing"]
    assert missing["available"] is False
    assert "no data file" in missing["problem"]
    assert listed["tax.income"]["available"] is True and not listed["tax.income"]["problem"]
