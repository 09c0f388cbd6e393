"""A long fuzzing run against a fresh local federation (tests/engine/test_fuzz.py, longer).

Starts three real daemons on loopback over synthetic data (the demo's agencies plus the
tests' edge-case datasets), then runs rounds of the tests' seeded fuzzer
(tests/engine/fuzzing.py): mutated SQL from three client threads, mutated protobuf bodies
to every method of both services, garbage TCP and TLS connections. Each round uses the
next seed. After every round it checks that no daemon died, no daemon logged a traceback
and a normal query still returns the right answer. Prints a table and exits 1 on any
finding, naming the seed that reproduces it (``JOINTSTAT_FUZZ_SEED=<seed> pytest
tests/engine/test_fuzz.py`` replays a round of the default size).

    python benchmarks/fuzz_long.py [--rounds 20] [--seed 1] [--sql 1005] [--bytes 100]
        [--directory DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.client import Client  # noqa: E402
from engine.demo.synthetic import PARTIES, generate  # noqa: E402
from engine.federation_init import DatasetSpec, create_federation  # noqa: E402
from engine.launch import LocalFederation, free_port_block  # noqa: E402
from engine.oracle import PlaintextOracle, compare  # noqa: E402
from tests.engine import fuzzing  # noqa: E402
from tests.engine.conftest import EDGE_COLUMNS, write_edge  # noqa: E402


def build(root: Path, citizens: int) -> tuple[LocalFederation, PlaintextOracle]:
    """Create a federation with the datasets the fuzzer's seed queries name."""
    data = generate(root, citizens, seed=11)
    files = dict(data.files)
    datasets = {party: list(specs) for party, specs in data.datasets.items()}
    for party, rows, seed in (("tax", 1500, 1), ("social", 900, 2)):
        write_edge(root / party / "data" / "edge.csv", rows, seed=seed)
        files[f"{party}.edge"] = root / party / "data" / "edge.csv"
        datasets[party].append(DatasetSpec("edge", "data/edge.csv", EDGE_COLUMNS, min_group_size=5))
    create_federation(
        root,
        list(PARTIES),
        ["alice"],
        name="fuzz",
        base_port=free_port_block(len(PARTIES)),
        datasets=datasets,
    )
    return LocalFederation(root), PlaintextOracle(files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1, help="seed of the first round")
    parser.add_argument("--sql", type=int, default=1005, help="mutated queries per round")
    parser.add_argument("--bytes", type=int, default=100, help="bodies per method per round")
    parser.add_argument("--garbage", type=int, default=60, help="junk connections per round")
    parser.add_argument("--citizens", type=int, default=3000)
    parser.add_argument("--directory", type=Path, help="keep the federation here")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.directory or Path(scratch)
        launcher, oracle = build(root, args.citizens)
        identity = root / "analysts" / "alice"
        rows: list[dict[str, Any]] = []
        failed = False
        with launcher:
            for seed in range(args.seed, args.seed + args.rounds):
                began = time.monotonic()
                offsets = fuzzing.log_offsets(launcher.log_dir)
                tally = fuzzing.run(
                    launcher, root, identity, seed, args.sql, args.bytes, args.garbage
                )
                problems = list(tally.findings) + fuzzing.tracebacks_since(offsets)
                problems += [f"party {n} died" for n, p in launcher.processes.items() if p.poll()]
                if not problems:
                    with Client(identity) as client:
                        result = client.query(fuzzing.PROBE)
                    problems += compare(result, oracle.run(fuzzing.PROBE), (0,), 10, (1,))
                seconds = time.monotonic() - began
                rows.append(
                    {
                        "seed": seed,
                        "inputs": tally.inputs,
                        "seconds": round(seconds, 1),
                        "outcomes": dict(tally.outcomes),
                        "problems": problems[:50],
                    }
                )
                print(
                    f"seed {seed:>4}: {tally.inputs:>5} inputs in {seconds:6.1f} s, "
                    f"{len(problems)} problems  {dict(tally.outcomes)}",
                    flush=True,
                )
                for problem in problems[:10]:
                    print(f"    {problem}")
                if problems:
                    failed = True
                    break
        total = sum(r["inputs"] for r in rows)
        seconds = sum(r["seconds"] for r in rows)
        print(f"\n{total} inputs in {seconds:.0f} s over {len(rows)} rounds: "
              f"{'FAILED' if failed else 'no finding'}")  # fmt: skip
        if args.json is not None:
            args.json.write_text(json.dumps(rows, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
