"""What a new user reads: help texts, --version, error wording, plurals, listings (issue 16,
item 7)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from engine.cli import _parser
from engine.client import Result
from engine.demo.synthetic import SECTORS
from engine.errors import PolicyError, QueryError, UnsupportedError
from engine.sql.parse import parse_query
from engine.wording import counted

from .conftest import Federation


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=120
    )


def _commands(
    parser: argparse.ArgumentParser, path: str = "jointstat"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, f"{path} {name}")
    return found


def test_every_argument_of_every_command_has_help() -> None:
    missing = [
        f"{path} {action.dest}"
        for path, parser in _commands(_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert missing == []


def test_version() -> None:
    done = _cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == "jointstat 0.1.0"


def test_a_misspelt_select_is_not_valid_sql() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("SELEC bogus")
    assert not isinstance(caught.value, UnsupportedError)
    assert str(caught.value) == (
        "SQL syntax: got 'SELEC' where a statement starts, want SELECT (or EXPLAIN SELECT)"
    )
    with pytest.raises(QueryError, match="got 'COUNT' where a statement starts"):
        parse_query("COUNT(*)")


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("DROP TABLE tax.income", "DROP"),
        ("INSERT INTO t VALUES (1)", "INSERT"),
        ("SHOW TABLES", "SHOW"),
        ("VALUES (1)", "VALUES"),
        ("VACUUM", "VACUUM"),
    ],
)
def test_other_statements_are_named_as_unsupported(sql: str, kind: str) -> None:
    with pytest.raises(UnsupportedError, match=f"^not supported: {kind} statements; want SELECT$"):
        parse_query(sql)


def test_policy_refusal_reads_as_english(federation: Federation) -> None:
    with federation.client() as client, pytest.raises(PolicyError) as caught:
        client.query("SELECT SUM(citizen_id) FROM tax.income")
    message = str(caught.value)
    assert "want a column with policy aggregate or group_by" in message
    assert " a aggregate" not in message


def test_counts_take_the_right_plural() -> None:
    assert [counted(n, "row") for n in (0, 1, 2, 1000)] == [
        "0 rows",
        "1 row",
        "2 rows",
        "1,000 rows",
    ]
    assert counted(1, "query", "queries") == "1 query"
    assert counted(3, "query", "queries") == "3 queries"
    one = Result("q", ("n",), ((5,),), 0.0)
    assert one.to_table().splitlines()[-1].startswith("(1 row, ")
    two = Result("q", ("n",), ((5,), (6,)), 0.0)
    assert two.to_table().splitlines()[-1].startswith("(2 rows, ")


def test_datasets_json_has_named_fields_and_decimals_only_for_numbers(
    federation: Federation,
) -> None:
    done = _cli("datasets", "--identity", str(federation.identity), "--format", "json")
    assert done.returncode == 0, done.stderr
    listed = {d["dataset"]: d for d in json.loads(done.stdout)}
    income = listed["tax.income"]
    assert set(income) == {
        "dataset",
        "owner",
        "name",
        "available",
        "problem",
        "min_group_size",
        "analysts",
        "release",
        "overlap_control",
        "dominance",
        "columns",
    }
    assert (income["owner"], income["name"], income["min_group_size"]) == ("tax", "income", 10)
    columns = {c["name"]: c for c in income["columns"]}
    assert all(
        {"name", "type", "policy", "decimals"}
        <= set(c)
        <= {"name", "type", "policy", "decimals", "domain", "bounds", "order_statistics"}
        for c in columns.values()
    )
    assert columns["sector"] == {
        "name": "sector",
        "type": "text",
        "policy": "group_by",
        "decimals": None,
        "domain": sorted(SECTORS),
    }
    assert columns["income"]["type"] == "float" and columns["income"]["decimals"] == 2
    assert columns["citizen_id"]["decimals"] == 0  # an integer column: exact


def test_datasets_text_shows_decimals_of_numeric_columns_only(federation: Federation) -> None:
    done = _cli("datasets", "--identity", str(federation.identity))
    assert done.returncode == 0, done.stderr
    block = next(b for b in done.stdout.split("\n\n") if b.startswith("tax.income "))
    lines = {line.split()[0]: line for line in block.splitlines() if line.startswith("  ")}
    assert lines["sector"].split() == ["sector", "text", "group_by,", "10", "labels"]
    assert lines["income"].split() == [
        "income",
        "float",
        "aggregate,",
        "2",
        "decimals,",
        "order",
        "statistics",
        "allowed",
    ]
    assert "unavailable at its owner: dataset social.missing: got no data file" in done.stdout


def test_ledger_log_for_an_analyst_lists_only_that_analysts_queries(
    federation: Federation,
) -> None:
    with federation.client() as client:
        client.query("SELECT COUNT(*) FROM registry.people")
    config = str(federation.directory / "tax")
    everything = _cli("ledger", "log", "--config", config)
    assert everything.returncode == 0, everything.stderr
    assert " registered " in everything.stdout
    for analyst in ("alice", "bob"):
        done = _cli("ledger", "log", "--config", config, "--analyst", analyst)
        assert done.returncode == 0, done.stderr
        assert " registered " not in done.stdout
        entries = [line.split() for line in done.stdout.splitlines() if line.startswith("#")]
        assert all(fields[3] == analyst for fields in entries)
        assert bool(entries) is (analyst == "alice" or " bob " in everything.stdout)
