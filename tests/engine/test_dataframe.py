"""``Result.to_dataframe()`` keeps column types and marks suppression (issue 16, item 10)."""

from __future__ import annotations

import pytest

from engine.client import SUPPRESSED, Result

from .conftest import Federation

pd = pytest.importorskip("pandas")


def test_types_survive_suppressed_and_null_cells() -> None:
    result = Result(
        "q",
        ("region", "n", "mean", "flag", "n"),
        (
            ("North", 12, 1.5, True, 3),
            ("South", SUPPRESSED, SUPPRESSED, False, 4),
            (None, 7, None, None, 5),
        ),
        0.0,
        suppressed=((1, 1), (1, 2)),
    )
    frame = result.to_dataframe()
    assert list(frame.columns) == ["region", "n", "mean", "flag", "n"]
    assert [str(t) for t in frame.dtypes] == ["string", "Int64", "Float64", "boolean", "Int64"]
    assert frame.iloc[0, 1] == 12 and isinstance(frame.iloc[0, 1], int | pd.Int64Dtype().type)
    assert frame.iloc[:, 1].isna().tolist() == [False, True, False]
    assert frame.iloc[:, 2].isna().tolist() == [False, True, True]  # suppressed, then NULL
    mask = result.suppressed_mask()
    assert mask.shape == frame.shape and list(mask.columns) == list(frame.columns)
    assert mask.to_numpy().tolist() == [
        [False] * 5,
        [False, True, True, False, False],
        [False] * 5,
    ]
    assert frame.attrs["suppressed"] == [[1, 1], [1, 2]] and frame.attrs["query_id"] == "q"


def test_empty_and_all_missing_columns() -> None:
    empty = Result("q", ("g", "n"), (), 0.0)
    assert empty.to_dataframe().shape == (0, 2)
    assert empty.suppressed_mask().shape == (0, 2)
    hidden = Result("q", ("n",), ((SUPPRESSED,),), 0.0, suppressed=((0, 0),))
    assert str(hidden.to_dataframe().dtypes.iloc[0]) == "Float64"
    assert hidden.suppressed_mask().iloc[0, 0]


def test_a_real_result_with_suppressed_cells(federation: Federation) -> None:
    sql = (
        "SELECT g, COUNT(*) AS n, SUM(v) AS total, AVG(w) AS mean FROM tax.edge "
        "WHERE k = 'a' GROUP BY g"
    )
    with federation.client() as client:
        result = client.query(sql)
    assert result.suppressed, "the data must give suppressed cells"
    frame = result.to_dataframe()
    assert [str(t) for t in frame.dtypes] == ["Int64", "Int64", "Int64", "Float64"]
    mask = result.suppressed_mask()
    for r, row in enumerate(result.rows):
        for c, value in enumerate(row):
            assert bool(mask.iloc[r, c]) == (value is SUPPRESSED)
            if value is SUPPRESSED or value is None:
                assert frame.isna().iloc[r, c]
            else:
                assert frame.iloc[r, c] == value
