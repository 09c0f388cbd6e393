"""What overlap control over joins costs (engine.mpc._join_overlap), in three MPyC processes.

    python benchmarks/bench_join_overlap.py [--rows 10000 100000] [--window 64] [--repeat 3]

Each party runs the engine's join job (engine.mpc._joined.run_join_job) of
``SELECT COUNT(*), SUM(v) FROM hub JOIN other`` (hub and other with ``rows`` rows, half of
them on common keys; the third party helps) three ways: without overlap control; with it
and an empty window; with it and a full window of ``--window`` kept row sets. m = 10
(sketches of 19 power sums). Prints the medians (slowest party) as JSON lines, and writes
them to ``--json`` if given. The overlap phases are in the workers' log lines too.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from mpyc_parties import mpyc_runtime, run_parties

from engine.cells import CellKind
from engine.mpc.job import CellProgram, JoinInput, JoinJob, JoinOverlap, OverlapWindow

MINIMUM = 10


def _side(role: str, rows: int) -> JoinInput:
    first = 0 if role == "hub" else rows // 2
    keys = tuple(f"citizen-{i:09d}".encode() for i in range(first, first + rows))
    count = tuple(1 for _ in keys)
    if role == "hub":
        values = tuple((i * 7919) % 100_000 for i in range(rows))
        identities = tuple(int.from_bytes(secrets.token_bytes(32), "big") for _ in keys)
        return JoinInput(keys, (count, values), identities=identities)
    return JoinInput(keys, (count,))


def _job(job_id: str, rows: int, window: int, overlap: bool) -> JoinJob:
    length = -(-(rows + 200) // 1024) * 1024
    cells = CellProgram(
        (CellKind.COUNT, CellKind.SUM),
        ((0, -1, -1, -1, -1, -1, -1, -1), (0, 1, -1, -1, -1, -1, -1, -1)),
        (MINIMUM, MINIMUM),
    )
    control = None
    if overlap:
        control = JoinOverlap(
            minimum=MINIMUM,
            window=window,
            sketches=((0, 0),),
            bits=(length.bit_length(),),
            sizes=(MINIMUM,),
            cell_sketch=(0, 0),
        )
    return JoinJob(
        job_id=job_id,
        field_bits=200,
        join_bits=128 if overlap else 96,  # as the engine: the overlap field when it fits
        hub=0,
        hub_width=2,
        spokes=((1, 2, 1),),
        padded_length=length,
        noise=(100, 1, 2),
        terms=((0, 0), (1, 0)),
        cells=cells,
        overlap=control,
    )


def _window(mpc: Any, kept: int, q: int) -> OverlapWindow | None:
    if not kept:
        return None
    # Cost only: every party holds the same tags; the shares are random (not a sharing).
    tags = tuple(range(1, kept + 1))
    rows = tuple(tuple(secrets.randbelow(q) for _ in range(2 * MINIMUM - 1)) for _ in range(kept))
    return OverlapWindow(q, tags, rows)


async def _party(mpc: Any, spec: dict[str, Any]) -> dict[str, Any]:
    from engine.mpc._join_overlap import OVERLAP_BITS
    from engine.mpc._joined import run_join_job
    from engine.mpc._release import PowerPool

    await mpc.start()
    q = mpc.SecInt(OVERLAP_BITS).field.order
    pool = PowerPool()
    out: dict[str, Any] = {}
    for rows in spec["rows"]:
        roles = {0: "hub", 1: "other"}
        side = _side(roles[mpc.pid], rows) if mpc.pid in roles else None
        cases = {"join": (False, 0), "overlap, empty window": (True, 0)}
        cases[f"overlap, {spec['window']} kept"] = (True, spec["window"])
        for name, (overlap, kept) in cases.items():
            times = []
            for r in range(spec["repeat"]):
                job = _job(f"bench-{rows}-{name}-{r}", rows, spec["window"], overlap)
                secint = mpc.SecInt(job.field_bits)
                join_type = mpc.SecInt(job.join_bits)
                await mpc.barrier()
                start = time.perf_counter()
                inputs = (side, (), _window(mpc, kept, q))
                await run_join_job(mpc, secint, job, inputs, pool, join_type)
                await mpc.barrier()
                times.append(time.perf_counter() - start)
            out[f"{rows} rows: {name}"] = statistics.median(times)
    await mpc.shutdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--party", type=int)
    parser.add_argument("--spec", type=Path)
    args = parser.parse_args()
    if args.party is not None:
        if args.party == 0:
            logging.basicConfig(level=logging.INFO, format="party 0: %(message)s")
        spec = json.loads(args.spec.read_text())
        mpc = mpyc_runtime(args.party, spec["ports"], threshold=1)
        print(json.dumps(mpc.run(_party(mpc, spec))))
        return
    spec = {"rows": args.rows, "window": args.window, "repeat": args.repeat}
    results = run_parties(__file__, spec, "the join overlap benchmark")
    slowest = {key: max(r[key] for r in results) for key in results[0]}
    for key, seconds in slowest.items():
        print(json.dumps({"case": key, "median_seconds": round(seconds, 2)}))
    if args.json:
        args.json.write_text(json.dumps(slowest, indent=2))


if __name__ == "__main__":
    main()
