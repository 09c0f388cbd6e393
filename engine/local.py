"""An owner's local data: load its datasets into DuckDB, publish their schema, run scans.

Everything here runs in plaintext at the owner, on the owner's machine. A scan filters and
groups one dataset and returns, per group label, the integer components of the plan's
measures (counts, sums and sums of squares of values scaled by ``10**decimals``), ready to
be secret-shared. DuckDB's own error messages can quote data values, so they are never
passed on: errors name the dataset, the column and the rule instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from engine.catalog import ColumnInfo, ColumnType, DatasetInfo
from engine.cells import OWNER_ROW_BITS
from engine.config import ColumnPolicy, DatasetConfig, PartyConfig, ReleaseMode
from engine.errors import DataError, QueryError
from engine.local_scan import WIDE_BITS, JoinTable, ScanResult, aggregate_scan, join_scan
from engine.overlap import (
    ROW_ID,
    federation_secret,
    key_text_sql,
    row_id_sql,
    row_salt,
    sketch_terms,
)
from engine.plan import JoinScan, Measure, Plan, QueryPlan, Scan
from engine.published import column_info

log = logging.getLogger(__name__)

EMPTY = "__empty"  # suffix of a table's empty twin, for dry runs


_TYPES = {
    "TINYINT": ColumnType.INTEGER,
    "SMALLINT": ColumnType.INTEGER,
    "INTEGER": ColumnType.INTEGER,
    "BIGINT": ColumnType.INTEGER,
    "HUGEINT": ColumnType.INTEGER,
    "UTINYINT": ColumnType.INTEGER,
    "USMALLINT": ColumnType.INTEGER,
    "UINTEGER": ColumnType.INTEGER,
    "UBIGINT": ColumnType.INTEGER,
    "FLOAT": ColumnType.FLOAT,
    "DOUBLE": ColumnType.FLOAT,
    "VARCHAR": ColumnType.TEXT,
    "BOOLEAN": ColumnType.BOOLEAN,
    "DATE": ColumnType.DATE,
}


def _column_type(duck_type: str) -> ColumnType:
    if duck_type.startswith("DECIMAL"):
        return ColumnType.FLOAT
    return _TYPES.get(duck_type, ColumnType.OTHER)


@dataclass
class _Loaded:
    info: DatasetInfo
    table: str
    stamp: tuple[int, int]
    rows: int
    bits: dict[str, int]  # private: bit length of each numeric column's largest |scaled|
    sketch: int  # power sums per part for overlap control (0: the owner does not control)

    def nullable(self) -> frozenset[str]:
        """Return the columns that hold a NULL (a fact the owner publishes at load)."""
        return frozenset(c.name for c in self.info.columns if c.nullable)

    def wide(self, a: str, b: str) -> bool:
        """Return whether Σ a·b over this dataset could leave a HUGEINT (private fact)."""
        need = self.bits.get(a, 63) + self.bits.get(b, 63) + self.rows.bit_length()
        return bool(need > WIDE_BITS)


class LocalData:
    """The datasets of one party, loaded into an in-memory DuckDB database."""

    def __init__(self, config: PartyConfig) -> None:
        self._party = config.name
        self._configs = {d.name: d for d in config.datasets}
        self._db = duckdb.connect(":memory:")
        self._state_dir = config.state_dir
        self._federation_secret = (
            federation_secret(config.overlap_key) if config.overlap_key is not None else None
        )
        self._lock = threading.Lock()
        self._loaded: dict[str, _Loaded] = {}
        self._problems: dict[str, str] = {}
        self.version = 0  # incremented whenever a dataset is (re)loaded or fails to load
        for dataset in config.datasets:
            self._load(dataset)

    # ------------------------------------------------------------------ loading

    def _load(self, dataset: DatasetConfig) -> None:
        """Load (or reload) one dataset; on failure record the problem and keep serving."""
        self.version += 1
        try:
            self._loaded[dataset.name] = self._read(dataset)
            self._problems.pop(dataset.name, None)
            log.info("dataset %s.%s loaded", self._party, dataset.name)
        except DataError as exc:
            self._loaded.pop(dataset.name, None)
            self._problems[dataset.name] = str(exc)
            log.error("dataset %s.%s unavailable: %s", self._party, dataset.name, exc)

    def _read(self, dataset: DatasetConfig) -> _Loaded:
        qualified = f"{self._party}.{dataset.name}"
        try:
            stat = dataset.file.stat()
        except FileNotFoundError:
            raise DataError(
                f"dataset {qualified}: got no data file at {dataset.file}, want a "
                f"{dataset.format} file"
            ) from None
        table = f"ds_{dataset.name}"
        wanted = [c for c in dataset.columns if c.policy is not ColumnPolicy.HIDDEN]
        reader = (
            "read_csv(?, header = true, sample_size = -1)"
            if dataset.format == "csv"
            else "read_parquet(?)"
        )
        with self._lock:
            try:
                relation = self._db.sql(f"SELECT * FROM {reader}", params=[str(dataset.file)])
                present = dict(zip(relation.columns, (str(t) for t in relation.types), strict=True))
            except duckdb.Error as exc:
                raise DataError(
                    f"dataset {qualified}: cannot read {dataset.file} as {dataset.format} "
                    f"({type(exc).__name__}), want a well-formed file with a header row"
                ) from None
            missing = [c.name for c in wanted if c.name not in present]
            if missing:
                raise DataError(
                    f"dataset {qualified}: got no column(s) {', '.join(missing)} in "
                    f"{dataset.file}, want every declared column (found: {', '.join(present)})"
                )
            selected_parts = []
            for column in wanted:
                declared = present[column.name]
                numeric = column.policy is ColumnPolicy.AGGREGATE or (
                    column.domain is not None and column.domain.kind == "range"
                )
                if (
                    numeric
                    and not _column_type(declared).numeric
                    and self._all_null(reader, dataset.file, column.name)
                ):
                    # An empty (or all-NULL) column has no type to sniff: it is numeric.
                    present[column.name] = "BIGINT"
                    selected_parts.append(f'CAST("{column.name}" AS BIGINT) AS "{column.name}"')
                else:
                    selected_parts.append(f'"{column.name}"')
            selected = ", ".join(selected_parts)
            try:
                self._db.execute(f'DROP TABLE IF EXISTS "{table}"')
                self._db.execute(
                    f'CREATE TABLE "{table}" AS SELECT {selected} FROM {reader}',
                    [str(dataset.file)],
                )
                (rows,) = self._db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone() or (0,)
            except duckdb.Error as exc:
                raise DataError(
                    f"dataset {qualified}: cannot load {dataset.file} ({type(exc).__name__}); "
                    "want values that match each column's type in every row"
                ) from None
        if rows >= 1 << OWNER_ROW_BITS:
            raise DataError(f"dataset {qualified}: got {rows} rows, want < 2**{OWNER_ROW_BITS}")
        columns = []
        with self._lock:
            for column in dataset.columns:
                if column.policy is ColumnPolicy.HIDDEN:
                    columns.append(ColumnInfo(column.name, ColumnType.OTHER, column.policy, 0))
                    continue
                kind = _column_type(present[column.name])
                columns.append(column_info(self._db, table, qualified, column, kind))
            bits = {
                c.name: self._magnitude(table, c.name, c.decimals)
                for c in columns
                if c.type.numeric
            }
            if self._overlap(dataset):
                self._add_row_ids(table, dataset, [c.name for c in wanted], columns)
            self._db.execute(
                f'CREATE OR REPLACE TABLE "{table}{EMPTY}" AS SELECT * FROM "{table}" LIMIT 0'
            )
        info = DatasetInfo(
            owner=self._party,
            name=dataset.name,
            columns=tuple(columns),
            min_group_size=dataset.min_group_size,
            analysts=dataset.analysts,
            release=dataset.release,
            overlap_control=self._overlap(dataset),
            dominance=dataset.dominance if dataset.release is ReleaseMode.EXACT else None,
            budget=dataset.budget,
        )
        sketch = sketch_terms(dataset.min_group_size) if self._overlap(dataset) else 0
        return _Loaded(info, table, (stat.st_mtime_ns, stat.st_size), rows, bits, sketch)

    def _magnitude(self, table: str, column: str, decimals: int) -> int:
        """Return the bit length of the column's largest |value·10^decimals| (kept private)."""
        row = self._db.execute(
            f'SELECT MAX(ABS(ROUND("{column}" * {10**decimals}))) FROM "{table}"'
        ).fetchone()
        return 0 if row is None or row[0] is None else int(row[0]).bit_length()

    @staticmethod
    def _overlap(dataset: DatasetConfig) -> bool:
        return dataset.release is ReleaseMode.EXACT and dataset.overlap_control

    def _add_row_ids(
        self, table: str, dataset: DatasetConfig, names: list[str], columns: list[ColumnInfo]
    ) -> None:
        """Give every row its stable identity for overlap control (:mod:`engine.overlap`):
        by its unique join key under the federation's key, else by its values and its
        occurrence among identical rows under this owner's salt."""
        key = next(
            (c.name for c in columns if c.policy is ColumnPolicy.JOIN_KEY and c.unique), None
        )
        if key is not None and self._federation_secret is not None:
            text = key_text_sql(self._federation_secret, f'"{key}"')
            self._db.execute(
                f'CREATE OR REPLACE TABLE "{table}" AS SELECT *, {row_id_sql(text)} AS {ROW_ID} '
                f'FROM "{table}"'
            )
            return
        cells = ", ".join(f'COALESCE(CAST("{n}" AS VARCHAR), chr(30))' for n in names) or "''"
        partition = ", ".join(f'"{n}"' for n in names) or "1"
        salt = row_salt(self._state_dir, dataset.name)
        text = (
            f"concat_ws(chr(31), ?, {cells}, "
            f"CAST(row_number() OVER (PARTITION BY {partition}) AS VARCHAR))"
        )
        self._db.execute(
            f'CREATE OR REPLACE TABLE "{table}" AS SELECT *, {row_id_sql(text)} AS {ROW_ID} '
            f'FROM "{table}"',
            [salt],
        )

    def _all_null(self, reader: str, file: Path, column: str) -> bool:
        row = self._db.execute(f'SELECT COUNT("{column}") FROM {reader}', [str(file)]).fetchone()
        return row is not None and row[0] == 0

    def refresh(self) -> None:
        """Reload every dataset whose file changed (or appeared) since it was loaded."""
        for name, dataset in self._configs.items():
            loaded = self._loaded.get(name)
            try:
                stat = dataset.file.stat()
                stamp = (stat.st_mtime_ns, stat.st_size)
            except FileNotFoundError:
                stamp = (0, 0)
            if loaded is None or loaded.stamp != stamp:
                self._load(dataset)

    # ------------------------------------------------------------------ catalog

    def catalog(self) -> tuple[DatasetInfo, ...]:
        """Return the published schema and policy of every dataset (no rows, no counts)."""
        out = []
        for name, dataset in self._configs.items():
            loaded = self._loaded.get(name)
            if loaded is not None:
                out.append(loaded.info)
                continue
            out.append(
                DatasetInfo(
                    owner=self._party,
                    name=name,
                    columns=tuple(
                        ColumnInfo(c.name, ColumnType.OTHER, c.policy, c.decimals or 0)
                        for c in dataset.columns
                    ),
                    min_group_size=dataset.min_group_size,
                    analysts=dataset.analysts,
                    available=False,
                    problem=self._problems.get(name, "not loaded"),
                )
            )
        return tuple(out)

    # ------------------------------------------------------------------ scans

    def row_count(self, dataset: str) -> int:
        """Return the number of rows of a loaded dataset (0 if it is unavailable)."""
        loaded = self._loaded.get(dataset)
        return 0 if loaded is None else loaded.rows

    def _loaded_for(self, party: str, dataset: str) -> _Loaded:
        if party != self._party:
            raise QueryError(f"scan: got party {party!r}, want {self._party!r}")
        loaded = self._loaded.get(dataset)
        if loaded is None:
            problem = self._problems.get(dataset, "unknown dataset")
            raise DataError(f"dataset {self._party}.{dataset} is unavailable: {problem}")
        return loaded

    def scan(self, scan: Scan, measures: Sequence[Measure], *, overlap: bool) -> ScanResult:
        """Run ``scan`` and return, per group label, its measures' integer components and,
        with ``overlap`` (an exact release over a dataset whose owner controls query-set
        overlap), each part's row-set sketch.

        Raises DataError if the dataset is unavailable, QueryError if the owner's SQL cannot
        be evaluated for the columns' types (which a dry run finds before any data is read).
        """
        loaded = self._loaded_for(scan.party, scan.dataset)
        cursor = self._db.cursor()
        try:
            return aggregate_scan(
                cursor,
                loaded.table,
                f"{self._party}.{scan.dataset}",
                scan,
                measures,
                wide=loaded.wide,
                sketch=loaded.sketch if overlap else 0,
                nullable=loaded.nullable(),
            )
        finally:
            cursor.close()

    def dry_run(self, plan: Plan) -> None:
        """Run this owner's SQL of ``plan`` on empty copies of its tables (no row is read).

        Raises QueryError for SQL that cannot be evaluated for the columns' types: such an
        error then never depends on data.
        """
        for scan in plan.scans:
            if scan.party != self._party:
                continue
            loaded = self._loaded_for(scan.party, scan.dataset)
            cursor = self._db.cursor()
            try:
                qualified = f"{self._party}.{scan.dataset}"
                if isinstance(scan, JoinScan):
                    join_scan(cursor, loaded.table + EMPTY, qualified, scan)
                else:
                    assert isinstance(plan, QueryPlan)
                    aggregate_scan(cursor, loaded.table + EMPTY, qualified, scan, plan.measures)
            finally:
                cursor.close()

    def join_scan(self, scan: JoinScan) -> JoinTable:
        """Run the owner's per-key step of a join (see :func:`engine.local_scan.join_scan`)."""
        loaded = self._loaded_for(scan.party, scan.dataset)
        cursor = self._db.cursor()
        try:
            return join_scan(cursor, loaded.table, f"{self._party}.{scan.dataset}", scan)
        finally:
            cursor.close()
