"""Run jointstat's benchmark suite: one command, baselines, plots, real network delays.

    python benchmarks/run.py [--quick | --smoke] [--only SECTION ...] [--out DIR]

Writes ``DIR/results.json``, ``DIR/report.md`` and PNG plots (default DIR:
``benchmarks/results/<date>/``). Sections: aggregates, joins, histogram, median,
throughput, ledger, parties, network, profile (see benchmarks/suite/plan.py). Every secure
figure stands beside DuckDB on the pooled plaintext and, where it applies, a naive MPyC
program (benchmarks/naive_mpyc.py). The full run takes under an hour on 2 cores,
``--quick`` a few minutes, ``--smoke`` (for the test) about a minute.

Network namespaces (section "network") need root and iproute2; they are removed on exit,
on failure and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from suite import latency, ledger, network, parties, plots, profiling, report, targets, throughput  # noqa: E402
from suite.data import build  # noqa: E402
from suite.netns import remove_stale  # noqa: E402
from suite.plan import PLANS, SECTIONS, Plan  # noqa: E402
from suite.session import running  # noqa: E402
from suite.workloads import JOIN3  # noqa: E402

from engine.oracle import PlaintextOracle  # noqa: E402


def progress(line: str) -> None:
    """Print a progress line with the time since start."""
    print(f"[{time.perf_counter() - STARTED:7.1f} s] {line}", flush=True)


STARTED = time.perf_counter()
NEEDS_MAIN = ("aggregates", "joins", "histogram", "median", "throughput", "profile")


def _guarded(name: str, call: Any) -> dict[str, Any]:
    """Run one section; a failure becomes that section's row, not the suite's end."""
    progress(f"section {name} ...")
    began = time.perf_counter()
    try:
        body: dict[str, Any] = call()
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        traceback.print_exc()
        body = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    body["section_seconds"] = time.perf_counter() - began
    progress(f"section {name} done in {body['section_seconds']:.0f} s")
    return body


def run(plan: Plan, only: list[str], workdir: Path) -> dict[str, Any]:
    """Run the selected sections of ``plan`` in ``workdir``; return the sections' bodies."""
    sections: dict[str, Any] = {}
    wanted = [s for s in SECTIONS if s in only]
    if any(s in NEEDS_MAIN for s in wanted):
        progress("building the main federation (3 parties) and its datasets ...")
        fixture = build(
            workdir / "main",
            analysts=max(plan.analysts),
            rows=plan.rows,
            citizens=tuple(sorted(set(plan.citizens) | set(plan.naive_join_rows))),
        )
        oracle = PlaintextOracle(fixture.files)
        progress("starting the daemons on loopback ...")
        with running(fixture) as fed:
            fed.query(f"SELECT COUNT(*) FROM tax.rows_{plan.rows[0]}")  # warm the MPC session
            for name in wanted:
                if name in latency.SECTION_WORKLOADS:
                    sections[name] = _guarded(
                        name, lambda n=name: latency.run_section(n, fed, oracle, plan, progress)
                    )
                elif name == "throughput":
                    sections[name] = _guarded(
                        name, lambda: throughput.run_section(fed, oracle, plan, progress)
                    )
            if "profile" in wanted:
                n = max(c for c in plan.citizens if c <= 100_000)
                sections["profile"] = _guarded(
                    "profile",
                    lambda: profiling.run_section(fed, JOIN3.sql(n), plan.rows[0], workdir),
                )
    if "ledger" in wanted:
        sections["ledger"] = _guarded("ledger", lambda: ledger.run_section(workdir, plan, progress))
    if "parties" in wanted:
        sections["parties"] = _guarded(
            "parties", lambda: parties.run_section(workdir, plan, progress)
        )
    if "network" in wanted:
        sections["network"] = _guarded(
            "network", lambda: network.run_section(workdir, plan, progress)
        )
    return sections


def _meta(mode: str, argv: list[str]) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(HERE.parent), "status", "--porcelain", "engine", "ledger"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split("\n")
    return {
        "uncommitted": [line[3:] for line in dirty if line.strip()],  # engine/ledger changes
        "date": datetime.date.today().isoformat(),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "mode": mode,
        "command": " ".join(["python", "benchmarks/run.py", *argv]),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "mpyc": importlib.metadata.version("mpyc"),  # importing mpyc would parse our argv
        "commit": commit or "unknown",
        "load_start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the suite, write results.json, report.md and plots."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only these sections: {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--out", type=Path, help="output directory (default benchmarks/results/<date>)"
    )
    parser.add_argument("--keep", type=Path, help="keep federations and daemon logs here")
    parser.add_argument(
        "--render", type=Path, metavar="DIR", help="only rewrite DIR's report and plots"
    )
    args = parser.parse_args(argv)
    if args.render:
        results = json.loads((args.render / "results.json").read_text())
        results["targets"] = targets.evaluate(results)
        _write(results, args.render)
        return 0
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    plan = PLANS[mode]
    meta = _meta(mode, argv)
    out = args.out or HERE / "results" / meta["date"]
    out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop daemons, namespaces
    progress(f"jointstat benchmark suite, mode {mode}, writing to {out}")
    try:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            sections = run(plan, args.only or list(SECTIONS), args.keep)
        else:
            with tempfile.TemporaryDirectory(prefix="jsbench-") as tmp:
                sections = run(plan, args.only or list(SECTIONS), Path(tmp))
    finally:
        remove_stale()
    meta["seconds"] = time.perf_counter() - STARTED
    results: dict[str, Any] = {"meta": meta, "plan": plan.__dict__, "sections": sections}
    results["targets"] = targets.evaluate(results)
    _write(results, out)
    return 0


def _write(results: dict[str, Any], out: Path) -> None:
    """Write results.json, the plots and report.md into ``out``; print the targets."""
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    written = plots.write_all(results, out)
    if not plots.available():
        progress("matplotlib is not installed: no plots (pip install -e '.[bench]')")
    (out / "report.md").write_text(report.write(results, written))
    progress(f"wrote {out / 'results.json'}, {out / 'report.md'} and {len(written)} plots")
    for t in results["targets"]:
        progress(f"  target: {t['target']}: {t.get('got', '–')} ({t['status']})")


if __name__ == "__main__":
    sys.exit(main())
