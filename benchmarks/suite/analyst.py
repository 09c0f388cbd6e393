"""The analyst side of the suite, as a separate process (in the analysts' namespace if any).

    python -m benchmarks.suite.analyst IDENTITY_DIR

Reads one JSON command per line on stdin and answers one JSON line on stdout:

- ``{"sql": S, "repeat": k}``: run S k times with one client; answer
  ``{"ok": true, "elapsed": [s, ...], "result": <Result.to_json() of the last run>}`` or
  ``{"ok": false, "kind": "UnsupportedError", "error": "..."}`` at the first failure;
- ``{"throughput": {"analysts": a, "duration": d, "rows": n}}``: run bench_engine's small
  query loop in ``a`` analyst processes (multiprocessing spawn) for d seconds; answer
  ``{"ok": true, "queries": q, "wall": s, "latency": [s, ...]}``.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

from engine.client import Client
from engine.errors import EngineError


def run_sql(client: Client, sql: str, repeat: int, timeout: float) -> dict[str, Any]:
    """Run ``sql`` ``repeat`` times and return the timings and the last result."""
    elapsed = []
    result = None
    for _ in range(repeat):
        try:
            result = client.query(sql, timeout=timeout)
        except EngineError as exc:
            return {"ok": False, "kind": type(exc).__name__, "error": str(exc)}
        elapsed.append(result.elapsed)
    assert result is not None
    return {"ok": True, "elapsed": elapsed, "result": result.to_json()}


def throughput(identity: Path, analysts: int, duration: float, rows: int) -> dict[str, Any]:
    """Run bench_engine's analyst loop in ``analysts`` processes; return counts and latencies."""
    from bench_engine import _analyst

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    base = identity.parent
    workers = [
        context.Process(target=_analyst, args=(str(base / f"analyst{i}"), rows, duration, i, queue))
        for i in range(analysts)
    ]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=duration + 300) for _ in workers]
    for worker in workers:
        worker.join()
    return {
        "ok": True,
        "queries": sum(r[0] for r in results),
        "wall": time.perf_counter() - began,
        "latency": [x for r in results for x in r[1]],
    }


def main() -> None:
    """Serve commands from stdin until it closes."""
    identity = Path(sys.argv[1])
    with Client(identity) as client:
        for line in sys.stdin:
            command = json.loads(line)
            if "throughput" in command:
                spec = command["throughput"]
                answer = throughput(identity, spec["analysts"], spec["duration"], spec["rows"])
            else:
                answer = run_sql(client, command["sql"], command["repeat"], command["timeout"])
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
