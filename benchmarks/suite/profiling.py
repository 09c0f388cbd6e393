"""Section ``profile``: where the coordinator's time goes, with py-spy, during a slow query.

py-spy samples the coordinator daemon and its children (the MPC worker) while the
slowest measured workload runs again; the report lists the functions with the most
samples (leaf frames of our code and of MPyC), which names the bottleneck.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from .session import Running

PY_SPY = Path(sys.executable).with_name("py-spy")


def _top(raw: Path, limit: int = 12) -> tuple[list[list[Any]], int]:
    """Return the most sampled frames (self time and inclusive time) from py-spy's raw output."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f for f in stack.split(";") if f]
        if frames:
            self_time[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames}:
            inclusive[frame] += count
    ranked = [[name, count, inclusive[name]] for name, count in self_time.most_common(limit)]
    return ranked, total


def _short(frame: str) -> str:
    """Turn ``func (path/to/module.py:12)`` into ``func (module.py)``."""
    name, _, where = frame.partition(" (")
    file = where.split(":")[0].rsplit("/", 1)[-1]
    return f"{name} ({file})"


def run_section(fed: Running, sql: str, seconds: int, workdir: Path) -> dict[str, Any]:
    """Profile ``fed``'s coordinator for ``seconds`` while ``sql`` runs; return the top frames."""
    if not PY_SPY.exists() and shutil.which("py-spy") is None:
        return {"status": "not available", "error": "py-spy is not installed"}
    spy = str(PY_SPY if PY_SPY.exists() else shutil.which("py-spy"))
    pid = fed.coordinator_pid()
    raw = workdir / "profile.txt"
    command = [spy, "record", "-p", str(pid), "--subprocesses", "-d", str(seconds)]
    command += ["-f", "raw", "-o", str(raw), "--nonblocking"]
    spying = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    worker = threading.Thread(target=lambda: fed.query(sql, 1), daemon=True)
    worker.start()
    _, err = spying.communicate(timeout=seconds + 120)
    worker.join()
    if not raw.exists():
        return {"status": "failed", "error": err.decode()[-300:]}
    top, total = _top(raw)
    return {"status": "ok", "sql": sql, "seconds": seconds, "samples": total, "top": top}
