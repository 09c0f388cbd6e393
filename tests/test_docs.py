"""The repository's own documents: what docstrings cite exists, packaging metadata is
current (issue 16, item 9)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOIN_DOC = ROOT / "docs" / "join-protocol.md"
CITATION = re.compile(r'docs/join-protocol\.md(?:, "([^"]+)")?(?: and "([^"]+)")?')


def _sources() -> list[Path]:
    return sorted(
        p
        for folder in ("engine", "ledger", "benchmarks", "tests", "proto")
        for p in (ROOT / folder).rglob("*.py")
        if "_pb2" not in p.name
    )


def test_no_file_cites_a_document_outside_the_repository() -> None:
    citing = [
        str(p.relative_to(ROOT))
        for p in [*_sources(), ROOT / "README.md"]
        if p != Path(__file__) and "JOIN.md" in p.read_text()
    ]
    assert citing == []


def test_every_join_module_cites_the_protocol_and_every_cited_section_exists() -> None:
    headings = {
        line.lstrip("#").strip() for line in JOIN_DOC.read_text().splitlines() if line[:1] == "#"
    }
    modules = sorted((ROOT / "engine" / "mpc").glob("_join*.py"))
    assert len(modules) >= 10
    uncited = [p.name for p in modules if "docs/join-protocol.md" not in p.read_text()]
    assert uncited == []
    cited = {
        section
        for p in _sources()
        for match in CITATION.finditer(p.read_text())
        for section in match.groups()
        if section
    }
    assert cited, "the join modules cite sections by name"
    assert cited - headings == set()


def test_pyproject_uses_an_spdx_license_string() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"  # PEP 639; a table is deprecated
    (setuptools,) = [r for r in project["build-system"]["requires"] if "setuptools" in r]
    assert setuptools.replace(" ", "") == "setuptools>=77"  # the first to read PEP 639
