"""``jointstat demo``: a local three-agency federation, end to end, checked against DuckDB.

Generates synthetic data for a population registry, a tax bureau and a social-security
office, creates the federation (CA, keys, configs), starts the three party daemons as
separate processes on loopback, runs example queries as analyst ``alice``, prints each
secure result beside DuckDB's answer over the pooled plaintext with both times, stops the
daemons and verifies every party's copy of the ledger.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from engine.anchor import keys
from engine.client import Client
from engine.config import load_party
from engine.demo.privacy import show_privacy
from engine.demo.synthetic import PARTIES, generate
from engine.errors import EngineError
from engine.federation_init import create_federation
from engine.launch import LocalFederation
from engine.oracle import PlaintextOracle, compare
from engine.wording import counted
from ledger import LedgerStore


@dataclass(frozen=True)
class DemoQuery:
    title: str
    sql: str
    groups: tuple[int, ...]
    exact: tuple[int, ...]
    min_group_size: int = 10


QUERIES = (
    DemoQuery(
        "People born before 1960, per district (registry only)",
        "SELECT district, COUNT(*) AS people FROM registry.people WHERE birth_year < 1960 "
        "GROUP BY district ORDER BY district",
        (0,),
        (1,),
    ),
    DemoQuery(
        "Income per sector (tax bureau)",
        "SELECT sector, COUNT(*) AS taxpayers, AVG(income) AS mean_income, "
        "STDDEV_SAMP(income) AS sd_income FROM tax.income GROUP BY sector ORDER BY sector",
        (0,),
        (1,),
    ),
    DemoQuery(
        "Pensions and medical claims of pensioners, per region (social security)",
        "SELECT region, SUM(pension) AS pensions, AVG(medical_claims) AS mean_claims, "
        "VAR_POP(medical_claims) AS var_claims FROM social.benefits WHERE pension > 0 "
        "GROUP BY region ORDER BY region",
        (0,),
        (),
    ),
    DemoQuery(
        "Household survey across regions run by two agencies (UNION ALL)",
        "SELECT region, COUNT(*) AS households, SUM(household_size) AS persons, "
        "AVG(monthly_spending) AS mean_spending FROM (SELECT * FROM registry.survey "
        "UNION ALL SELECT * FROM social.survey) AS s GROUP BY region ORDER BY region",
        (0,),
        (1, 2),
        5,
    ),
    DemoQuery(
        "Across agencies (registry ⋈ tax): income of people born before 1960 in manufacturing",
        "SELECT p.district, COUNT(*) AS people, AVG(t.income) AS mean_income "
        "FROM registry.people p JOIN tax.income t ON p.citizen_id = t.citizen_id "
        "WHERE p.birth_year < 1960 AND t.sector = 'manufacturing' "
        "GROUP BY p.district ORDER BY p.district",
        (0,),
        (1,),
    ),
    DemoQuery(
        "Median across agencies (tax ⋈ registry): income of people born before 1960, per sector",
        "SELECT t.sector, COUNT(*) AS people, MEDIAN(t.income) AS median_income "
        "FROM tax.income t JOIN registry.people p ON p.citizen_id = t.citizen_id "
        "WHERE p.birth_year < 1960 GROUP BY t.sector ORDER BY t.sector",
        (0,),
        (1,),
    ),
    DemoQuery(
        "Three agencies (tax ⋈ social ⋈ registry): income and medical claims of women",
        "SELECT CORR(t.income, s.medical_claims) AS corr, "
        "REGR_SLOPE(s.medical_claims, t.income) AS slope, COUNT(*) AS n "
        "FROM tax.income t JOIN social.benefits s ON t.citizen_id = s.citizen_id "
        "JOIN registry.people p ON p.citizen_id = t.citizen_id WHERE p.sex = 'F'",
        (),
        (2,),
    ),
    DemoQuery(
        "One small cell: public-sector taxpayers in the North earning over 140,000",
        "SELECT COUNT(*) AS n, AVG(income) AS mean_income FROM tax.income "
        "WHERE region = 'North' AND sector = 'public' AND income > 140000",
        (),
        (0,),
    ),
)

EXPLAINED = 6  # the three-agency join


def run_demo(citizens: int, directory: Path | None, base_port: int, seed: int) -> int:
    """Run the demo and return the exit code (0 when every result matches DuckDB)."""
    if citizens < 100:
        raise EngineError(f"--citizens: got {citizens}, want at least 100")
    temporary = directory is None
    root = Path(tempfile.mkdtemp(prefix="jointstat-demo-")) if directory is None else directory
    if (root / "federation.toml").exists():
        raise EngineError(f"{root}: got an existing federation, want a new directory")
    print(f"jointstat demo: {citizens:,} citizens, 3 agencies, federation in {root}")
    began = time.perf_counter()
    data = generate(root, citizens, seed)
    create_federation(
        root, list(PARTIES), ["alice"], name="demo", base_port=base_port, datasets=data.datasets
    )
    print(f"  generated data and keys in {time.perf_counter() - began:.1f} s")
    oracle = PlaintextOracle(data.files)
    failures = 0
    try:
        with LocalFederation(root) as federation:
            print(
                f"  started {len(federation.processes)} party daemons "
                f"(logs in {federation.log_dir})\n"
            )
            with Client(root / "analysts" / "alice") as client:
                for number, query in enumerate(QUERIES, 1):
                    failures += _show(number, query, client, oracle)
                print(f"EXPLAIN of query {EXPLAINED + 1} (checks every policy; touches no data):")
                print(_indent(client.query("EXPLAIN " + QUERIES[EXPLAINED].sql).to_table()) + "\n")
                failures += show_privacy(client, oracle)
        failures += _check_ledgers(root)
    finally:
        if temporary and failures == 0:
            shutil.rmtree(root, ignore_errors=True)
    verdict = "all results match DuckDB" if failures == 0 else f"{failures} result(s) differ"
    print(f"daemons stopped; {len(QUERIES)} queries, {verdict}")
    if not temporary:
        print(next_steps(root))
    return 0 if failures == 0 else 1


def next_steps(root: Path) -> str:
    """Return the commands that start the kept demo federation again and query it."""
    serve = [f"jointstat party serve --config {root / name} &" for name in PARTIES]
    identity = root / "analysts" / "alice"
    return "\n".join(
        [
            f"\nThe federation is kept in {root}. To use it again, start its daemons (each "
            "logs one line when ready; stop them with kill %1 %2 %3):",
            *(f"  {line}" for line in serve),
            "then query as alice:",
            f"  jointstat datasets --identity {identity}",
            f'  jointstat query --identity {identity} "SELECT sector, COUNT(*), AVG(income) '
            'FROM tax.income GROUP BY sector"',
            f"  jointstat ledger log --config {root / PARTIES[1]}",
        ]
    )


def _check_ledgers(root: Path) -> int:
    """Verify every party's copy of the ledger and that all copies agree; 1 on a problem."""
    roots = set()
    for name in PARTIES:
        party = load_party(root / name / "party.toml")
        with LedgerStore(party.state_dir / "ledger.sqlite") as store:
            report = store.verify(keys.keyring(party.federation), keys.quorum(party.federation))
            if not report.ok:
                print(
                    f"ledger at {name} INVALID at entry {report.first_bad_index}: {report.problem}"
                )
                return 1
            roots.add((store.size, store.root.hex()))
    if len(roots) != 1:
        print(f"ledger copies differ: got {sorted(roots)}, want one size and root")
        return 1
    ((size, digest),) = roots
    print(
        f"ledger: {size} entries (registrations, requests, decisions, result commitments); "
        f"every hash, signature and cosigned checkpoint verified at all {len(PARTIES)} "
        f"parties; one root {digest[:16]}…"
    )
    print()
    return 0


def _show(number: int, query: DemoQuery, client: Client, oracle: PlaintextOracle) -> int:
    print(f"[{number}] {query.title}\n    {query.sql}")
    try:
        result = client.query(query.sql)
    except EngineError as exc:
        print(f"    secure query failed: {exc}\n")
        return 1
    reference = oracle.run(query.sql)
    print("  jointstat (MPC):")
    print(_indent(result.to_table()))
    print("  DuckDB over the pooled plaintext:")
    rows = [tuple(_fmt(v) for v in row) for row in reference.rows]
    widths = [
        max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
        for i, c in enumerate(result.columns)
    ]
    print(_indent("  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True))))
    for row in rows:
        print(_indent("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True))))
    print(_indent(f"({counted(len(rows), 'row')}, {reference.seconds * 1000:.1f} ms)"))
    problems = compare(result, reference, query.groups, query.min_group_size, query.exact)
    if problems:
        print("    MISMATCH: " + "; ".join(problems[:5]) + "\n")
        return 1
    print(
        f"    match: yes (secure {result.elapsed * 1000:.0f} ms vs plaintext "
        f"{reference.seconds * 1000:.1f} ms)\n"
    )
    return 0


def _fmt(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
