"""Benchmark of the share codec (engine.mpc.share_codec) against MPyC's pickles.

Two parts, each a median of ``--repeats`` runs:

- ``codec``: encoding and decoding one vector of uniform field elements, the codec beside
  ``pickle.dumps``/``pickle.loads`` of the same numpy object array (the baseline: what MPyC
  0.11 sends by default), for 10^5 and 10^6 elements of 64-, 128- and 256-bit fields;
- ``mpc``: three MPyC processes on 127.0.0.1 (plain TCP; production adds TLS) run a
  vectorized ``mpc.input`` from every party and one ``mpc._reshare`` (the products of
  engine.mpc._release) of ``--elements`` secure integers, once with MPyC's pickles and
  once as the worker runs (share codec, and the worker's framing of peer messages).
  Times (wall clock and CPU) are the slowest party's, medians over ``--rounds``
  alternating runs of both (the machine may be shared).

    python benchmarks/bench_share_codec.py [--elements 100000] [--repeats 5] [--rounds 3]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import pickle
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from mpyc_parties import mpyc_runtime, run_parties

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.mpc import share_codec
from engine.mpc._peer_links import (
    PeerMarshal,
    Refusals,
    receive_frames,
    tag_buffered,
)

BITS = (64, 128, 256)
SIZES = (10**5, 10**6)
SECINT_BITS = 64  # MPyC picks a field of about 96 bits for it


def _median(run: Callable[[], object], repeats: int) -> float:
    """Return the median CPU seconds of ``run()`` (CPU: the machine may be shared)."""
    times = []
    for _ in range(repeats):
        began = time.process_time()
        run()
        times.append(time.process_time() - began)
    return statistics.median(times)


def codec_table(repeats: int) -> list[dict[str, Any]]:
    """Return the codec's and pickle's times per field size and vector length."""
    rows = []
    for bits in BITS:
        for size in SIZES:
            vector = np.empty(size, dtype=object)
            vector[:] = [secrets.randbits(bits - 1) for _ in range(size)]
            pickled = pickle.dumps(vector)
            coded = share_codec.encode(vector)
            assert share_codec.decode(coded).tolist() == vector.tolist()  # type: ignore[union-attr]
            runs = {
                "pickle_dumps_ms": lambda v=vector: pickle.dumps(v),
                "pickle_loads_ms": lambda b=pickled: pickle.loads(b),
                "codec_encode_ms": lambda v=vector: share_codec.encode(v),
                "codec_decode_ms": lambda b=coded: share_codec.decode(b),
            }
            row: dict[str, Any] = {"bits": bits, "elements": size}
            row |= {name: 1e3 * _median(run, repeats) for name, run in runs.items()}
            rows.append(row | {"pickle_bytes": len(pickled), "codec_bytes": len(coded)})
    return rows


def _harden(refusals: Refusals) -> None:
    """Install what the worker installs: its framing of peer messages and the codec."""
    from mpyc import asyncoro

    class Framed(asyncoro.MessageExchanger):  # type: ignore[misc]
        def data_received(self, data: bytes) -> None:
            if self.peer_pid is not None:
                receive_frames(self, data, refusals)
                return
            super().data_received(data)
            if self.peer_pid is not None:
                tag_buffered(self)

    asyncoro.MessageExchanger = Framed
    import mpyc.runtime

    mpyc.runtime.pickle = PeerMarshal(refusals)


def party(index: int, spec: dict[str, Any]) -> None:
    """Run one party of the ``mpc`` part; print its times as JSON."""
    mpc = mpyc_runtime(index, spec["ports"])
    if spec["marshal"] == "codec":
        _harden(Refusals(["a", "b", "c"]))  # MPyC looks both up when it uses them
    size, repeats = spec["elements"], spec["repeats"]

    async def main() -> dict[str, float]:
        await mpc.start()
        secint = mpc.SecInt(SECINT_BITS)
        field = secint.field
        own = np.empty(size, dtype=object)
        own[:] = [secrets.randbelow(1 << 40) for _ in range(size)]
        times: dict[str, list[float]] = {
            k: [] for k in ("input", "input_cpu", "reshare", "reshare_cpu")
        }
        for _ in range(repeats):
            await mpc.barrier()
            began, cpu = time.perf_counter(), time.process_time()
            parts = await mpc.gather(mpc.input(secint.array(own), senders=[0, 1, 2]))
            times["input"].append(time.perf_counter() - began)
            times["input_cpu"].append(time.process_time() - cpu)
            local = (parts[0].value * parts[1].value) % field.order  # a degree-2t sharing
            await mpc.barrier()
            began, cpu = time.perf_counter(), time.process_time()
            await mpc._reshare(field.array(local, check=False))
            times["reshare"].append(time.perf_counter() - began)
            times["reshare_cpu"].append(time.process_time() - cpu)
        await mpc.shutdown()
        return {f"{k}_s": statistics.median(v) for k, v in times.items()}

    print(json.dumps(mpc.run(main())))


def mpc_table(size: int, repeats: int, rounds: int) -> list[dict[str, Any]]:
    """Return, per marshalling, the medians over ``rounds`` (pickle and codec alternating)
    of the slowest party's input and reshare times, wall clock and CPU."""
    runs: dict[str, list[dict[str, float]]] = {"pickle": [], "codec": []}
    for _ in range(rounds):
        for marshal, out in runs.items():
            spec = {"marshal": marshal, "elements": size, "repeats": repeats}
            parties = run_parties(__file__, spec, f"{marshal} input/reshare")
            out.append({k: max(p[k] for p in parties) for k in parties[0]})
    return [
        {
            "marshal": marshal,
            "elements": size,
            **{k: statistics.median(r[k] for r in out) for k in out[0]},
        }
        for marshal, out in runs.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--elements", type=int, default=10**5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--party", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.party is not None:
        party(args.party, json.loads(args.spec.read_text()))
        return
    codec = codec_table(args.repeats)
    print("codec vs pickle, one vector of uniform field elements (median CPU ms)")
    print(f"{'bits':>5} {'elements':>9} {'dumps':>8} {'encode':>8} {'loads':>8} {'decode':>8}")
    for r in codec:
        print(
            f"{r['bits']:>5} {r['elements']:>9} {r['pickle_dumps_ms']:>8.1f} "
            f"{r['codec_encode_ms']:>8.1f} {r['pickle_loads_ms']:>8.1f} "
            f"{r['codec_decode_ms']:>8.1f}"
        )
    mpc = mpc_table(args.elements, args.repeats, args.rounds)
    print(f"\n3 MPyC parties, SecInt({SECINT_BITS}) arrays (median s, slowest party)")
    print(f"{'marshal':>8} {'elements':>9} {'input':>8} {'cpu':>8} {'reshare':>8} {'cpu':>8}")
    for r in mpc:
        print(
            f"{r['marshal']:>8} {r['elements']:>9} {r['input_s']:>8.3f} {r['input_cpu_s']:>8.3f} "
            f"{r['reshare_s']:>8.3f} {r['reshare_cpu_s']:>8.3f}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"codec": codec, "mpc": mpc}, indent=2))


if __name__ == "__main__":
    main()
