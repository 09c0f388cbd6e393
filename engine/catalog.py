"""The federation catalog: which party offers which dataset, its columns, types and policies.

Each party publishes the schema and policy of its datasets (never rows, never row counts)
and every coordinator plans against the union of these published catalogs. A party still
checks every query against its own configuration, not against what a coordinator claims.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from engine.config import ColumnPolicy
from engine.errors import CatalogMissError, PolicyError


class ColumnType(StrEnum):
    """The logical type of a column, as far as planning needs it."""

    INTEGER = "integer"
    FLOAT = "float"
    TEXT = "text"
    BOOLEAN = "boolean"
    DATE = "date"
    OTHER = "other"

    @property
    def numeric(self) -> bool:
        return self in (ColumnType.INTEGER, ColumnType.FLOAT)


DEFAULT_FLOAT_DECIMALS = 4


@dataclass(frozen=True)
class ColumnInfo:
    """A published column: name, type, policy and fixed-point decimals."""

    name: str
    type: ColumnType
    policy: ColumnPolicy
    decimals: int  # 0 for integers; scale 10**decimals before secret sharing


@dataclass(frozen=True)
class DatasetInfo:
    """A published dataset. ``available`` is False when the owner cannot read its data."""

    owner: str
    name: str
    columns: tuple[ColumnInfo, ...]
    min_group_size: int
    analysts: tuple[str, ...]
    available: bool = True
    problem: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.owner}.{self.name}"

    def column(self, name: str) -> ColumnInfo:
        """Return the column called ``name``; raise QueryError naming the known columns."""
        for column in self.columns:
            if column.name == name:
                return column
        known = ", ".join(c.name for c in self.columns if c.policy is not ColumnPolicy.HIDDEN)
        raise CatalogMissError(
            f"column: got {name!r}, want a column of {self.qualified_name} ({known})"
        )

    def check_analyst(self, analyst: str) -> None:
        """Raise PolicyError unless ``analyst`` is granted use of this dataset."""
        if "*" not in self.analysts and analyst not in self.analysts:
            raise PolicyError(
                f"grant: analyst {analyst!r} is not granted dataset {self.qualified_name}"
            )

    def to_json(self) -> dict[str, object]:
        return {
            "owner": self.owner,
            "name": self.name,
            "columns": [[c.name, c.type.value, c.policy.value, c.decimals] for c in self.columns],
            "min_group_size": self.min_group_size,
            "analysts": list(self.analysts),
            "available": self.available,
            "problem": self.problem,
        }

    def to_listing(self) -> dict[str, object]:
        """Return the dataset as analysts see it (``jointstat datasets --format json``).

        Named fields, documented in README ("Using a federation"); ``decimals`` is the
        fixed-point precision of a numeric column and null for every other column, and
        ``problem`` is null unless the dataset is unavailable at its owner.
        """
        return {
            "dataset": self.qualified_name,
            "owner": self.owner,
            "name": self.name,
            "available": self.available,
            "problem": self.problem or None,
            "min_group_size": self.min_group_size,
            "analysts": list(self.analysts),
            "columns": [
                {
                    "name": c.name,
                    "type": c.type.value,
                    "policy": c.policy.value,
                    "decimals": c.decimals if c.type.numeric else None,
                }
                for c in self.columns
            ],
        }

    def schema_digest(self) -> str:
        """Return a hex SHA-256 over the canonical schema and policy of this dataset."""
        body = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Catalog:
    """Every dataset published in the federation, keyed by (owner, name)."""

    datasets: tuple[DatasetInfo, ...]

    def dataset(self, owner: str, name: str) -> DatasetInfo:
        """Return the dataset ``owner.name``; raise QueryError if unknown or unavailable."""
        for dataset in self.datasets:
            if dataset.owner == owner and dataset.name == name:
                if not dataset.available:
                    raise CatalogMissError(
                        f"table {owner}.{name}: unavailable at its owner ({dataset.problem})"
                    )
                return dataset
        known = ", ".join(sorted(d.qualified_name for d in self.datasets)) or "none"
        raise CatalogMissError(f"table: got {owner}.{name}, want one of {known}")

    def digest(self) -> str:
        """Return a hex SHA-256 identifying this exact catalog."""
        return self._digest

    @cached_property
    def _digest(self) -> str:
        parts = sorted(d.schema_digest() for d in self.datasets)
        return hashlib.sha256("".join(parts).encode()).hexdigest()
