"""A real three-party federation for integration tests: daemons as processes on loopback.

The federation holds the demo agencies' data (a few thousand citizens) plus datasets of
other shapes for edge cases, all generated from fixed seeds at test time, with fresh keys:

- ``tax.edge``: group labels with NULLs, integer values with NULLs and negatives,
  three-decimal values, a constant column;
- ``social.edge``: the same schema at another agency (for UNION ALL);
- ``social.repeat``: several rows per join key (``person``, as in ``tax.edge``);
- ``social.empty``: a header and no rows;
- ``social.missing``: declared, but its file does not exist;
- ``tax.bad``: an aggregate column holding text;
- ``registry.wide``: one row per group label, so that grouping by it makes a long MPC job.

Every channel of the daemons pings every KEEPALIVE_SECONDS (``JOINTSTAT_KEEPALIVE_SECONDS``),
so that a test of a call lasting many keepalive periods takes seconds.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.client import Client
from engine.daemon.grpc_options import KEEPALIVE_ENV
from engine.demo.synthetic import PARTIES, generate
from engine.federation_init import DatasetSpec, create_federation
from engine.launch import LocalFederation, free_port_block
from engine.oracle import PlaintextOracle

WIDE_ROWS = 60_000
KEEPALIVE_SECONDS = 1
EDGE_COLUMNS: dict[str, str | dict[str, object]] = {
    "k": "group_by",
    "g": "group_by",
    "v": "aggregate",
    "w": {"policy": "aggregate", "decimals": 3},
    "c": "aggregate",
    "secret": "hidden",
    "person": "join_key",
}


def write_edge(path: Path, rows: int, seed: int) -> None:
    """Write a dataset with NULLs, negatives, three decimals and a constant column."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write("k,g,v,w,c,secret,person\n")
        for i in range(rows):
            k = rng.choice(["a", "b", "c", "d", ""])  # "" is NULL
            g = rng.randint(1, 60)  # many small groups
            v = "" if rng.random() < 0.1 else str(rng.randint(-5000, 100_000))
            w = "" if rng.random() < 0.05 else f"{rng.uniform(-50, 900):.3f}"
            out.write(f"{k},{g},{v},{w},7,{rng.randint(0, 9)},{i}\n")


@dataclass
class Federation:
    directory: Path
    launcher: LocalFederation
    oracle: PlaintextOracle
    identity: Path

    def client(self, party: str | None = None) -> Client:
        return Client(self.identity, party)


@pytest.fixture(scope="session")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("federation")
    data = generate(root, 3000, seed=11)
    files = dict(data.files)
    datasets = {party: list(specs) for party, specs in data.datasets.items()}
    write_edge(root / "tax" / "data" / "edge.csv", 1500, seed=1)
    write_edge(root / "social" / "data" / "edge.csv", 900, seed=2)
    (root / "social" / "data" / "empty.csv").write_text("k,g,v,w,c,secret,person\n")
    (root / "social" / "data" / "repeat.csv").write_text(
        "person,amount\n" + "".join(f"{i // 3},{(i * 37) % 101 - 20}\n" for i in range(900))
    )
    files["social.repeat"] = root / "social" / "data" / "repeat.csv"
    (root / "tax" / "data" / "bad.csv").write_text(
        "k,v\n" + "".join(f"a,{i}\n" for i in range(30)) + "a,twelve\n"
    )
    wide = root / "registry" / "data" / "wide.csv"
    wide.write_text("slot,x\n" + "".join(f"{i},{i % 97}\n" for i in range(WIDE_ROWS)))
    files["registry.wide"] = wide
    files["tax.edge"] = root / "tax" / "data" / "edge.csv"
    files["social.edge"] = root / "social" / "data" / "edge.csv"
    files["social.empty"] = root / "social" / "data" / "empty.csv"
    datasets["registry"].append(
        DatasetSpec("wide", "data/wide.csv", {"slot": "group_by", "x": "aggregate"})
    )
    datasets["tax"] += [
        DatasetSpec("edge", "data/edge.csv", EDGE_COLUMNS, min_group_size=5),
        DatasetSpec("bad", "data/bad.csv", {"k": "group_by", "v": "aggregate"}),
    ]
    datasets["social"] += [
        DatasetSpec("edge", "data/edge.csv", EDGE_COLUMNS, min_group_size=5),
        DatasetSpec("private", "data/edge.csv", EDGE_COLUMNS, min_group_size=5, analysts=("bob",)),
        DatasetSpec("empty", "data/empty.csv", EDGE_COLUMNS, min_group_size=5),
        DatasetSpec(
            "repeat",
            "data/repeat.csv",
            {"person": "join_key", "amount": "aggregate"},
            min_group_size=5,
        ),
        DatasetSpec("missing", "data/missing.csv", EDGE_COLUMNS),
    ]
    base = free_port_block(len(PARTIES))
    create_federation(
        root, list(PARTIES), ["alice", "bob"], name="test", base_port=base, datasets=datasets
    )
    launcher = LocalFederation(root, env={**os.environ, KEEPALIVE_ENV: str(KEEPALIVE_SECONDS)})
    launcher.start()
    try:
        yield Federation(root, launcher, PlaintextOracle(files), root / "analysts" / "alice")
    finally:
        launcher.stop()
