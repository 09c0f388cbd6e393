"""Paths on the command line (issue 16, item 4).

A config or identity is accepted as the file or as the directory holding it, by every
command; a path that cannot be used ends in one line ``jointstat: ...`` and exit code 1,
never in a traceback.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import load_federation, load_identity, load_party
from engine.errors import ConfigError
from engine.federation_init import create_federation

from .conftest import Federation


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("paths") / "fed"
    create_federation(root, ["registry", "tax", "social"], ["alice"], base_port=24300)
    return root


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_loaders_accept_the_file_or_the_directory_holding_it(fed: Path) -> None:
    assert load_party(fed / "tax") == load_party(fed / "tax" / "party.toml")
    alice = fed / "analysts" / "alice"
    assert load_identity(alice / "identity.toml") == load_identity(alice)
    assert load_federation(fed) == load_federation(fed / "federation.toml")


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("tax/party.toml/more", "no file at"),  # NotADirectoryError
        ("ca", "directory holding it"),  # a directory without party.toml
        ("nobody.toml", "no file at"),
    ],
)
def test_loaders_say_what_they_want(fed: Path, path: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_party(fed / path)


MISTAKES = [
    (["party", "serve", "--config", "{fed}/tax/party.toml/x"], "party.toml"),
    (["party", "serve", "--config", "{fed}/analysts"], "party.toml"),
    (["ledger", "verify", "--config", "{fed}/tax"], "ledger.sqlite"),  # not started yet
    (["ledger", "verify", "--file", "{fed}", "--federation", "{fed}"], "ledger.sqlite"),
    (
        ["ledger", "verify", "--file", "{fed}/federation.toml", "--federation", "{fed}"],
        "want a SQLite database",
    ),
    (["ledger", "log", "--file", "{fed}/x", "--federation", "{fed}/tax/party.toml"], "federation"),
    (["ledger", "verify-receipt", "{fed}", "--federation", "{fed}"], "--receipt"),
    (["ledger", "checkpoint", "--config", "{fed}/ca/ca.key"], "TOML"),
    (["query", "--identity", "{fed}/ca", "SELECT 1"], "identity.toml"),
    (["query", "--identity", "{fed}/analysts/alice/identity.toml/x", "SELECT 1"], "no file at"),
    (["datasets", "--identity", "{fed}/tax"], "identity.toml"),
    (["init", "{fed}/federation.toml", "--parties", "a,b,c"], "got a file"),
    (["keys", "request", "{fed}/tax", "--party", "tax"], "existing"),
    (
        ["ca", "sign", "{fed}/tax", "--ca", "{fed}/ca", "--federation", "{fed}", "--out", "{fed}"],
        "request.toml",
    ),
    (["demo", "--directory", "{fed}/federation.toml/demo", "--citizens", "100"], "Not a directory"),
]


@pytest.mark.parametrize(("args", "needle"), MISTAKES, ids=[" ".join(a[:3]) for a, _ in MISTAKES])
def test_path_mistakes_end_in_one_line_not_a_traceback(
    fed: Path, args: list[str], needle: str
) -> None:
    done = _cli(*(a.format(fed=fed) for a in args))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("jointstat: ")]
    assert needle in line


def test_directories_and_files_work_against_real_daemons(
    federation: Federation, tmp_path: Path
) -> None:
    identity_file = str(federation.identity / "identity.toml")
    sql = "SELECT COUNT(*) AS n FROM registry.people"
    done = _cli("query", "--identity", identity_file, "--format", "csv", sql)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["n", "3000"]
    listed = _cli("datasets", "--identity", identity_file)
    assert listed.returncode == 0 and "tax.income" in listed.stdout, listed.stderr
    verified = _cli("ledger", "verify", "--config", str(federation.directory / "tax"))
    assert verified.returncode == 0 and "ledger valid" in verified.stdout, verified.stderr
    copied = _cli(
        "ledger",
        "log",
        "--file",
        str(federation.directory / "tax" / "state"),  # the directory holding ledger.sqlite
        "--federation",
        str(federation.directory),
    )
    assert copied.returncode == 0, copied.stderr
    assert re.search(r"^\(\d+ of [\d,]+ quer(y|ies)\)$", copied.stdout, re.MULTILINE)
    receipt = _cli("query", "--identity", identity_file, "--receipt", str(tmp_path), sql)
    assert receipt.returncode == 1 and "Traceback" not in receipt.stderr
    assert receipt.stderr.startswith("jointstat: --receipt: cannot write")
