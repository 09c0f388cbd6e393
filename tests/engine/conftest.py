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

The datasets compared with DuckDB here switch query-set overlap control and the dominance
rule off (``overlap_control = false``, ``dominance = false``): with overlap control on, a
cell could be withheld because an earlier test released a row set close to it, which is
right but makes results depend on test order. Both have tests of their own, on datasets of
their own (tests/engine/test_disclosure.py).

Every channel of the daemons pings every KEEPALIVE_SECONDS (``JOINTSTAT_KEEPALIVE_SECONDS``),
so that a test of a call lasting many keepalive periods takes seconds.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from engine.client import Client
from engine.demo.synthetic import PARTIES, REGIONS, SECTORS, generate
from engine.federation_init import DatasetSpec, create_federation
from engine.launch import LocalFederation, free_port_block
from engine.oracle import PlaintextOracle
from engine.rpc.options import KEEPALIVE_ENV

from .agencies import Agencies
from .agencies import start as start_agencies

WIDE_ROWS = 60_000
NO_OVERLAP = (("overlap_control", False), ("dominance", False))
# Limits the tests reach: grouping registry.wide by slot with three aggregates exceeds the
# cells; a few thousand groups make a job large (its own MPC lane).
LIMITS = "[federation]\nmax_result_cells = 150000\nlarge_job_operations = 20000\n"
KEEPALIVE_SECONDS = 1
EDGE_COLUMNS: dict[str, str | dict[str, object]] = {
    "k": {"policy": "group_by", "domain": ["a", "b", "c", "d"]},
    "g": {"policy": "group_by", "domain": {"from": 1, "to": 60}},
    "v": {"policy": "aggregate", "order_statistics": True},
    "w": {"policy": "aggregate", "decimals": 3, "order_statistics": True},
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


# Columns whose owners allow exact order statistics in the test federation (the demo allows
# them for tax.income's income only).
ORDER_STATISTICS = {
    "social.benefits": ("pension", "medical_claims"),
    "registry.people": ("birth_year",),
}


def _for_tests(qualified: str, spec: DatasetSpec) -> DatasetSpec:
    columns = dict(spec.columns)
    for name in ORDER_STATISTICS.get(qualified, ()):
        policy = columns[name]
        policy = {"policy": policy} if isinstance(policy, str) else dict(policy)
        columns[name] = {**policy, "order_statistics": True}
    return replace(spec, columns=columns, options=NO_OVERLAP)


def write_firms(path: Path) -> None:
    """Write 12 mining firms of which one has 90% of the turnover, and 12 even retailers."""
    lines = ["sector,turnover", "mining,9000000"]
    lines += ["mining,90000"] * 11 + ["retail,50000"] * 12
    path.write_text("\n".join(lines) + "\n")


GUARDED_INCOME: dict[str, str | dict[str, object]] = {
    "citizen_id": "join_key",
    "income": {"policy": "aggregate", "decimals": 2, "bounds": [0, 5_000_000]},
    "sector": {"policy": "group_by", "domain": list(SECTORS)},
    "region": {"policy": "group_by", "domain": list(REGIONS)},
}


def guarded_datasets() -> list[DatasetSpec]:
    """Return tax's datasets with the owners' disclosure controls on (over the demo's
    income file): each attack test of test_disclosure.py has its own, so that overlap
    histories and budgets do not depend on the order tests run in."""
    walk_columns = dict(GUARDED_INCOME)
    walk_columns["income"] = {**GUARDED_INCOME["income"], "order_statistics": True}  # type: ignore[dict-item]

    def dp(budget: float, per_analyst: float) -> tuple[tuple[str, object], ...]:
        return (
            ("release", "dp"),
            ("epsilon_per_query", 0.5),
            ("budget", budget),
            ("analyst_budget", per_analyst),
        )

    def guarded(name: str, **changes: object) -> DatasetSpec:
        return replace(DatasetSpec(name, "data/income.csv", GUARDED_INCOME), **changes)

    return [
        guarded("guarded"),  # labels, presence, errors: exact mode, every control on
        guarded("differenced"),  # differencing on one dataset
        guarded("filtered"),  # differencing through a FILTER inside the aggregate
        guarded("joined"),  # differencing over a join (test_join_overlap.py)
        guarded("walked", columns=walk_columns),  # MIN walk: order statistics allowed
        DatasetSpec(  # the dominance rule: one firm makes 90% of one sector's turnover
            "firms",
            "data/firms.csv",
            {
                "sector": {"policy": "group_by", "domain": ["mining", "retail"]},
                "turnover": {"policy": "aggregate", "bounds": [0, 10_000_000]},
            },
        ),
        guarded("noisy", options=dp(1000.0, 1000.0)),  # dp: attacks get noise
        guarded("scarce", options=dp(1.5, 1.0)),  # dp: budgets run out
        guarded("contested", options=dp(0.5, 0.5)),  # dp: two analysts race for the last 0.5
    ]


@dataclass
class Federation:
    directory: Path
    launcher: LocalFederation
    oracle: PlaintextOracle
    identity: Path

    def client(self, party: str | None = None) -> Client:
        return Client(self.identity, party)

    def bob(self, party: str | None = None) -> Client:
        """Return a client of the federation's second analyst."""
        return Client(self.identity.parent / "bob", party)


@pytest.fixture(scope="session")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("federation")
    data = generate(root, 3000, seed=11)
    files = dict(data.files)
    datasets = {
        party: [_for_tests(f"{party}.{spec.name}", spec) for spec in specs]
        for party, specs in data.datasets.items()
    }
    write_edge(root / "tax" / "data" / "edge.csv", 1500, seed=1)
    write_firms(root / "tax" / "data" / "firms.csv")
    files["tax.firms"] = root / "tax" / "data" / "firms.csv"
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
        DatasetSpec(
            "wide",
            "data/wide.csv",
            {
                "slot": {"policy": "group_by", "domain": {"from": 0, "to": WIDE_ROWS - 1}},
                "x": "aggregate",
            },
            options=NO_OVERLAP,
        )
    )
    datasets["tax"] += guarded_datasets()
    datasets["tax"] += [
        DatasetSpec("edge", "data/edge.csv", EDGE_COLUMNS, min_group_size=5, options=NO_OVERLAP),
        # Overlap control over a column with NULLs (test_disclosure: a SUM's rows, not the
        # filter's, are what two releases must not differ in by few).
        DatasetSpec(
            "nulled",
            "data/edge.csv",
            EDGE_COLUMNS,
            min_group_size=5,
            options=(("dominance", False),),
        ),
        DatasetSpec(
            "bad", "data/bad.csv", {"k": {"policy": "group_by", "domain": "data"}, "v": "aggregate"}
        ),
    ]
    datasets["social"] += [
        DatasetSpec("edge", "data/edge.csv", EDGE_COLUMNS, min_group_size=5, options=NO_OVERLAP),
        DatasetSpec(
            "private",
            "data/edge.csv",
            EDGE_COLUMNS,
            min_group_size=5,
            analysts=("bob",),
            options=NO_OVERLAP,
        ),
        DatasetSpec("empty", "data/empty.csv", EDGE_COLUMNS, min_group_size=5, options=NO_OVERLAP),
        DatasetSpec(
            "repeat",
            "data/repeat.csv",
            {"person": "join_key", "amount": {"policy": "aggregate", "order_statistics": True}},
            min_group_size=5,
            options=NO_OVERLAP,
        ),
        DatasetSpec("missing", "data/missing.csv", EDGE_COLUMNS),
    ]
    base = free_port_block(len(PARTIES))
    create_federation(
        root, list(PARTIES), ["alice", "bob"], name="test", base_port=base, datasets=datasets
    )
    toml = root / "federation.toml"
    toml.write_text(toml.read_text().replace("[federation]\n", LIMITS, 1))
    launcher = LocalFederation(
        root,
        allow_unavailable=True,  # social.missing, tax.bad
        env={**os.environ, KEEPALIVE_ENV: str(KEEPALIVE_SECONDS)},
    )
    launcher.start()
    try:
        yield Federation(root, launcher, PlaintextOracle(files), root / "analysts" / "alice")
    finally:
        launcher.stop()


@pytest.fixture(scope="session")
def agencies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agencies]:
    """The small federation of tests/engine/agencies.py (answer tests, differential)."""
    running = start_agencies(tmp_path_factory.mktemp("agencies"))
    try:
        yield running
    finally:
        running.launcher.stop()
