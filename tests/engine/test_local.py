"""An owner's local data: loading, published schema, scans, and errors without values."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.catalog import ColumnType
from engine.config import load_party
from engine.errors import DataError
from engine.federation_init import DatasetSpec, create_federation
from engine.local import LocalData
from engine.plan import Measure, Scan

COLUMNS: dict[str, str | dict[str, object]] = {
    "g": {"policy": "group_by", "domain": ["a", "b", "z"]},
    "x": {"policy": "aggregate", "decimals": 2},
    "n": "aggregate",
    "h": "hidden",
}


def _party(tmp_path: Path, csv: str, overlap: bool = False) -> LocalData:
    (tmp_path / "p" / "data").mkdir(parents=True)
    (tmp_path / "p" / "data" / "t.csv").write_text(csv)
    create_federation(
        tmp_path,
        ["p", "q", "r"],
        [],
        base_port=24000,
        datasets={
            "p": [DatasetSpec("t", "data/t.csv", COLUMNS, options=(("overlap_control", overlap),))]
        },
    )
    return LocalData(load_party(tmp_path / "p" / "party.toml"))


def test_scan_returns_exact_integer_components(tmp_path: Path) -> None:
    data = _party(tmp_path, "g,x,n,h\na,1.25,3,9\na,-2.5,,9\nb,,7,9\n,0.01,1,9\n")
    (info,) = data.catalog()
    assert [(c.name, c.type) for c in info.columns][:3] == [
        ("g", ColumnType.TEXT),
        ("x", ColumnType.FLOAT),
        ("n", ColumnType.INTEGER),
    ]
    measures = (
        Measure(None, ("n",), 0),
        Measure("x", ("n", "s", "q"), 2),
        Measure("n", ("n", "s"), 0),
    )
    scan = Scan("p", "t", None, ('"g"',), ((None, None), ("x", None), ("n", None)))
    out = data.scan(scan, measures, overlap=False).partials
    assert out == {
        ("a",): [2, 2, 125 - 250, 125**2 + 250**2, 1, 3],
        ("b",): [1, 0, 0, 0, 1, 7],
        (None,): [1, 1, 1, 1, 1, 1],
    }
    filtered = data.scan(
        Scan("p", "t", '"x" > 0', (), ((None, None),)), measures[:1], overlap=False
    ).partials
    assert filtered == {(): [2]}


def test_non_numeric_aggregate_column_names_the_row_not_the_value(tmp_path: Path) -> None:
    data = _party(tmp_path, "g,x,n,h\na,1,1,1\na,SECRET-VALUE,2,1\n")
    (info,) = data.catalog()
    assert not info.available
    assert "row 2" in info.problem and "SECRET-VALUE" not in info.problem
    with pytest.raises(DataError, match="unavailable"):
        data.scan(
            Scan("p", "t", None, (), ((None, None),)), (Measure(None, ("n",), 0),), overlap=False
        )


def test_missing_file_then_appearing_file_is_reloaded(tmp_path: Path) -> None:
    data = _party(tmp_path, "g,x,n,h\na,1,1,1\n")
    path = tmp_path / "p" / "data" / "t.csv"
    path.unlink()
    data.refresh()
    assert "no data file" in data.catalog()[0].problem
    path.write_text("g,x,n,h\nz,2,2,2\nz,3,3,3\n")
    data.refresh()
    scan = Scan("p", "t", None, ('"g"',), ((None, None),))
    assert data.scan(scan, (Measure(None, ("n",), 0),), overlap=False).partials == {("z",): [2]}


def test_values_beyond_the_fixed_point_range_make_the_dataset_unavailable(tmp_path: Path) -> None:
    # Checked once at load, so that no query's error can depend on which rows it reads.
    data = _party(tmp_path, "g,x,n,h\na,1,1,1\na,1e30,1,1\n")
    (info,) = data.catalog()
    assert not info.available
    assert "out of range" in info.problem and "row 2" in info.problem and "1e30" not in info.problem
    with pytest.raises(DataError, match="unavailable"):
        data.scan(
            Scan("p", "t", None, (), (("x", None),)), (Measure("x", ("n", "s"), 2),), overlap=False
        )


def test_overlap_sketches_of_an_empty_selection(tmp_path: Path) -> None:
    data = _party(tmp_path, "g,x,n,h\na,1,1,1\nb,2,2,2\n", overlap=True)
    nothing = Scan("p", "t", '"n" > 100', (), ((None, None),))
    result = data.scan(nothing, (Measure(None, ("n",), 0),), overlap=True)
    assert result.partials == {(): [0]}
    assert result.sketches[()].rows == 0 and set(result.sketches[()].sums) == {0}
