"""Benchmark the ledger library alone: cosigned appends, receipt checks, full verification.

Everything runs in one process on SQLite files in a temporary directory on disk (WAL,
synchronous=FULL), with a federation of three parties, one analyst, a sequencer key and
three in-process witnesses (each with its own SQLite database). Authors' entry signatures
are made before timing starts: signing is the authors' work, not the ledger's.

Measured, each beside a plaintext baseline of the same work:

- appends/s by batch size: Sequencer.append (checks every author signature, one SQLite
  transaction with the signed checkpoint) then Sequencer.collect from 3 witnesses (each
  checks the log signature and the consistency proof and commits its state) until the
  quorum is met; baseline: the same entry bytes inserted in a plain SQLite table with the
  same durability settings, one transaction per batch;
- receipt verification: Receipt.parse + Receipt.verify (quorum signatures and inclusion
  proof); baseline: the inclusion proof alone;
- full verification of an N-entry log (LedgerStore.verify); baseline: reading every entry
  and hashing it; plus inclusion/consistency proof generation from that store.

    python benchmarks/bench_ledger_library.py [--verify-size 100000] [--out results.json]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import (
    DatasetRegistered,
    Decision,
    Entry,
    KeyRing,
    LedgerStore,
    NoteSigner,
    QueryAborted,
    QueryDecided,
    QueryRequested,
    Quorum,
    Receipt,
    ResultCommitted,
    Role,
    Sequencer,
    Witness,
    commit_result,
    encode_entry,
    leaf_hash,
    sign_entry,
    verify_inclusion,
)

ORIGIN = "bench.jointstat.example/ledger"
PARTIES = ("agency-a", "agency-b", "bureau-c")
ANALYST = "analyst-1"


def _key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"bench:" + label.encode()).digest())


class Federation:
    """Keys, key ring, quorum and entry generator for the benchmark."""

    def __init__(self) -> None:
        self.keys = {name: _key(name) for name in (*PARTIES, ANALYST)}
        self.keyring = KeyRing(
            {
                name: (key.public_key(), Role.ANALYST if name == ANALYST else Role.PARTY)
                for name, key in self.keys.items()
            }
        )
        self.log = NoteSigner(ORIGIN, _key("log"))
        self.witness_keys = {f"{p}.example/witness": _key(p + "/witness") for p in PARTIES}

    def witnesses(self, directory: Path) -> list[Witness]:
        return [
            Witness(name, key, directory / f"witness-{i}.db", log=self.log.verifier)
            for i, (name, key) in enumerate(self.witness_keys.items())
        ]

    def quorum(self, witnesses: Sequence[Witness]) -> Quorum:
        return Quorum(self.log.verifier, [w.verifier for w in witnesses], k=2)

    def query(self, n: int) -> list[Entry]:
        """Return the entries of one query: request, three decisions, result or abort."""
        qid = f"q-{n:08d}"
        request = b"jointstat request v1\nSELECT region, count(*) FROM census GROUP BY 1\n%d" % n
        req = QueryRequested(qid, ANALYST, request, PARTIES[n % 3])
        req = sign_entry(
            sign_entry(req, ANALYST, self.keys[ANALYST]),
            req.coordinator,
            self.keys[req.coordinator],
        )
        out: list[Entry] = [req]
        refused = n % 10 == 9
        for party in PARTIES:
            no = refused and party == PARTIES[1]
            decision = QueryDecided(
                qid,
                party,
                req.request_hash,
                Decision.REFUSED if no else Decision.APPROVED,
                "column census.income: aggregate only" if no else "",
            )
            out.append(sign_entry(decision, party, self.keys[party]))
        if refused:
            abort = QueryAborted(qid, PARTIES[0], req.request_hash, "refused by agency-b")
            return [*out, sign_entry(abort, PARTIES[0], self.keys[PARTIES[0]])]
        result = ResultCommitted(qid, req.request_hash, commit_result(b"result %d" % n)[0])
        for party in PARTIES:
            result = sign_entry(result, party, self.keys[party])
        return [*out, result]

    def entries(self, count: int) -> list[Entry]:
        out: list[Entry] = []
        for i in range(4):
            ds = DatasetRegistered(f"dataset-{i}", PARTIES[i % 3], bytes(32), bytes(range(32)))
            out.append(sign_entry(ds, ds.owner, self.keys[ds.owner]))
        n = 0
        while len(out) < count:
            out.extend(self.query(n))
            n += 1
        return out[:count]


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_appends(fed: Federation, tmp: Path, batch: int, pool: list[Entry]) -> dict[str, Any]:
    """Cosigned appends per second for one batch size, and the plain-SQLite baseline."""
    rounds = max(10, min(300, 10_000 // batch))
    directory = tmp / f"appends-{batch}"
    directory.mkdir()
    witnesses = fed.witnesses(directory)
    seq = Sequencer(
        LedgerStore(directory / "ledger.db"), fed.log, fed.keyring, fed.quorum(witnesses)
    )
    batches = [pool[(i * batch) % len(pool) :][:batch] for i in range(rounds)]
    batches = [b if len(b) == batch else pool[:batch] for b in batches]
    start = time.perf_counter()
    for entries in batches:
        seq.append(entries)
        if not seq.collect(witnesses).quorum_met:
            raise RuntimeError("quorum not met")
    secure = time.perf_counter() - start

    conn = sqlite3.connect(directory / "plain.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    encoded = [[encode_entry(e) for e in b] for b in batches]
    start = time.perf_counter()
    idx = 0
    for chunk in encoded:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO entries VALUES (?, ?)", ((idx + i, d) for i, d in enumerate(chunk))
        )
        conn.execute("COMMIT")
        idx += len(chunk)
    plain = time.perf_counter() - start
    conn.close()
    total = rounds * batch
    return {
        "batch": batch,
        "rounds": rounds,
        "entries": total,
        "cosigned_appends_per_s": total / secure,
        "seconds_per_batch": secure / rounds,
        "plain_sqlite_appends_per_s": total / plain,
        "store": seq.store,
        "quorum": seq.quorum,
        "sequencer": seq,
    }


def bench_receipts(seq: Sequencer, count: int) -> dict[str, Any]:
    """Median/p95 receipt verification time against the latest cosigned checkpoint."""
    rng = random.Random(7)
    size = seq.store.size
    indices = [rng.randrange(size) for _ in range(count)]
    receipts = [(seq.receipt(i).format(), seq.store.entry_bytes(i)) for i in indices]
    full, proof_only = [], []
    for text, entry in receipts:
        t0 = time.perf_counter()
        checkpoint = Receipt.parse(text).verify(entry, seq.quorum)
        t1 = time.perf_counter()
        full.append(t1 - t0)
    for (text, entry), index in zip(receipts, indices, strict=True):
        r = Receipt.parse(text)
        t0 = time.perf_counter()
        verify_inclusion(leaf_hash(entry), index, checkpoint.size, r.proof, checkpoint.root)
        proof_only.append(time.perf_counter() - t0)
    return {
        "receipts": count,
        "log_size": size,
        "verify_median_ms": statistics.median(full) * 1e3,
        "verify_p95_ms": _percentile(full, 0.95) * 1e3,
        "inclusion_only_median_ms": statistics.median(proof_only) * 1e3,
        "inclusion_only_p95_ms": _percentile(proof_only, 0.95) * 1e3,
        "receipt_bytes": len(receipts[0][0]),
    }


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_verify(fed: Federation, tmp: Path, size: int, pool_size: int) -> dict[str, Any]:
    """Full verification of a `size`-entry log (built in batches of 1000, then cosigned)."""
    directory = tmp / "verify"
    directory.mkdir()
    pool = fed.entries(min(size, pool_size))
    witnesses = fed.witnesses(directory)
    store = LedgerStore(directory / "ledger.db")
    seq = Sequencer(store, fed.log, fed.keyring, fed.quorum(witnesses), verify_entries=False)
    t0 = time.perf_counter()
    pos = 0
    while pos < size:
        n = min(1000, size - pos)
        seq.append([pool[(pos + i) % len(pool)] for i in range(n)])
        pos += n
    build = time.perf_counter() - t0
    seq.collect(witnesses)
    report_holder: list[Any] = []
    seconds = _timed(lambda: report_holder.append(store.verify(fed.keyring, seq.quorum)))
    report = report_holder[0]
    if not report.ok:
        raise RuntimeError(f"verify failed: {report.problem}")
    plain = _timed(lambda: [hashlib.sha256(b"\x00" + d).digest() for _, d in store.iter_entries()])

    rng = random.Random(3)
    incl, cons = [], []
    for _ in range(500):
        i = rng.randrange(size)
        incl.append(_timed(functools.partial(store.inclusion_proof, i)))
        m = rng.randrange(1, size + 1)
        cons.append(_timed(functools.partial(store.consistency_proof, m)))
    return {
        "log_size": size,
        "distinct_entries": len(pool),
        "build_seconds": build,
        "verify_seconds": seconds,
        "verify_entries_per_s": size / seconds,
        "plain_read_and_hash_seconds": plain,
        "cosigned_size": report.cosigned_size,
        "inclusion_proof_median_ms": statistics.median(incl) * 1e3,
        "consistency_proof_median_ms": statistics.median(cons) * 1e3,
        "db_bytes": os.path.getsize(directory / "ledger.db"),
    }


def print_table(results: dict[str, Any]) -> None:
    """Print each measurement with its plaintext baseline."""
    rows: list[tuple[str, str, str]] = []
    for a in results["appends"]:
        rows.append(
            (
                f"appends, batch {a['batch']} ({a['entries']} entries)",
                f"{a['cosigned_appends_per_s']:,.0f}/s cosigned",
                f"{a['plain_sqlite_appends_per_s']:,.0f}/s plain SQLite",
            )
        )
    r = results["receipts"]
    for stat in ("median", "p95"):
        rows.append(
            (
                f"receipt verify {stat} ({r['receipts']} receipts)",
                f"{r[f'verify_{stat}_ms']:.3f} ms",
                f"{r[f'inclusion_only_{stat}_ms']:.3f} ms inclusion only",
            )
        )
    v = results["verify"]
    rows.append(
        (
            f"full verify, {v['log_size']:,} entries",
            f"{v['verify_seconds']:.1f} s ({v['verify_entries_per_s']:,.0f}/s)",
            f"{v['plain_read_and_hash_seconds']:.2f} s read + SHA-256",
        )
    )
    rows.append(
        ("inclusion proof from store, median", f"{v['inclusion_proof_median_ms']:.3f} ms", "")
    )
    rows.append(
        ("consistency proof from store, median", f"{v['consistency_proof_median_ms']:.3f} ms", "")
    )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    header = ("measurement", "ledger", "plaintext baseline")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    print()
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", default="1,100,1000", help="batch sizes (default 1,100,1000)")
    parser.add_argument("--receipts", type=int, default=1000, help="receipts to verify")
    parser.add_argument(
        "--verify-size", type=int, default=100_000, help="entries in the verified log"
    )
    parser.add_argument("--pool", type=int, default=20_000, help="distinct signed entries to cycle")
    parser.add_argument("--tmpdir", default=None, help="directory for the SQLite files (on disk)")
    parser.add_argument("--out", default=None, help="write JSON results to this path")
    args = parser.parse_args(argv)

    fed = Federation()
    batch_sizes = [int(b) for b in args.batches.split(",")]
    results: dict[str, Any] = {
        "benchmark": "ledger library",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "appends": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-ledger-", dir=args.tmpdir) as name:
        tmp = Path(name)
        t0 = time.perf_counter()
        pool = fed.entries(max(batch_sizes) * 4)
        print(f"signed {len(pool)} entries for the append runs in {time.perf_counter() - t0:.1f} s")
        last: dict[str, Any] = {}
        for batch in batch_sizes:
            last = bench_appends(fed, tmp, batch, pool)
            results["appends"].append(
                {k: v for k, v in last.items() if k not in ("store", "quorum", "sequencer")}
            )
        results["receipts"] = bench_receipts(last["sequencer"], args.receipts)
        results["verify"] = bench_verify(fed, tmp, args.verify_size, args.pool)

    print_table(results)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
