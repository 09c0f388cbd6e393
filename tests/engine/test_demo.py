"""``jointstat demo --directory DIR`` (issue 16, items 7 and 8): it ends with the exact
commands that start the kept federation again and query it, and those commands work."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from engine.launch import LocalFederation, free_port_block


def test_demo_prints_commands_that_start_and_query_the_kept_federation(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "demo", "--citizens", "100", "--directory",
         str(root), "--base-port", str(free_port_block(3))],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "(1 rows" not in done.stdout and "(1 row, " in done.stdout  # one-row queries
    tail = done.stdout.split(f"The federation is kept in {root}.", 1)[1]
    commands = [shlex.split(line) for line in tail.splitlines() if line.startswith("  jointstat ")]
    serve = [c for c in commands if c[1:3] == ["party", "serve"]]
    assert [c[-1] for c in serve] == ["&"] * 3
    assert {Path(c[4]).name for c in serve} == {"registry", "tax", "social"}
    others = [c for c in commands if c[1:3] != ["party", "serve"]]
    assert [c[1] for c in others] == ["datasets", "query", "ledger"]
    launcher = LocalFederation(root, log_dir=tmp_path / "logs")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "engine.cli", *c[1:-1]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for c in serve
    ]
    try:
        for party in ("registry", "tax", "social"):
            launcher.wait_healthy(party, 60)
        for command in others:
            ran = subprocess.run(
                [sys.executable, "-m", "engine.cli", *command[1:]],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert ran.returncode == 0, ran.stderr
            assert ran.stdout.strip(), command
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
