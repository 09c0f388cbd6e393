"""A longer differential run: seeded valid queries on a fresh local federation vs DuckDB.

Starts the three daemons of tests/engine/agencies.py (NULLs, negatives, 0/2/4 decimals,
text and boolean group columns; overlap control off) on loopback, runs the generator of
tests/engine/differential.py and compares every answer with DuckDB over the pooled
plaintext. Prints each failure (the SQL and both answers) and each refusal of a generated
query; exits 1 if there was any.

    python benchmarks/differential.py [--examples 1000] [--seed 1] [--directory DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engine import differential  # noqa: E402
from tests.engine.agencies import start  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="queries to run")
    parser.add_argument("--seed", type=int, default=1, help="the generator's seed")
    parser.add_argument("--directory", type=Path, help="keep the federation here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.directory or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        agencies = start(root)
        began = time.monotonic()
        try:
            with agencies.client() as client:
                tally = differential.run(client, agencies.oracle, args.seed, args.examples)
        finally:
            agencies.launcher.stop()
    seconds = time.monotonic() - began
    for text in tally.refused:
        print(f"REFUSED {text}")
    for text in tally.failures:
        print(f"FAILED {text}")
    print(
        f"differential: {tally.queries} queries (seed {args.seed}) in {seconds:.1f} s: "
        f"{len(tally.failures)} failures, {len(tally.refused)} refusals"
    )
    return 1 if tally.failures or tally.refused else 0


if __name__ == "__main__":
    sys.exit(main())
