"""Benchmark of the helper-aligned private join (engine.mpc._join, hidden membership).

Three processes linked by MPyC on 127.0.0.1 (plain TCP; production adds TLS): the hub A
and the other owner B hold ``rows`` rows each, half of them on common keys; C helps. For
each size it reports the time of the hidden join; of COUNT = Σ f_A·f_B and
SUM = Σ f_A·(f_B·v) on the joined rows (dot products and opening: the other side's columns
are 0 off matches); the bytes each party sent during the join; each party's peak memory;
the time of the open variant and of a 3-table star join (C owns a third table: A–B with
helper C, A–C with helper B); and the plaintext baseline (a Python dict join and the same
sums), beside the prototype's figures (docs/join-protocol.md, "Reference figures"). Every
secure result is checked against it.

    python benchmarks/bench_join_protocol.py [--rows 10000 100000] [--million]
        [--hub-columns 2] [--other-columns 2] [--bits 32] [--json results.json]

Times are the slowest party's, each phase between two round trips (all parties in step).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from mpyc_parties import bytes_sent, mpyc_runtime, run_parties

DUMMIES = 100
EPSILON = Fraction(1, 2)
PROTOTYPE = {  # docs/join-protocol.md: hidden join, open variant, 3-table star join
    100_000: "1.8-2.0 s 20 MB / 1.0-1.2 s / 4.2 s",
    1_000_000: "24.6 s 198 MB / 12.3 s / 57.8 s",
}


def _keys(first: int, count: int) -> list[bytes]:
    return [f"citizen-{i:09d}".encode() for i in range(first, first + count)]


def _side(role: str, rows: int, width: int) -> tuple[list[bytes], list[Any]]:
    """Return an owner's keys and columns: a 0/1 filter, then values already filtered.

    The owner multiplies its own filter into its values (a local step the planner pushes
    down), so that COUNT and SUM are dot products of a hub column and an other column.
    """
    import numpy as np

    first = {"hub": 0, "other": rows // 2, "third": rows // 4}[role]  # keys shared with the hub
    rng = np.random.default_rng({"hub": 1, "other": 2, "third": 3}[role])
    keep = (rng.random(rows) < 0.9).astype(np.int64)
    columns = [keep] + [keep * rng.integers(-1000, 100_000, rows) for _ in range(width - 1)]
    return _keys(first, rows), columns  # int64 arrays


def plaintext(rows: int, hub_width: int, other_width: int) -> tuple[float, list[int]]:
    """Return the seconds of the same join and sums on pooled plaintext, and the sums.

    The sums are COUNT and SUM of the pair join, then the two spokes' COUNTs of the star.
    """
    hub_keys, hub_columns = _side("hub", rows, hub_width)
    other_keys, other_columns = _side("other", rows, other_width)
    third_keys, third_columns = _side("third", rows, other_width)
    start = time.perf_counter()
    f_a, f_b, v = (column.tolist() for column in [*hub_columns[:1], *other_columns[:2]])
    row_of = {key: j for j, key in enumerate(other_keys)}
    count = total = 0
    for i, key in enumerate(hub_keys):
        j = row_of.get(key)
        if j is not None and f_a[i] and f_b[j]:
            count += 1
            total += v[j]
    seconds = time.perf_counter() - start
    f_c = third_columns[0].tolist()
    in_c = {key: m for m, key in enumerate(third_keys)}
    count_c = sum(f_a[i] * f_c[in_c[k]] for i, k in enumerate(hub_keys) if k in in_c)
    return seconds, [count, total, count, count_c]


def party(spec: dict[str, Any], index: int) -> dict[str, Any]:
    """Run one party of one size; return its timings, bytes sent and peak memory.

    Phases, each between round trips: the hidden join and COUNT + SUM on it (peak memory
    is taken here), then the open variant, then a star join of three tables (party 2 owns
    the third one, with 3/4 of its keys shared with the hub).
    """
    mpc = mpyc_runtime(index, spec["ports"], threshold=1)
    from engine.mpc._join import JoinNoise, JoinSide, Spoke, aligned_join, open_join, star_join

    rows, hub_width, other_width = spec["rows"], spec["hub_width"], spec["other_width"]
    role = {0: "hub", 1: "other", 2: "third"}[index]
    mine = JoinSide(*_side(role, rows, hub_width if index == 0 else other_width))
    pair = {
        "hub": 0,
        "other": 1,
        "helper": 2,
        "my_side": mine if index < 2 else None,
        "hub_width": hub_width,
        "other_width": other_width,
        "padded_length": rows + 2 * DUMMIES,
        "noise": JoinNoise(DUMMIES, EPSILON),
    }
    figures: dict[str, Any] = {}

    async def timed(name: str, call: Any, secint: Any) -> Any:
        sent, start = bytes_sent(mpc), time.perf_counter()
        result = await call
        figures[f"{name}_bytes"] = bytes_sent(mpc) - sent
        await mpc.output(secint(0))  # a round trip: every party has finished
        figures[f"{name}_s"] = time.perf_counter() - start
        return result

    async def run() -> dict[str, Any]:
        await mpc.start()
        secint = mpc.SecInt(spec["bits"])
        await mpc.output(secint(0))  # a round trip: every party starts from here
        joined = await timed("join", aligned_join(mpc, secint, **pair), secint)
        f_a, (f_b, v) = joined.hub_columns[0], joined.other_columns[:2]
        # The other side's columns are 0 off real matches: two dot products, no w.
        aggregate = timed("aggregate", mpc.output([f_a @ f_b, f_a @ v]), secint)
        figures["result"] = await aggregate
        figures["noisy"] = joined.noisy_match_count
        figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        del joined, f_a, f_b, v
        opened = await timed("open", open_join(mpc, secint, **pair), secint)
        figures["open_rows"] = opened.match_count
        del opened
        spokes = [Spoke(1, 2, other_width), Spoke(2, 1, other_width)]
        star = star_join(
            mpc,
            secint,
            hub=0,
            hub_width=hub_width,
            spokes=spokes,
            my_side=mine,
            padded_length=rows + 2 * DUMMIES,
            noise=JoinNoise(DUMMIES, EPSILON),
        )
        joined_star = await timed("star", star, secint)
        f_a = joined_star.hub_columns[0]
        b, c = (s.columns[0] for s in joined_star.spokes)
        figures["star_result"] = await mpc.output([f_a @ b, f_a @ c])
        await mpc.shutdown()
        return figures

    return mpc.run(run())  # type: ignore[no-any-return]


def measure(rows: int, hub_width: int, other_width: int, bits: int) -> dict[str, Any]:
    """Run the three parties for ``rows`` rows per owner; return the merged figures."""
    spec = {"rows": rows, "hub_width": hub_width, "other_width": other_width, "bits": bits}
    parties = run_parties(__file__, spec, f"{rows} rows")
    baseline, want = plaintext(rows, hub_width, other_width)
    for p in parties:
        if p["result"] + p["star_result"] != want:
            got = p["result"] + p["star_result"]
            raise SystemExit(f"wrong result at {rows} rows: got {got}, want {want}")
    figures: dict[str, Any] = {"rows": rows, "plaintext_s": baseline, "count": want[0]}
    figures["intersection"] = rows - rows // 2  # the other owner's keys start at rows // 2
    for phase in ["join", "aggregate", "open", "star"]:
        figures[f"{phase}_s"] = max(p[f"{phase}_s"] for p in parties)
        figures[f"{phase}_mb_sent"] = [round(p[f"{phase}_bytes"] / 1e6, 2) for p in parties]
    figures["peak_mb"] = [round(p["peak_mb"]) for p in parties]
    figures["helper_count"] = parties[2]["noisy"]
    figures["open_rows"] = parties[0]["open_rows"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--million", action="store_true", help="also run 10^6 rows")
    parser.add_argument("--hub-columns", type=int, default=2)
    parser.add_argument("--other-columns", type=int, default=2)
    parser.add_argument("--bits", type=int, default=32, help="secure integer bits")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--party", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.party is not None:
        print(json.dumps(party(json.loads(args.spec.read_text()), args.party)))
        return
    if min(args.hub_columns, args.other_columns) < 2:
        parser.error("--hub-columns and --other-columns: want >= 2 (a filter and a value)")
    sizes = args.rows + ([1_000_000] if args.million else [])
    print(
        f"helper-aligned join, 3 parties on one machine ({os.cpu_count()} cores), "
        f"D = {DUMMIES}, ε = {EPSILON}, SecInt({args.bits}),"
    )
    print(f"columns: hub {args.hub_columns}, other {args.other_columns}; times of the "
          "slowest party; MB sent during the hidden join")  # fmt: skip
    header = (
        f"{'rows':>9} {'hidden s':>9} {'COUNT+SUM s':>12} {'MB sent A/B/H':>18} "
        f"{'peak MB A/B/H':>15} {'open s':>7} {'star s':>7} {'plaintext s':>12}"
        "  prototype: hidden / open / star"
    )
    print(header)
    figures = []
    for rows in sizes:
        result = measure(rows, args.hub_columns, args.other_columns, args.bits)
        figures.append(result)
        sent = "/".join(f"{mb:g}" for mb in result["join_mb_sent"])
        peak = "/".join(str(mb) for mb in result["peak_mb"])
        print(
            f"{rows:>9} {result['join_s']:>9.2f} {result['aggregate_s']:>12.2f} {sent:>18} "
            f"{peak:>15} {result['open_s']:>7.2f} {result['star_s']:>7.2f} "
            f"{result['plaintext_s']:>12.3f}  {PROTOTYPE.get(rows, '-')}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"dummies": DUMMIES, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
