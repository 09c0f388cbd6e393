"""A small three-agency federation for the answer tests and the differential harness.

Its data has what analysts' data has and the demo's lacks: NULLs everywhere (group labels,
values, booleans), negative values, integer (0-decimal), 2-decimal and 4-decimal columns,
text and boolean group_by columns, and the same schema at two agencies (for UNION ALL):

- ``registry.people``: id, district (text), adult (boolean), band (integer 1..5), score
  (integer), ratio (4 decimals);
- ``tax.jobs``: id, sector (text), part_time (boolean), wage (2 decimals), hours (integer),
  rate (4 decimals);
- ``social.visits``: id, kind (text), urgent (boolean), cost (2 decimals), visits
  (integer), weight (4 decimals);
- ``tax.survey`` and ``social.survey``: region (text), owner (boolean), size (integer),
  spend (2 decimals), share (4 decimals).

Every join key is unique at its owner (so WHERE may compare two agencies' columns); every
group_by column has a public domain, so every label of it is a result row (suppressed when
fewer than MIN_GROUP_SIZE rows contribute). Query-set overlap control and the dominance rule
are off (``overlap_control = false``, ``dominance = false``): the harness asks many similar
queries, which overlap control would rightly withhold, and results must not depend on the
order of queries.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.catalog import Catalog, ColumnInfo, ColumnType, DatasetInfo
from engine.client import Client
from engine.config import ColumnPolicy
from engine.federation_init import DatasetSpec, create_federation
from engine.launch import LocalFederation, free_port_block
from engine.oracle import PlaintextOracle
from engine.rpc.options import KEEPALIVE_ENV

PARTIES = ("registry", "tax", "social")
MIN_GROUP_SIZE = 5
OPTIONS = (("overlap_control", False), ("dominance", False))
DISTRICTS = ("north", "south", "east", "west")
SECTORS = ("farming", "office", "retail")
KINDS = ("gp", "er", "lab")
REGIONS = ("coast", "hills", "plain")
BOOLEAN = {"policy": "group_by", "domain": [False, True]}


@dataclass(frozen=True)
class Column:
    """A column of the harness data: its policy entry and how to draw a value."""

    name: str
    policy: str | dict[str, object]
    draw: Callable[[random.Random], str]
    kind: str = "aggregate"  # "key", "group" or "aggregate"
    decimals: int = 0
    text: bool = False  # a text or boolean column (only COUNT aggregates it)


@dataclass(frozen=True)
class Table:
    party: str
    name: str
    rows: int
    columns: tuple[Column, ...]

    @property
    def qualified(self) -> str:
        return f"{self.party}.{self.name}"


def _maybe(rng: random.Random, chance: float, value: str) -> str:
    return "" if rng.random() < chance else value


def _label(labels: tuple[str, ...], null: float) -> Callable[[random.Random], str]:
    return lambda rng: _maybe(rng, null, rng.choice(labels))


def _boolean(null: float) -> Callable[[random.Random], str]:
    return lambda rng: _maybe(rng, null, rng.choice(("true", "false")))


def _integer(low: int, high: int, null: float) -> Callable[[random.Random], str]:
    return lambda rng: _maybe(rng, null, str(rng.randint(low, high)))


def _decimal(low: float, high: float, places: int, null: float) -> Callable[[random.Random], str]:
    return lambda rng: _maybe(rng, null, f"{rng.uniform(low, high):.{places}f}")


def _group(labels: tuple[object, ...] | None = None, **extra: object) -> dict[str, object]:
    return {"policy": "group_by", "domain": list(labels or ()), **extra}


def _aggregate(decimals: int, order: bool = False) -> dict[str, object]:
    body: dict[str, object] = {"policy": "aggregate", "decimals": decimals}
    if order:
        body["order_statistics"] = True
    return body


KEY = Column("id", "join_key", lambda rng: "", kind="key")

TABLES = (
    Table(
        "registry",
        "people",
        360,
        (
            KEY,
            Column("district", _group(DISTRICTS), _label(DISTRICTS, 0.05), "group", text=True),
            Column("adult", dict(BOOLEAN), _boolean(0.05), "group", text=True),
            Column(
                "band",
                {"policy": "group_by", "domain": {"from": 1, "to": 5}},
                _integer(1, 5, 0.0),
                "group",
            ),
            Column("score", _aggregate(0, order=True), _integer(-50, 200, 0.1)),
            Column("ratio", _aggregate(4), _decimal(-1, 3, 4, 0.1), decimals=4),
        ),
    ),
    Table(
        "tax",
        "jobs",
        300,
        (
            KEY,
            Column("sector", _group(SECTORS), _label(SECTORS, 0.05), "group", text=True),
            Column("part_time", dict(BOOLEAN), _boolean(0.1), "group", text=True),
            Column("wage", _aggregate(2, order=True), _decimal(-200, 5000, 2, 0.1), decimals=2),
            Column("hours", _aggregate(0), _integer(0, 60, 0.05)),
            Column("rate", _aggregate(4), _decimal(-0.5, 0.5, 4, 0.1), decimals=4),
        ),
    ),
    Table(
        "social",
        "visits",
        260,
        (
            KEY,
            Column("kind", _group(KINDS), _label(KINDS, 0.05), "group", text=True),
            Column("urgent", dict(BOOLEAN), _boolean(0.1), "group", text=True),
            Column("cost", _aggregate(2, order=True), _decimal(-20, 900, 2, 0.1), decimals=2),
            Column("visits", _aggregate(0), _integer(0, 12, 0.1)),
            Column("weight", _aggregate(4), _decimal(0, 2, 4, 0.1), decimals=4),
        ),
    ),
)

SURVEY = (
    Column("region", _group(REGIONS), _label(REGIONS, 0.05), "group", text=True),
    Column("owner", dict(BOOLEAN), _boolean(0.1), "group", text=True),
    Column("size", _aggregate(0), _integer(1, 7, 0.05)),
    Column("spend", _aggregate(2), _decimal(-50, 3000, 2, 0.1), decimals=2),
    Column("share", _aggregate(4), _decimal(0, 1, 4, 0.1), decimals=4),
)
SURVEYS = (Table("tax", "survey", 200, SURVEY), Table("social", "survey", 160, SURVEY))
ALL_TABLES = TABLES + SURVEYS


def _write(root: Path, table: Table, rng: random.Random, ids: list[int]) -> Path:
    path = root / table.party / "data" / f"{table.name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [c.name for c in table.columns]
    lines = [",".join(names)]
    for i in range(table.rows):
        values = [str(ids[i]) if c.kind == "key" else c.draw(rng) for c in table.columns]
        lines.append(",".join(values))
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Agencies:
    """A running harness federation with its plaintext oracle."""

    directory: Path
    launcher: LocalFederation
    oracle: PlaintextOracle
    identity: Path

    def client(self, party: str | None = None) -> Client:
        return Client(self.identity, party)


def start(root: Path, seed: int = 5) -> Agencies:
    """Write the data (seeded), create the federation and start its daemons."""
    rng = random.Random(seed)
    population = list(range(1000, 1000 + 450))
    files: dict[str, Path] = {}
    datasets: dict[str, list[DatasetSpec]] = {p: [] for p in PARTIES}
    for table in ALL_TABLES:
        ids = rng.sample(population, table.rows)
        files[table.qualified] = _write(root, table, rng, ids)
        datasets[table.party].append(
            DatasetSpec(
                table.name,
                f"data/{table.name}.csv",
                {c.name: c.policy for c in table.columns},
                min_group_size=MIN_GROUP_SIZE,
                options=OPTIONS,
            )
        )
    base = free_port_block(len(PARTIES))
    create_federation(
        root, list(PARTIES), ["alice"], name="agencies", base_port=base, datasets=datasets
    )
    launcher = LocalFederation(root, env={**os.environ, KEEPALIVE_ENV: "1"})
    launcher.start()
    return Agencies(root, launcher, PlaintextOracle(files), root / "analysts" / "alice")


def catalog() -> Catalog:
    """Return the federation's catalogue as its owners publish it (for plan-only tests)."""
    datasets = []
    for table in ALL_TABLES:
        columns = []
        for c in table.columns:
            boolean = isinstance(c.policy, dict) and c.policy.get("domain") == [False, True]
            kind = (
                ColumnType.BOOLEAN
                if boolean
                else ColumnType.TEXT
                if c.text
                else ColumnType.FLOAT
                if c.decimals
                else ColumnType.INTEGER
            )
            policy = ColumnPolicy(c.policy if isinstance(c.policy, str) else c.policy["policy"])
            columns.append(ColumnInfo(c.name, kind, policy, c.decimals, nullable=True))
        datasets.append(
            DatasetInfo(table.party, table.name, tuple(columns), MIN_GROUP_SIZE, ("*",))
        )
    return Catalog(tuple(datasets))
