"""A query plan: the plaintext steps at each owner and the secure step that combines them.

The plan of an aggregate query over one relation (a dataset or a UNION ALL of datasets):

1. each owner runs a :class:`Scan` in plaintext on its own data: filter, group, and
   compute per group the *components* of every :class:`Measure` — the row count ``n``,
   the sum ``s`` and the sum of squares ``q`` of the column scaled to integers by
   ``10**decimals``;
2. the components are secret-shared and summed across owners inside MPC;
3. each released cell (group × aggregate) is computed inside MPC as an exact rational
   ``num / den`` (see :mod:`engine.cells`), suppressed when its count is below the minimum
   group size, and released to the analyst alone.

Plans are plain data so that every party can compute the same plan from the same SQL and
catalog, and compare digests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property

from engine.sql.parse import Aggregate

COMPONENT_ORDER = ("n", "s", "q")


@dataclass(frozen=True)
class Measure:
    """What an aggregate needs from each owner: ``column`` None means COUNT(*)."""

    column: str | None
    components: tuple[str, ...]  # a prefix-ordered subset of COMPONENT_ORDER
    decimals: int


@dataclass(frozen=True)
class Scan:
    """The plaintext step at one owner over one of its datasets.

    ``group_columns`` and ``measure_columns`` are the dataset's own column names (a UNION
    ALL branch may rename them); ``filter_sql`` is DuckDB SQL over those names.
    """

    party: str
    dataset: str
    filter_sql: str | None
    group_columns: tuple[str, ...]
    measure_columns: tuple[str | None, ...]


@dataclass(frozen=True)
class Output:
    """An output column: a group label (``group``) or an aggregate of ``measure``."""

    name: str
    group: int | None
    function: Aggregate | None
    measure: int | None


@dataclass(frozen=True)
class QueryPlan:
    """Everything needed to run a query; identical on every party for the same inputs."""

    scans: tuple[Scan, ...]
    group_names: tuple[str, ...]
    measures: tuple[Measure, ...]
    outputs: tuple[Output, ...]
    min_group_size: int
    order_by: tuple[tuple[int, bool], ...]
    limit: int | None

    @property
    def parties(self) -> tuple[str, ...]:
        """Return the owners whose data the plan reads, in first-use order."""
        seen: dict[str, None] = {}
        for scan in self.scans:
            seen.setdefault(scan.party, None)
        return tuple(seen)

    @property
    def components_per_group(self) -> int:
        return sum(len(m.components) for m in self.measures)

    def component_index(self, group: int, measure: int, component: str) -> int:
        """Return the position of one component in the flat per-query input vector."""
        offset = group * self.components_per_group
        offset += sum(len(m.components) for m in self.measures[:measure])
        return offset + self.measures[measure].components.index(component)

    def aggregate_outputs(self) -> tuple[Output, ...]:
        return tuple(o for o in self.outputs if o.function is not None)

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def digest(self) -> str:
        """Return a hex SHA-256 of the canonical plan: equal plans have equal digests."""
        return self._digest

    @cached_property
    def _digest(self) -> str:
        body = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(body.encode()).hexdigest()
