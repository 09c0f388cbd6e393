"""The naive MPyC baseline: secret-share every row, then compute the statistic in MPC.

What a straightforward MPyC program does without jointstat's planning: each owner reads
its own table (DuckDB, plaintext), computes per row a 0/1 filter bit, a one-hot group
column per public group label and its values (scaled to integers, and their squares),
and secret-shares all of it as secure arrays; the parties then compute, per group, the
count, sum and sum of squares as dot products, and open them. AVG and STDDEV_SAMP are
derived from the opened count, sum and sum of squares (so this baseline is, if anything,
optimistic: a fully private one would also divide in MPC). Joins are all-pairs: for a hub
table of m rows and a spoke of n rows, an m×n matrix of secure equalities of the ids, then
matrix products. Three processes (one per party), plain TCP on 127.0.0.1.

    python benchmarks/naive_mpyc.py SPEC.json      # runs the 3 parties, prints JSON

SPEC: ``{"mode": "union"|"join", "parts": [{"party": i, "file": F, "rows": n,
"select": "SELECT ... FROM t"}], "groups": [labels] | null, "outputs": [["count"],
["avg", "v"], ["stddev", "v"]], "scale": {"v": 100}, "bits": 96}``. ``select`` runs over the
owner's table ``t`` and yields ``f`` (filter, 0/1), ``g`` (group label, hub or union parts
only), ``id`` (join key, join mode) and value columns named in ``outputs``; in join mode
part 0 is the hub (it holds ``g``) and the others are joined to it on ``id``.
Output: ``{"rows": [[label, value, ...]], "seconds": s, "wall": s, "mb_sent": [...],
"peak_mb": [...]}``; ``seconds`` is the slowest party's time from the first round trip to
the opened result; ``wall`` includes starting the processes and the MPC links.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mpyc_parties import bytes_sent, free_ports, mpyc_runtime


def owner_columns(part: dict[str, Any], spec: dict[str, Any], hub: bool) -> list[list[int]]:
    """Return an owner's columns (integers), in the order every party expects them.

    Order: [id] (join mode), f, one-hot group columns (hub or union part, if grouped),
    then, per value column of this part, the scaled value and its square.
    """
    import duckdb

    connection = duckdb.connect()
    connection.execute("CREATE TABLE t AS SELECT * FROM read_csv(?, header = true)", [part["file"]])
    cursor = connection.execute(part["select"])
    names = [d[0] for d in cursor.description or ()]
    rows = cursor.fetchall()
    table = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    columns: list[list[int]] = []
    if spec["mode"] == "join":
        columns.append([int(v) for v in table["id"]])
    columns.append([int(bool(v)) for v in table["f"]])
    if spec["groups"] is not None and hub:
        for label in spec["groups"]:
            columns.append([int(v == label) for v in table["g"]])
    for name in value_names(part, spec):
        scaled = [
            0 if v is None else round(float(v) * spec["scale"].get(name, 1)) for v in table[name]
        ]
        columns += [scaled, [v * v for v in scaled]]
    return columns


def value_names(part: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """Return the value columns that ``part`` holds (named in outputs and in its select)."""
    wanted = [o[1] for o in spec["outputs"] if len(o) > 1]
    return [name for name in dict.fromkeys(wanted) if f" AS {name}" in part["select"]]


def width(part: dict[str, Any], spec: dict[str, Any], hub: bool) -> int:
    """Return how many columns ``part`` shares (public: every party needs the shapes)."""
    groups = len(spec["groups"]) if spec["groups"] is not None and hub else 0
    return (spec["mode"] == "join") + 1 + groups + 2 * len(value_names(part, spec))


def party(spec: dict[str, Any], index: int) -> dict[str, Any]:
    """Run party ``index``: share, compute, open; return its figures."""
    import numpy as np

    mpc = mpyc_runtime(index, spec["ports"])

    secint = mpc.SecInt(spec["bits"])
    parts = spec["parts"]
    union = spec["mode"] == "union"

    async def share(k: int) -> Any:
        part, hub = parts[k], union or k == 0
        shape = (width(part, spec, hub), part["rows"])
        if part["party"] == index:
            local = np.array(owner_columns(part, spec, hub), dtype=object).reshape(shape)
        else:
            local = np.zeros(shape, dtype=object)
        return mpc.input(secint.array(local), senders=part["party"])

    async def run() -> dict[str, Any]:
        await mpc.start()
        await mpc.output(secint(0))  # every party starts the clock here
        began = time.perf_counter()
        shared = [await share(k) for k in range(len(parts))]
        groups = spec["groups"]
        if union:
            table = mpc.np_hstack(shared)  # rows of every part, one after another
            f, rest = table[0], table[1:]
            onehot, values = (rest[: len(groups)], rest[len(groups) :]) if groups else (None, rest)
            weight = f
            sums = [weight * v for v in values]
            names = [n for part in parts[:1] for n in value_names(part, spec)]
        else:
            hub = shared[0]
            f = hub[1]
            g = len(groups) if groups else 0
            onehot = hub[2 : 2 + g] if groups else None
            values_hub = hub[2 + g :]
            matched = []
            for k in range(1, len(parts)):
                spoke = shared[k]
                equal = mpc.np_equal(
                    mpc.np_reshape(hub[0], (-1, 1)), mpc.np_reshape(spoke[0], (1, -1))
                )
                carried = equal @ mpc.np_transpose(spoke[1:])  # hub rows × (f, values)
                matched.append(mpc.np_transpose(carried))
            weight = f
            for m in matched:
                weight = weight * m[0]  # ids are unique: E@f is the matched row's filter
            sums = [weight * v for v in values_hub]
            sums += [weight * v for m in matched for v in m[1:]]
            names = [n for part in parts for n in value_names(part, spec)]
        columns = [weight, *sums]
        if onehot is None:  # no GROUP BY: one group of every row
            onehot = secint.array(np.ones((1, weight.shape[0]), dtype=object))
        stacked = mpc.np_vstack([mpc.np_reshape(c, (1, -1)) for c in columns])
        totals = onehot @ mpc.np_transpose(stacked)  # groups × (count, sum, sum sq, ...)
        opened = await mpc.output(totals)
        seconds = time.perf_counter() - began
        sent = bytes_sent(mpc)
        await mpc.shutdown()
        return {
            "totals": [[int(v) for v in row] for row in np.array(opened).tolist()],
            "names": names,
            "seconds": seconds,
            "bytes_sent": sent,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }

    return mpc.run(run())  # type: ignore[no-any-return]


def rows_of(figures: dict[str, Any], spec: dict[str, Any]) -> list[list[Any]]:
    """Turn opened per-group totals into SQL rows: [label?, output, ...]."""
    names = figures["names"]
    rows = []
    labels = spec["groups"] if spec["groups"] is not None else [None]
    for label, totals in zip(labels, figures["totals"], strict=True):
        count = totals[0]
        if count == 0 and spec["groups"] is not None:
            continue  # a group with no rows is not in SQL's answer
        row: list[Any] = [] if label is None else [label]
        for output in spec["outputs"]:
            if output[0] == "count":
                row.append(count)
                continue
            i = 1 + 2 * names.index(output[1])
            scale = spec["scale"].get(output[1], 1)
            total, squares = totals[i], totals[i + 1]
            if output[0] == "sum":
                row.append(total / scale)
            elif output[0] == "avg":
                row.append(total / count / scale if count else None)
            else:  # stddev: sample standard deviation
                variance = (
                    (count * squares - total * total) / (count * (count - 1)) if count > 1 else None
                )
                row.append(None if variance is None else math.sqrt(max(variance, 0)) / scale)
        rows.append(row)
    return rows


def measure(spec: dict[str, Any], directory: Path, timeout: float = 3600) -> dict[str, Any]:
    """Run the three parties on ``spec`` and return the merged figures (see module doc)."""
    spec = {**spec, "ports": free_ports(3)}
    path = directory / "naive-spec.json"
    path.write_text(json.dumps(spec))
    began = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--party", str(i), str(path)], stdout=subprocess.PIPE
        )
        for i in range(3)
    ]
    try:
        outputs = [p.communicate(timeout=timeout)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    if any(p.returncode for p in processes):
        raise RuntimeError(
            f"naive MPyC: a party failed (exit codes {[p.returncode for p in processes]})"
        )
    wall = time.perf_counter() - began
    parties = [json.loads(out.decode().strip().splitlines()[-1]) for out in outputs]
    return {
        "rows": rows_of(parties[0], spec),
        "seconds": max(p["seconds"] for p in parties),
        "wall": wall,
        "mb_sent": [round(p["bytes_sent"] / 1e6, 3) for p in parties],
        "peak_mb": [round(p["peak_mb"], 1) for p in parties],
    }


def main() -> None:
    """Run the parties of a spec (or, with ``--party i``, party i alone) and print JSON."""
    if sys.argv[1] == "--party":
        spec = json.loads(Path(sys.argv[3]).read_text())
        print(json.dumps(party(spec, int(sys.argv[2]))))
        return
    spec_path = Path(sys.argv[1])
    print(json.dumps(measure(json.loads(spec_path.read_text()), spec_path.parent)))


if __name__ == "__main__":
    main()
