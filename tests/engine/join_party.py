"""One party of the join tests, run as a process: ``python join_party.py SPEC.json INDEX``.

It plays the MPC worker's part: it imports MPyC (nothing else in ``engine/`` may), links
with the other parties on 127.0.0.1 over plain TCP, runs every scenario of the spec with
:mod:`engine.mpc._join`, computes on the joined shares the aggregates the engine will
compute, opens them, and writes ``result_<INDEX>.json`` (opened values, the helper's noisy
count, whether any share vector looked like plaintext, bytes the join sent) and
``received_<INDEX>.bin`` (every byte it received from its peers) into the spec's directory.

The tables are generated from each scenario's seed by :func:`scenario_tables`, which the
test also calls to compute the expected values in plain Python. Importing this module does
not import MPyC.

Scenarios with ``"kind": "order"`` (tests/engine/test_order_protocol.py) run a join of the
tables of :func:`order_tables` and then :func:`engine.mpc._order.order_statistics` on it,
and report the opened counts and numerators, and the frames (receiver, payload size) this
party sent during the order statistics.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Table:
    """One owner's side: unique keys and payload columns (lists of ints)."""

    keys: list[bytes]
    columns: list[list[int]]


def scenario_tables(scenario: dict[str, Any]) -> list[Table]:
    """Return the scenario's tables: [hub, other] for a pair, [hub, b, c] for a star.

    Hub columns: filter bit, a value, then one-hot group columns. Other columns: filter
    bit, a value, a second value. ``sizes`` are the rows per table and ``overlaps`` the
    number of the hub's keys each other table also holds.
    """
    rng = random.Random(scenario["seed"])
    sizes, overlaps = scenario["sizes"], scenario["overlaps"]
    low, high, groups = scenario["low"], scenario["high"], scenario["groups"]
    universe = rng.sample(range(10**9), sum(sizes))
    hub_keys = [_key(i) for i in universe[: sizes[0]]]
    fresh = iter(universe[sizes[0] :])
    tables = []
    group_of = [rng.randrange(groups) for _ in hub_keys]
    hub_columns = [
        [int(rng.random() < 0.8) for _ in hub_keys],
        [rng.randint(low, high) for _ in hub_keys],
    ] + [[int(g == k) for g in group_of] for k in range(groups)]
    tables.append(Table(hub_keys, hub_columns))
    for size, overlap in zip(sizes[1:], overlaps, strict=True):
        keys = rng.sample(hub_keys, overlap) + [_key(next(fresh)) for _ in range(size - overlap)]
        rng.shuffle(keys)
        columns = [
            [int(rng.random() < 0.7) for _ in keys],
            [rng.randint(low, high) for _ in keys],
            [rng.randint(low, high) for _ in keys],
        ]
        tables.append(Table(keys, columns))
    return tables


def order_tables(scenario: dict[str, Any]) -> list[Table]:
    """Return an order-statistics scenario's tables: [hub, spoke] or [hub, b, c].

    Hub columns: filter bit (joined), value and group label (the hub's own, not joined).
    Spoke columns (joined): a count per key (the weight it contributes, 0 to
    ``max_count``), then one-hot columns of the spoke's group label.
    """
    rng = random.Random(scenario["seed"])
    sizes, overlaps = scenario["sizes"], scenario["overlaps"]
    low, high, keep = scenario["low"], scenario["high"], scenario["hub_keep"]
    universe = rng.sample(range(10**9), sum(sizes))
    hub_keys = [_key(i) for i in universe[: sizes[0]]]
    fresh = iter(universe[sizes[0] :])
    hub_columns = [
        [int(rng.random() < keep) for _ in hub_keys],
        [rng.randint(low, high) for _ in hub_keys],
        [rng.randrange(scenario["hub_labels"]) for _ in hub_keys],
    ]
    tables = [Table(hub_keys, hub_columns)]
    for size, overlap in zip(sizes[1:], overlaps, strict=True):
        keys = rng.sample(hub_keys, overlap) + [_key(next(fresh)) for _ in range(size - overlap)]
        rng.shuffle(keys)
        group = [rng.randrange(scenario["spoke_groups"]) for _ in keys]
        columns = [[rng.randint(0, scenario["max_count"]) for _ in keys]]
        columns += [[int(g == k) for g in group] for k in range(scenario["spoke_groups"])]
        tables.append(Table(keys, columns))
    return tables


def _key(i: int) -> bytes:
    return f"citizen-{i:09d}".encode()


def main() -> None:
    spec_path, index = Path(sys.argv[1]), int(sys.argv[2])
    spec = json.loads(spec_path.read_text())
    sys.argv = [sys.argv[0], "-I", str(index), "-T", "1", "--no-log"]
    for port in spec["ports"]:
        sys.argv += ["-P", f"127.0.0.1:{port}"]

    from mpyc import asyncoro
    from mpyc.runtime import mpc

    received: list[bytes] = []
    data_received = asyncoro.MessageExchanger.data_received

    def recording(self: Any, data: bytes) -> None:
        received.append(bytes(data))
        data_received(self, data)

    asyncoro.MessageExchanger.data_received = recording
    send = asyncoro.MessageExchanger.send

    def counting(self: Any, pc: int, payload: bytes) -> None:
        FRAMES.append((self.peer_pid, len(payload)))
        send(self, pc, payload)

    asyncoro.MessageExchanger.send = counting
    create_server = mpc._loop.create_server

    async def loopback_server(factory: Any, host: Any = None, *args: Any, **kw: Any) -> Any:
        return await create_server(factory, host or "127.0.0.1", *args, **kw)

    mpc._loop.create_server = loopback_server  # MPyC would bind every interface
    results = mpc.run(_run_all(mpc, spec["scenarios"]))
    directory = spec_path.parent
    (directory / f"result_{index}.json").write_text(json.dumps(results))
    (directory / f"received_{index}.bin").write_bytes(b"".join(received))


async def _run_all(mpc: Any, scenarios: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from engine.errors import EngineError

    await mpc.start()
    results: dict[str, Any] = {}
    for scenario in scenarios:
        try:
            results[scenario["name"]] = await _run(mpc, scenario)
        except EngineError as exc:
            results[scenario["name"]] = {"error": type(exc).__name__}
    await mpc.shutdown()
    return results


FRAMES: list[tuple[int, int]] = []  # (receiver, payload bytes) of every message sent


def _bytes_sent(mpc: Any) -> int:
    return sum(p.protocol.nbytes_sent for p in mpc.parties if p.pid != mpc.pid)


async def _run(mpc: Any, scenario: dict[str, Any]) -> dict[str, Any]:
    from engine.mpc._join import JoinNoise, JoinSide, Spoke, open_join, star_join

    if scenario.get("kind") == "order":
        return await _run_order(mpc, scenario)
    if scenario.get("kind") == "overlap":
        return await _run_overlap(mpc, scenario)
    secint = mpc.SecInt(scenario["bits"])
    roles = scenario["roles"]  # [hub, owner of table 1, ...]
    helpers = scenario["helpers"]
    tables = scenario_tables(scenario)
    if scenario.get("duplicate_hub_key") and mpc.pid == roles[0]:
        hub = tables[0]
        tables[0] = Table(hub.keys[:-1] + hub.keys[:1], hub.columns)
    mine = [t for t, party in zip(tables, roles, strict=True) if party == mpc.pid]
    my_side = JoinSide(mine[0].keys, mine[0].columns) if mine else None
    length = scenario["length"] + scenario.get("length_skew", {}).get(str(mpc.pid), 0)
    noise = JoinNoise(scenario["dummies"], Fraction(*scenario["epsilon"]))
    spokes = [
        Spoke(owner=o, helper=h, width=len(t.columns))
        for o, h, t in zip(roles[1:], helpers, tables[1:], strict=True)
    ]
    if scenario.get("open"):
        (helper,) = helpers
        joined = await open_join(
            mpc,
            secint,
            hub=roles[0],
            other=roles[1],
            helper=helper,
            my_side=my_side,
            hub_width=len(tables[0].columns),
            other_width=len(tables[1].columns),
            padded_length=length,
            noise=noise,
        )
        arrays = joined.hub_columns + joined.other_columns
        return {
            "opened": await mpc.output(_open_aggregates(joined)),
            "count": joined.match_count,
            "plain_looking": sum([await _looks_plain(mpc, a) for a in arrays]),
        }
    before = _bytes_sent(mpc)
    star = await star_join(
        mpc,
        secint,
        hub=roles[0],
        hub_width=len(tables[0].columns),
        spokes=spokes,
        my_side=my_side,
        padded_length=length,
        noise=noise,
    )
    sent = _bytes_sent(mpc) - before  # by the join alone (MPyC pickles, sizes vary)
    arrays = star.hub_columns + [a for s in star.spokes for a in [*s.columns, s.matched]]
    return {
        "opened": await mpc.output(_aggregates(star)),
        "noisy": [s.noisy_match_count for s in star.spokes],
        "plain_looking": sum([await _looks_plain(mpc, a) for a in arrays]),
        "length": len(star.spokes[0].matched),
        "sent": sent,
        "hub_rows": await _hub_rows_hold(mpc, star, mine[0] if mpc.pid == roles[0] else None),
    }


async def _hub_rows_hold(mpc: Any, star: Any, hub: Table | None) -> bool | None:
    """Return at the hub whether ``hub_rows`` places its rows (None elsewhere).

    Opens the hub's value column (a test only): position i must hold the value of the
    hub's row ``hub_rows[i]``, or 0 on a padding row.
    """
    opened = await mpc.output(star.hub_columns[1])
    if hub is None:
        return None if star.hub_rows is None else False
    rows = [int(r) for r in star.hub_rows]
    placed = sorted(r for r in rows if r >= 0) == list(range(len(hub.keys)))
    want = [hub.columns[1][r] if r >= 0 else 0 for r in rows]
    return placed and [int(v) for v in opened] == want


async def _run_order(mpc: Any, scenario: dict[str, Any]) -> dict[str, Any]:
    """Join the scenario's tables, then compute order statistics of the hub's values."""
    from engine.mpc._join import JoinNoise, JoinSide, Spoke, star_join
    from engine.mpc._order import GroupColumns, GroupLabels, OrderRequest, order_statistics

    secint = mpc.SecInt(scenario["bits"])
    roles, helpers = scenario["roles"], scenario["helpers"]
    tables = order_tables(scenario)
    joined = [Table(tables[0].keys, tables[0].columns[:1]), *tables[1:]]
    mine = [t for t, party in zip(joined, roles, strict=True) if party == mpc.pid]
    star = await star_join(
        mpc,
        secint,
        hub=roles[0],
        hub_width=1,
        spokes=[
            Spoke(owner=o, helper=h, width=len(t.columns))
            for o, h, t in zip(roles[1:], helpers, tables[1:], strict=True)
        ],
        my_side=JoinSide(mine[0].keys, mine[0].columns) if mine else None,
        padded_length=scenario["length"],
        noise=JoinNoise(scenario["dummies"], Fraction(*scenario["epsilon"])),
    )
    weights = star.hub_columns[0]
    for spoke in star.spokes:
        weights = weights * spoke.columns[0]
    hub = tables[0] if mpc.pid == roles[0] else None
    values = labels = None
    if hub is not None:
        assert star.hub_rows is not None  # the hub knows its shuffle
        value = hub.columns[1] if "bad_value" not in scenario else [1 << 40] * len(hub.keys)
        values = [value[r] if r >= 0 else 0 for r in star.hub_rows]
        labels = [hub.columns[2][r] if r >= 0 else 0 for r in star.hub_rows]
    groups: Any = None
    if scenario["grouping"] == "labels":
        groups = GroupLabels(scenario["hub_groups"], labels)
    elif scenario["grouping"] == "columns":
        groups = GroupColumns(star.spokes[0].columns[1:])
    requests = [OrderRequest(kind, Fraction(*q)) for kind, q in scenario["requests"]]
    first_frame = len(FRAMES)
    result = await order_statistics(
        mpc,
        secint,
        owner=roles[0],
        weights=weights,
        groups=groups,
        my_values=values,
        requests=requests,
        value_bits=scenario["value_bits"],
        count_bits=scenario["count_bits"],
        levels=scenario.get("levels"),
    )
    frames = FRAMES[first_frame:]
    return {
        "counts": [int(v) for v in await mpc.output(result.counts)],
        "numerators": [[int(v) for v in row] for row in await mpc.output(result.numerators)],
        "denominators": list(result.denominators),
        "frames": frames,
        "plain_looking": sum(
            [await _looks_plain(mpc, a) for a in [result.counts, result.numerators.reshape(-1)]]
        ),
    }


def overlap_sketches(scenario: dict[str, Any], q: int) -> tuple[list[list[int]], list[list[int]]]:
    """Return an overlap scenario's new and kept sketches (power sums of random key sets).

    ``pairs`` lists (weight changes, base size): the kept set is a random base set of keys
    with weights 1..3, the new one the same with ``changes`` keys added, removed or given
    another weight.
    """
    rng = random.Random(scenario["seed"])
    terms = 2 * scenario["m"] - 1
    new, kept = [], []
    for changes, size in scenario["pairs"]:
        base = {rng.randrange(1, q): rng.randint(1, 3) for _ in range(size)}
        other = dict(base)
        for key in rng.sample(sorted(base), min(changes, len(base))):
            other[key] = rng.choice([0, other[key] + 1])
        for _ in range(changes - min(changes, len(base))):
            other[rng.randrange(1, q)] = 1
        kept.append([sum(w * pow(x, k, q) for x, w in base.items()) % q for k in range(terms)])
        new.append([sum(w * pow(x, k, q) for x, w in other.items()) % q for k in range(terms)])
    return new, kept


async def _run_overlap(mpc: Any, scenario: dict[str, Any]) -> dict[str, Any]:
    """Run the secure overlap decision on sketches input by party 0; open the bits."""
    import numpy as np

    from engine.mpc._join_keys import agree
    from engine.mpc._join_overlap import (
        OVERLAP_BITS,
        KeyedShares,
        close_pairs,
        convert_small,
        zero_bits,
    )

    secint = mpc.SecInt(OVERLAP_BITS)
    q = secint.field.order
    new, kept = overlap_sketches(scenario, q)
    terms = 2 * scenario["m"] - 1

    async def shared(rows: list[list[int]]) -> Any:
        flat = np.array([v for row in rows for v in row], dtype=object)
        array = mpc.input(secint.array(flat if mpc.pid == 0 else flat * 0), senders=0)
        return (await mpc.gather(array)).value.reshape(len(rows), terms)

    new_shares, kept_shares = await shared(new), await shared(kept)
    rows = []
    for i in range(len(new)):  # each pair alone: one new row against one kept row
        bit = await close_pairs(
            mpc, secint, new_shares[i : i + 1], kept_shares[i : i + 1], scenario["m"], "t"
        )
        rows.append(bit)
    keys = await agree(mpc, bytes(32), False, "overlap test")  # resharing under pair keys
    keyed = KeyedShares(mpc, secint, keys)
    every = await close_pairs(mpc, secint, new_shares, kept_shares, scenario["m"], "t", keyed)
    zeros = await zero_bits(mpc, secint, np.array([0, 1, q - 1, 12345], dtype=object))
    small = mpc.SecInt(32)
    values = mpc.input(small.array(np.array([0, 5, 1000], dtype=object)), senders=0)
    converted = await convert_small(mpc, small, secint, (await mpc.gather(values)).value, bits=10)

    # Windows: party 2 lacks the tag 7 that the others kept.
    from engine.mpc._join_overlap import _agree
    from engine.mpc.job import OverlapWindow

    tags = (5, 7, 9) if mpc.pid != 2 else (5, 9)
    held, complete = await _agree(mpc, secint, 4, OverlapWindow(q, tags, ((),) * len(tags)))
    same, all_equal = await _agree(mpc, secint, 4, OverlapWindow(q, (5, 9), ((), ())))

    async def opened(vector: Any) -> list[int]:
        out = await mpc.output(secint.field.array(np.asarray(vector) % q, check=False))
        return [int(v) for v in out.value]

    return {
        "pairs": await opened(np.concatenate(rows)),
        "any": await opened(every),
        "zeros": await opened(zeros),
        "converted": await opened(converted),
        "windows": [sorted(held), complete, sorted(same), all_equal],
        "modulus": q,
    }


def _aggregates(star: Any) -> list[Any]:
    """Return the sums the engine would compute; see ``expected`` in the test."""
    hub = star.hub_columns
    f_a, a1, groups = hub[0], hub[1], hub[2:]
    out = []
    if len(star.spokes) == 1:
        (spoke,) = star.spokes
        w, (f_b, v, b2) = spoke.matched, spoke.columns
        wf = w * f_a * f_b
        wfv = wf * v
        out += [wf.sum(), wfv.sum(), (w * a1 * b2).sum(), (w * f_a).sum(), ((1 - w) * f_a).sum()]
        out += [(wfv * g).sum() for g in groups] + [(wf * g).sum() for g in groups]
        # Without w: the other side's columns are 0 on hub rows without a real match.
        fv = f_b * v
        out += [f_a @ f_b, f_a @ fv, a1 @ b2, v.sum(), a1.sum(), *[g @ fv for g in groups]]
        out += [w.sum()]
    else:
        (w1, (f_b, v_b, _)), (w2, (f_c, v_c, _)) = [(s.matched, s.columns) for s in star.spokes]
        both = w1 * w2 * f_a * f_b * f_c
        out += [both.sum(), (both * v_b).sum(), (both * v_c).sum()]
        out += [(w1 * f_a * f_b * v_b).sum(), (w2 * f_a * f_c * v_c).sum(), (w1 * a1 * v_b).sum()]
        out += [(both * v_c * g).sum() for g in groups]
        out += [(f_a * f_b) @ f_c, a1 @ v_b, a1 @ v_c]  # without w
        out += [w1.sum(), w2.sum()]
    return out


def _open_aggregates(joined: Any) -> list[Any]:
    """Return sums over the matched rows, one with a predicate comparing the two sides."""
    (f_a, a1, *_), (f_b, v, b2) = joined.hub_columns, joined.other_columns
    f = f_a * f_b
    return [f.sum(), (f * v).sum(), (a1 * b2).sum(), ((a1 < v) * f).sum()]


async def _looks_plain(mpc: Any, array: Any) -> bool:
    """Return True if this party's share vector is small integers (a plaintext leak)."""
    shares = (await mpc.gather(array)).value
    modulus = array.sectype.field.order
    centered = [min(int(s), modulus - int(s)) for s in shares]
    return bool(centered) and max(centered) < 1 << 40


if __name__ == "__main__":
    main()
