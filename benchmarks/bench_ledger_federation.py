"""Ledger benchmark over the network: cosigned appends/s, per-query overhead, receipts.

Starts real party daemons on loopback and reports:

(a) cosigned appends/s: the sequencer's ledger writer (the daemon's own code, run in this
    process as the sequencer) appends signed entries in batches of 1..1000; each batch is
    checked into the two other parties' mirrors and cosigned by all three witnesses over
    gRPC with mutual TLS;
(b) per-query ledger overhead: the same queries, one analyst, on a federation with the
    ledger on and one with it off, both running and taking turns query by query so that
    both see the same machine load (median and p95 of each, and their difference);
(c) receipt verification time (offline, from a real receipt bundle);
(d) full verification time of the sequencer's log after (a).

    python benchmarks/bench_ledger_federation.py [--appends 20000] [--queries 60] [--out F]

Targets (2 cores): >= 2,000 cosigned appends/s with batching; overhead <= 10 ms median;
receipt verification <= 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_engine import disable_ledger

from engine.anchor import keys
from engine.anchor.bundle import verify_bundle
from engine.anchor.party_ledger import CosignOutcome, PartyLedger
from engine.anchor.writer import CosignCall, LedgerWriter
from engine.client import Client
from engine.config import load_federation, load_party
from engine.demo.synthetic import PARTIES, generate
from engine.federation_init import create_federation
from engine.launch import LocalFederation, free_port_block
from engine.pki import load_signing_key
from engine.rpc import jointstat_pb2 as pb
from engine.rpc.peers import Peers

QUERY = (
    "SELECT sector, COUNT(*), AVG(income) FROM tax.income WHERE region = 'North' GROUP BY sector"
)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def make_federation(root: Path, citizens: int, ledger: bool) -> None:
    data = generate(root, citizens, seed=3)
    create_federation(
        root,
        list(PARTIES),
        ["alice"],
        name="bench",
        base_port=free_port_block(3),
        datasets=data.datasets,
    )
    if not ledger:
        disable_ledger(root)


async def appends(root: Path, total: int) -> tuple[list[dict[str, float]], Path]:
    """Run the sequencer's writer in this process against the other two daemons."""
    config = load_party(root / "registry" / "party.toml")
    assert config.log_key is not None
    ledger = PartyLedger(config, load_signing_key(config.signing_key))
    peers = Peers(config)

    async def remote(name: str, call: CosignCall) -> CosignOutcome:
        request = pb.CosignRequest(
            entries=call.entries,
            from_size=call.from_size,
            note=call.note,
            old_size=call.old_size,
            proof=call.proof,
            apply_only=call.apply_only,
            cosigned_note=call.cosigned_note,
        )
        reply = await peers.call(name, lambda s: s.Cosign(request, timeout=60))
        return CosignOutcome(reply.cosignature, reply.mirror_size, reply.witness_size)

    writer = LedgerWriter(config.federation, ledger, load_signing_key(config.log_key), remote)
    writer.start()
    rows = []
    for batch in (1, 10, 100, 1000):
        count = min(total, max(batch * 20, 200)) if batch < 1000 else total
        entries = [
            ledger.abort(secrets.token_hex(16), secrets.token_bytes(32), "benchmark entry")
            for _ in range(count)
        ]
        began = time.perf_counter()
        for start in range(0, count, batch):
            await writer.append(entries[start : start + batch])
        seconds = time.perf_counter() - began
        rows.append(
            {"batch": batch, "entries": count, "seconds": seconds, "appends_per_s": count / seconds}
        )
        print(
            f"  batch {batch:>5}: {count / seconds:8.0f} cosigned appends/s "
            f"({count} entries, {seconds:.1f} s)",
            flush=True,
        )
    await writer.stop()
    await peers.close()
    path = Path(ledger.store.path)
    ledger.close()
    return rows, path


def query_latencies(
    roots: dict[bool, Path], count: int
) -> tuple[dict[bool, list[float]], dict[str, object] | None]:
    """Time ``count`` queries on each federation, alternating between them query by query
    (in turn first), so that both see the same load from whatever else the machine runs."""
    samples: dict[bool, list[float]] = {ledger: [] for ledger in roots}
    receipt = None
    with contextlib.ExitStack() as stack:
        clients = {
            ledger: stack.enter_context(Client(root / "analysts" / "alice"))
            for ledger, root in roots.items()
        }
        for client in clients.values():
            client.query(QUERY)
            client.query(QUERY)
        order = list(clients)
        for _ in range(count):
            for ledger in order:
                result = clients[ledger].query(QUERY)
                samples[ledger].append(result.elapsed)
                receipt = result.receipt or receipt
            order.reverse()
    return samples, receipt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--citizens", type=int, default=20_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="jointstat-ledger-bench-") as tmp:
        root = Path(tmp)
        print(
            "(b) per-query overhead, one analyst, same queries, alternating between a "
            "federation with the ledger off and one with it on:",
            flush=True,
        )
        roots = {ledger: root / ("on" if ledger else "off") for ledger in (False, True)}
        for ledger, where in roots.items():
            make_federation(where, args.citizens, ledger)
        with LocalFederation(roots[False]), LocalFederation(roots[True]):
            latencies, receipt = query_latencies(roots, args.queries)
        for ledger, samples in latencies.items():
            print(
                f"  ledger {'on ' if ledger else 'off'}: "
                f"median {statistics.median(samples) * 1000:6.1f} ms"
                f"  p95 {percentile(samples, 0.95) * 1000:6.1f} ms",
                flush=True,
            )
        paired = [on - off for on, off in zip(latencies[True], latencies[False], strict=True)]
        overhead = {
            "median_ms": (statistics.median(latencies[True]) - statistics.median(latencies[False]))
            * 1000,
            "p95_ms": (percentile(latencies[True], 0.95) - percentile(latencies[False], 0.95))
            * 1000,
            "paired_median_ms": statistics.median(paired) * 1000,
        }
        print(
            f"  overhead: median {overhead['median_ms']:.1f} ms, p95 {overhead['p95_ms']:.1f} ms "
            f"(median of the paired differences {overhead['paired_median_ms']:.1f} ms)"
        )
        report["overhead"] = overhead
        report["latency_ms"] = {
            ("on" if k else "off"): {
                "median": statistics.median(v) * 1000,
                "p95": percentile(v, 0.95) * 1000,
            }
            for k, v in latencies.items()
        }

        print("(c) receipt verification (offline):", flush=True)
        federation = load_federation(root / "on" / "federation.toml")
        assert receipt is not None
        times = []
        for _ in range(200):
            began = time.perf_counter()
            verify_bundle(receipt, federation)
            times.append(time.perf_counter() - began)
        print(
            f"  median {statistics.median(times) * 1000:.2f} ms, "
            f"p95 {percentile(times, 0.95) * 1000:.2f} ms"
        )
        report["receipt_verify_ms"] = {
            "median": statistics.median(times) * 1000,
            "p95": percentile(times, 0.95) * 1000,
        }

        print("(a) cosigned appends over gRPC (3 witnesses, 2 remote mirrors):", flush=True)
        where = root / "appends"
        make_federation(where, 200, True)
        launcher = LocalFederation(where)
        for party in ("tax", "social"):
            launcher.start_party(party, wait=False)
        for party in ("tax", "social"):
            launcher.wait_healthy(party, 60)
        try:
            rows, path = asyncio.run(appends(where, args.appends))
        finally:
            launcher.stop()
        report["appends"] = rows

        print("(d) full verification of the sequencer's log:", flush=True)
        from ledger import LedgerStore

        fed = load_federation(where / "federation.toml")
        ring, quorum = keys.keyring(fed), keys.quorum(fed)
        with LedgerStore(path) as store:
            began = time.perf_counter()  # the keys are loaded: time only the verification
            result = store.verify(ring, quorum)
            seconds = time.perf_counter() - began
            print(
                f"  {store.size} entries in {seconds:.1f} s "
                f"({store.size / seconds:.0f} entries/s), valid={result.ok}"
            )
            report["full_verify"] = {"entries": store.size, "seconds": seconds, "ok": result.ok}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
