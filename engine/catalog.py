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
from typing import Any

from engine.config import ColumnPolicy, Dominance, PrivacyBudget, ReleaseMode
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


LabelValue = str | int | float | bool | None


@dataclass(frozen=True)
class ColumnInfo:
    """A published column: its name, type, policy and the public facts planning needs.

    Besides the declared policy, an owner publishes a few facts it reads from its data at
    start-up (each a deliberate, documented disclosure): ``nullable`` (the column holds a
    NULL), ``unique`` (a join_key column holds each key once) and, for a group_by column
    with ``domain = "data"``, its distinct values. Nothing else about the rows is published.
    """

    name: str
    type: ColumnType
    policy: ColumnPolicy
    decimals: int  # 0 for integers; scale 10**decimals before secret sharing
    nullable: bool = False
    domain: tuple[LabelValue, ...] | None = None  # group_by: every public label, sorted
    bounds: tuple[float, float] | None = None  # declared value range (enforced at load)
    order_statistics: bool = False
    unique: bool = False  # join_key: each key value occurs once

    def labels(self) -> tuple[LabelValue, ...]:
        """Return the column's public labels, NULL last when the column holds NULLs."""
        assert self.domain is not None, "labels() of a column without a domain"
        return (*self.domain, None) if self.nullable else self.domain

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "name": self.name,
            "type": self.type.value,
            "policy": self.policy.value,
            "nullable": self.nullable,
        }
        if self.type.numeric:
            body["decimals"] = self.decimals
        if self.domain is not None:
            body["domain"] = list(self.domain)
        if self.bounds is not None:
            body["bounds"] = list(self.bounds)
        if self.order_statistics:
            body["order_statistics"] = True
        if self.policy is ColumnPolicy.JOIN_KEY:
            body["unique"] = self.unique
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ColumnInfo:
        domain = body.get("domain")
        bounds = body.get("bounds")
        return cls(
            name=str(body["name"]),
            type=ColumnType(body["type"]),
            policy=ColumnPolicy(body["policy"]),
            decimals=int(body.get("decimals", 0)),
            nullable=bool(body.get("nullable", False)),
            domain=tuple(domain) if domain is not None else None,
            bounds=(float(bounds[0]), float(bounds[1])) if bounds is not None else None,
            order_statistics=bool(body.get("order_statistics", False)),
            unique=bool(body.get("unique", False)),
        )


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
    release: ReleaseMode = ReleaseMode.EXACT
    overlap_control: bool = False
    dominance: Dominance | None = None
    budget: PrivacyBudget | None = None

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
        """Return the canonical public metadata (what the owner publishes and registers)."""
        body: dict[str, object] = {
            "owner": self.owner,
            "name": self.name,
            "columns": [c.to_json() for c in self.columns],
            "min_group_size": self.min_group_size,
            "analysts": list(self.analysts),
            "available": self.available,
            "problem": self.problem,
            "release": self.release.value,
        }
        if self.release is ReleaseMode.EXACT:
            body["overlap_control"] = self.overlap_control
            body["dominance"] = (
                None if self.dominance is None else [self.dominance.n, self.dominance.k]
            )
        if self.budget is not None:
            body["budget"] = {
                "epsilon_per_query": self.budget.epsilon_per_query,
                "budget": self.budget.budget,
                "analyst_budget": self.budget.analyst_budget,
            }
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> DatasetInfo:
        """Return the dataset described by :meth:`to_json`'s output.

        Raises KeyError, TypeError or ValueError for a malformed description.
        """
        dominance = body.get("dominance")
        budget = body.get("budget")
        return cls(
            owner=str(body["owner"]),
            name=str(body["name"]),
            columns=tuple(ColumnInfo.from_json(c) for c in body["columns"]),
            min_group_size=int(body["min_group_size"]),
            analysts=tuple(str(a) for a in body["analysts"]),
            available=bool(body["available"]),
            problem=str(body["problem"]),
            release=ReleaseMode(body.get("release", "exact")),
            overlap_control=bool(body.get("overlap_control", False)),
            dominance=Dominance(*dominance) if dominance else None,
            budget=PrivacyBudget(
                float(budget["epsilon_per_query"]),
                float(budget["budget"]),
                float(budget["analyst_budget"]),
            )
            if budget
            else None,
        )

    def canonical(self) -> str:
        """Return :meth:`to_json` as canonical JSON text (sorted keys, no spaces)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    def to_listing(self) -> dict[str, object]:
        """Return the dataset as analysts see it (``jointstat datasets --format json``).

        Named fields, documented in README ("Using a federation"); ``decimals`` is the
        fixed-point precision of a numeric column and null for every other column, and
        ``problem`` is null unless the dataset is unavailable at its owner. A group_by
        column lists its public ``domain``, an aggregate column its declared ``bounds``;
        ``release`` is "exact" (with ``overlap_control`` and ``dominance``) or "dp" (with
        ``budget``).
        """
        columns = []
        for c in self.columns:
            column: dict[str, object] = {
                "name": c.name,
                "type": c.type.value,
                "policy": c.policy.value,
                "decimals": c.decimals if c.type.numeric else None,
            }
            if c.domain is not None:
                column["domain"] = list(c.labels())
            if c.bounds is not None:
                column["bounds"] = list(c.bounds)
            if c.order_statistics:
                column["order_statistics"] = True
            columns.append(column)
        body: dict[str, object] = {
            "dataset": self.qualified_name,
            "owner": self.owner,
            "name": self.name,
            "available": self.available,
            "problem": self.problem or None,
            "min_group_size": self.min_group_size,
            "analysts": list(self.analysts),
            "release": self.release.value,
            "columns": columns,
        }
        if self.release is ReleaseMode.EXACT:
            body["overlap_control"] = self.overlap_control
            body["dominance"] = (
                None if self.dominance is None else {"n": self.dominance.n, "k": self.dominance.k}
            )
        if self.budget is not None:
            body["budget"] = {
                "epsilon_per_query": self.budget.epsilon_per_query,
                "budget": self.budget.budget,
                "analyst_budget": self.budget.analyst_budget,
            }
        return body

    def schema_digest(self) -> str:
        """Return a hex SHA-256 over the canonical public metadata of this dataset."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()


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
