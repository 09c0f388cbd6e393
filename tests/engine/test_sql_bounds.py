"""parse_query refuses what would exhaust the parser, with a clear CapacityError.

sqlglot parses recursively: 60 nested parentheses, 100 NOTs or 40 nested function calls
raised RecursionError (and each logged a 180 KB traceback in the daemon); a 60 KB IN list
took seconds to parse and tens of seconds to plan. Every such input is now refused before
sqlglot parses it, and sqlglot's messages no longer carry Python class names.
"""

from __future__ import annotations

import pytest

from engine.errors import CapacityError, QueryError
from engine.sql.parse import MAX_NESTING, MAX_SQL_TOKENS, MAX_UNARY_RUN, parse_query

WHERE = "SELECT COUNT(*) FROM tax.edge WHERE "


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        (WHERE + "(" * 60 + "v = 1" + ")" * 60, "nested deeper than"),
        (WHERE + "(" * 1500 + "v = 1" + ")" * 1500, "nested deeper than"),
        (WHERE + "NOT " * 200 + "v = 1", "unary operators in a row"),
        (WHERE + "- " * 200 + "v > 1", "unary operators in a row"),
        ("SELECT " + "abs(" * 40 + "v" + ")" * 40 + " FROM tax.edge", "nested deeper than"),
        (
            "SELECT " + "CASE WHEN v = 1 THEN " * 100 + "1" + " END" * 100 + " FROM tax.edge",
            "nested deeper than",
        ),
        (WHERE + "g IN (" + ", ".join(["1"] * 20_000) + ")", f"want at most {MAX_SQL_TOKENS}"),
    ],
    ids=["parens", "parens-1500", "not", "minus", "functions", "case", "in-list"],
)
def test_pathological_sql_is_refused_before_parsing(sql: str, reason: str) -> None:
    with pytest.raises(CapacityError, match=reason):
        parse_query(sql)


def test_the_bounds_leave_room_for_real_queries() -> None:
    parse_query(WHERE + "(" * (MAX_NESTING - 2) + "v = 1" + ")" * (MAX_NESTING - 2))
    parse_query(WHERE + "NOT " * MAX_UNARY_RUN + "v = 1")
    parse_query(WHERE + "g IN (" + ", ".join(["1"] * 1000) + ")")
    parse_query(WHERE + " AND ".join(["v > 1"] * 500))


@pytest.mark.parametrize("sql", ["SELECT 1 * FROM t", "SELECT WIDTH_BUCKET() FROM t"])
def test_syntax_errors_are_in_words(sql: str) -> None:
    with pytest.raises(QueryError, match="SQL syntax: incomplete") as caught:
        parse_query(sql)
    assert "<class" not in str(caught.value) and "sqlglot" not in str(caught.value)


def test_width_bucket_without_its_four_arguments_is_a_clear_refusal() -> None:
    """Found by benchmarks/fuzz_long.py (seed 1000): a KeyError deep in planning."""
    with pytest.raises(QueryError, match="WIDTH_BUCKET: got 3 arguments, want 4"):
        parse_query("SELECT WIDTH_BUCKET(income, 0, 10) AS b, COUNT(*) FROM tax.income GROUP BY b")
