"""Section ``profile``: where the time goes, sampled with py-spy in every party.

Two cases: one run of a 3-agency join, and small queries from 4 concurrent analysts.
One py-spy per party samples its daemon and its children (the MPC worker) for the whole
case (stopped with SIGINT when it ends); the report lists, per party, the functions with
the most samples (self time, and time with callees), which names the bottleneck.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .session import Running

PY_SPY = Path(sys.executable).with_name("py-spy")


def top_frames(raw: Path, limit: int = 10) -> tuple[list[list[Any]], list[list[Any]], int]:
    """Return the most sampled frames and the sample total.

    First list: by self samples (name, self, with callees); second: jointstat's own
    functions (engine/, ledger/) by samples with callees, leaving out those present in
    nearly every sample (entry points).
    """
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    ours: set[str] = set()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        raw_frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [_short(f) for f in raw_frames]
        ours.update(
            short
            for short, full in zip(frames, raw_frames, strict=True)
            if "(engine/" in full or "(ledger/" in full
        )
        if frames:
            self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    ranked = [[name, count, inclusive[name]] for name, count in self_time.most_common(limit)]
    own = sorted(
        (name for name in ours if inclusive[name] < 0.9 * total),
        key=lambda name: -inclusive[name],
    )[:limit]
    return ranked, [[name, self_time[name], inclusive[name]] for name in own], total


def _short(frame: str) -> str:
    """Turn ``func (path/to/module.py:12)`` into ``func (module.py)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})"


def _spy() -> str | None:
    if PY_SPY.exists():
        return str(PY_SPY)
    return shutil.which("py-spy")


def profile(fed: Running, action: Callable[[], Any], workdir: Path, label: str) -> dict[str, Any]:
    """Sample every party of ``fed`` while ``action`` runs; return the top frames per party."""
    spy = _spy()
    if spy is None:
        return {
            "status": "not available",
            "error": "py-spy is not installed (pip install -e '.[bench]')",
        }
    spies = {}
    for name, process in fed.launcher.processes.items():
        raw = workdir / f"profile-{label}-{name}.txt"
        command = [spy, "record", "-p", str(process.pid), "--subprocesses", "-f", "raw"]
        spies[name] = (
            raw,
            subprocess.Popen(
                [*command, "-o", str(raw), "--nonblocking", "-r", "50"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            ),
        )
    time.sleep(1.0)  # py-spy attaches
    began = time.perf_counter()
    outcome = action()
    seconds = time.perf_counter() - began
    for _, spying in spies.values():
        spying.send_signal(signal.SIGINT)
    parties: dict[str, Any] = {}
    for name, (raw, spying) in spies.items():
        _, err = spying.communicate(timeout=120)
        if not raw.exists():
            parties[name] = {"error": err.decode()[-300:]}
            continue
        top, own, total = top_frames(raw)
        parties[name] = {"samples": total, "top": top, "ours": own}
    return {"status": "ok", "seconds": seconds, "outcome": outcome, "parties": parties}


def run_section(fed: Running, sql: str, small_rows: int, workdir: Path) -> dict[str, Any]:
    """Profile one run of ``sql`` (a join), then 4 analysts sending small queries for 5 s."""
    fed.query(sql)  # warm, so that the profile shows the steady state
    join = profile(fed, lambda: fed.query(sql)["ok"], workdir, "join")
    join["what"] = f"one run of `{sql}`"
    spec = {"analysts": 4, "duration": 5.0, "rows": small_rows}
    small = profile(fed, lambda: fed.command({"throughput": spec})["queries"], workdir, "small")
    small["what"] = (
        f"4 analysts sending small aggregates over tax.rows_{small_rows} for 5 s "
        "(outcome: queries answered)"
    )
    return {"status": "ok", "cases": [join, small]}
