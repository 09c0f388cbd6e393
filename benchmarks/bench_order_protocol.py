"""Benchmark of exact order statistics over an aligned join (engine.mpc._order).

Three processes linked by MPyC on 127.0.0.1 (plain TCP; production adds TLS). The hub A
holds ``rows`` citizens with an income (the value, which A owns), a district (20 labels)
and a filter bit; B holds the same citizens with a count of records per citizen (0 to 2);
C helps. After the hidden join (timed alone), the weight of a joined row is A's filter
times B's count (one secure multiplication, timed with the statistics), and the parties
compute, each phase timed on its own:

- ``median``: MEDIAN(income) over all joined rows;
- ``median/20``: MEDIAN(income) GROUP BY district (20 groups, a column of the hub);
- ``5 stats/20``: MIN, MAX, MEDIAN, QUANTILE_CONT 0.25 and 0.9 GROUP BY district, sharing
  one sort (the example query of the engine, with two more statistics);
- with ``--spoke-groups``, ``median/20 B``: MEDIAN(income) GROUP BY region, a column of B
  (20 one-hot columns that B adds to its side of the join, so the join carries them).

Every secure result is opened and checked, exactly, against plain Python over the pooled
plaintext (the baseline: a dict join, then a numpy sort per group). MB sent is per party
(A/B/C) during the statistics; times are the slowest party's, between round trips.

    python benchmarks/bench_order_protocol.py [--rows 10000 100000] [--bits 32]
        [--spoke-groups] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from mpyc_parties import bytes_sent, mpyc_runtime, run_parties

DUMMIES = 100
EPSILON = Fraction(1, 2)
GROUPS = 20
VALUE_BITS = 17  # incomes in [-1000, 100000)
PHASES = {  # name: (grouping: none, hub or spoke; requests as (kind, q))
    "median": ("none", [("quantile", Fraction(1, 2))]),
    "median/20": ("hub", [("quantile", Fraction(1, 2))]),
    "5 stats/20": (
        "hub",
        [
            ("min", Fraction(0)),
            ("max", Fraction(1)),
            ("quantile", Fraction(1, 2)),
            ("quantile", Fraction(1, 4)),
            ("quantile", Fraction(9, 10)),
        ],
    ),
}
SPOKE_PHASE = {"median/20 B": ("spoke", [("quantile", Fraction(1, 2))])}


def _keys(count: int) -> list[bytes]:
    return [f"citizen-{i:09d}".encode() for i in range(count)]


def tables(rows: int) -> dict[str, Any]:
    """Return both owners' data: keys, A's filter, income and district, B's counts, region."""
    import numpy as np

    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(2)
    return {
        "keys": _keys(rows),
        "filter": (rng_a.random(rows) < 0.9).astype(np.int64),
        "income": rng_a.integers(-1000, 100_000, rows),
        "district": rng_a.integers(0, GROUPS, rows),
        "count": rng_b.integers(0, 3, rows),
        "region": rng_b.integers(0, GROUPS, rows),
    }


def _count_bits(rows: int) -> int:
    return (2 * rows).bit_length()  # weights are at most 2


def plaintext(
    rows: int, phases: dict[str, Any]
) -> tuple[dict[str, float], dict[str, list[list[Fraction]]]]:
    """Return the seconds of each phase on pooled plaintext, and its exact results.

    The join is a Python dict join of the two owners' rows (as in bench_join_protocol).
    """
    import numpy as np

    data = tables(rows)
    seconds: dict[str, float] = {}
    results: dict[str, list[list[Fraction]]] = {}
    for name, (grouping, requests) in phases.items():
        start = time.perf_counter()
        count_of = dict(zip(data["keys"], data["count"].tolist(), strict=True))
        weight = np.array([count_of[k] for k in data["keys"]]) * data["filter"]
        if grouping == "spoke":
            region_of = dict(zip(data["keys"], data["region"].tolist(), strict=True))
            labels = np.array([region_of[k] for k in data["keys"]])
        else:
            labels = data["district"] if grouping == "hub" else np.zeros(rows, dtype=np.int64)
        repeated = np.repeat(data["income"], weight)
        by_group = np.repeat(labels, weight)
        results[name] = []
        for g in range(GROUPS if grouping != "none" else 1):
            ordered = np.sort(repeated[by_group == g]).tolist()
            results[name].append([_statistic(ordered, kind, q) for kind, q in requests])
        seconds[name] = time.perf_counter() - start
    return seconds, results


def _statistic(ordered: list[int], kind: str, q: Fraction) -> Fraction:
    if kind == "min":
        return Fraction(ordered[0])
    if kind == "max":
        return Fraction(ordered[-1])
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def party(spec: dict[str, Any], index: int) -> dict[str, Any]:
    """Run one party: the join, then each phase; return timings, bytes and results."""
    mpc = mpyc_runtime(index, spec["ports"], threshold=1)
    from engine.mpc._join import JoinNoise, JoinSide, aligned_join
    from engine.mpc._order import GroupColumns, GroupLabels, OrderRequest, order_statistics

    rows, phases = spec["rows"], _phases(spec["spoke_groups"])
    data = tables(rows)
    regions = [(data["region"] == g).astype(int) for g in range(GROUPS)]
    sides = {0: [data["filter"]], 1: [data["count"], *(regions if spec["spoke_groups"] else [])]}
    my_side = JoinSide(data["keys"], sides[index]) if index in sides else None
    figures: dict[str, Any] = {"results": {}}

    async def timed(name: str, call: Any, secint: Any) -> Any:
        sent, start = bytes_sent(mpc), time.perf_counter()
        result = await call
        figures[f"{name}_bytes"] = bytes_sent(mpc) - sent
        await mpc.output(secint(0))  # a round trip: every party has finished
        figures[f"{name}_s"] = time.perf_counter() - start
        return result

    async def statistics(joined: Any, grouping: str, requests: list[Any], secint: Any) -> Any:
        weights = joined.hub_columns[0] * joined.other_columns[0]
        values = labels = None
        if index == 0:
            placed = joined.hub_rows
            values = [int(data["income"][r]) if r >= 0 else 0 for r in placed]
            labels = [int(data["district"][r]) if r >= 0 else 0 for r in placed]
        result = await order_statistics(
            mpc,
            secint,
            owner=0,
            weights=weights,
            groups={
                "none": None,
                "hub": GroupLabels(GROUPS, labels),
                "spoke": GroupColumns(joined.other_columns[1:]),
            }[grouping],
            my_values=values,
            requests=[OrderRequest(kind, q) for kind, q in requests],
            value_bits=VALUE_BITS,
            count_bits=_count_bits(rows),
        )
        return result

    async def run() -> dict[str, Any]:
        await mpc.start()
        secint = mpc.SecInt(spec["bits"])
        await mpc.output(secint(0))  # a round trip: every party starts from here
        join = aligned_join(
            mpc,
            secint,
            hub=0,
            other=1,
            helper=2,
            my_side=my_side,
            hub_width=1,
            other_width=len(sides[1]),
            padded_length=rows + 2 * DUMMIES,
            noise=JoinNoise(DUMMIES, EPSILON),
        )
        joined = await timed("join", join, secint)
        for name, (grouping, requests) in phases.items():
            result = await timed(name, statistics(joined, grouping, requests, secint), secint)
            numerators = await mpc.output(result.numerators)
            figures["results"][name] = [
                [[int(n), d] for n, d in zip(row, result.denominators, strict=True)]
                for row in numerators
            ]
        figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        await mpc.shutdown()
        return figures

    return mpc.run(run())  # type: ignore[no-any-return]


def _phases(spoke_groups: bool) -> dict[str, Any]:
    return {**PHASES, **(SPOKE_PHASE if spoke_groups else {})}


def measure(rows: int, bits: int, spoke_groups: bool) -> dict[str, Any]:
    """Run the three parties for ``rows`` rows per owner; return the merged figures."""
    phases = _phases(spoke_groups)
    spec = {"rows": rows, "bits": bits, "spoke_groups": spoke_groups}
    parties = run_parties(__file__, spec, f"{rows} rows")
    baseline, want = plaintext(rows, phases)
    for p in parties:
        for name in phases:
            got = [[Fraction(n, d) for n, d in row] for row in p["results"][name]]
            if got != want[name]:
                raise SystemExit(f"wrong {name} at {rows} rows: got {got}, want {want[name]}")
    figures: dict[str, Any] = {"rows": rows, "joined_weight": _joined_weight(rows)}
    for phase in ["join", *phases]:
        figures[f"{phase}_s"] = max(p[f"{phase}_s"] for p in parties)
        figures[f"{phase}_mb_sent"] = [round(p[f"{phase}_bytes"] / 1e6, 2) for p in parties]
    figures["plaintext_s"] = baseline
    figures["peak_mb"] = [round(p["peak_mb"]) for p in parties]
    return figures


def _joined_weight(rows: int) -> int:
    data = tables(rows)
    return int((data["filter"] * data["count"]).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--bits", type=int, default=32, help="secure integer bits")
    parser.add_argument(
        "--spoke-groups", action="store_true", help="also group by 20 one-hot columns of B"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--party", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.party is not None:
        print(json.dumps(party(json.loads(args.spec.read_text()), args.party)))
        return
    print(
        f"order statistics over a hidden join, 3 parties on one machine ({os.cpu_count()} "
        f"cores), SecInt({args.bits}), D = {DUMMIES}; T = joined rows that pass A's filter "
        "(B's count per citizen, summed); times of the slowest party; MB sent per party A/B/C"
    )
    header = (
        f"{'rows':>8} {'T':>8} {'join s':>7} {'phase':>11} {'secure s':>9} "
        f"{'MB sent A/B/C':>20} {'plaintext s':>12}"
    )
    print(header)
    figures = []
    for rows in args.rows:
        result = measure(rows, args.bits, args.spoke_groups)
        figures.append(result)
        for i, phase in enumerate(_phases(args.spoke_groups)):
            sent = "/".join(f"{mb:g}" for mb in result[f"{phase}_mb_sent"])
            lead = f"{rows:>8} {result['joined_weight']:>8} {result['join_s']:>7.2f}"
            print(
                f"{lead if i == 0 else ' ' * len(lead)} {phase:>11} "
                f"{result[f'{phase}_s']:>9.2f} {sent:>20} "
                f"{result['plaintext_s'][phase]:>12.3f}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps({"groups": GROUPS, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
