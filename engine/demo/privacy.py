"""The demo's privacy part: attacks an analyst might try, and what stops them.

Each step prints the query, what came back and whether it is what the owners' rules want:
a refusal naming the rule, a withheld cell, or a noisy cell with its 95% interval.
"""

from __future__ import annotations

from engine.client import SUPPRESSED, Client
from engine.errors import EngineError
from engine.oracle import PlaintextOracle


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def show_privacy(client: Client, oracle: PlaintextOracle) -> int:
    """Run the privacy steps; return how many did not end as the rules want."""
    print("What an analyst cannot do (each attack of the issue tracker's review):\n")
    failures = 0
    # 1. A value as a group label: refused before any row is read.
    sql = "SELECT income + 0 AS g, COUNT(*) FROM tax.income GROUP BY g"
    print(f"[A] incomes as group labels\n    {sql}")
    try:
        client.query(sql)
        print("    ANSWERED: want a refusal\n")
        failures += 1
    except EngineError as exc:
        print(f"    refused: {exc}\n")
    # 2. Differencing: the same set, then the same minus one person.
    (region, sector, income) = oracle.execute(
        "SELECT region, sector, income FROM tax.income WHERE region = 'East' "
        "QUALIFY COUNT(*) OVER (PARTITION BY ROUND(income)) = 1 ORDER BY income LIMIT 1"
    )[0]
    assert isinstance(income, int | float)
    low, high = round(income) - 0.5, round(income) + 0.49
    base = f"SELECT COUNT(*) AS n, SUM(income) AS total FROM tax.income WHERE region = '{region}'"
    one_less = f"{base} AND NOT (sector = '{sector}' AND income BETWEEN {low} AND {high})"
    print(f"[B] differencing: a set, then the same set without one person\n    {base}")
    first = client.query(base)
    print(_indent(first.to_table()))
    print(f"    {one_less}")
    second = client.query(one_less)
    print(_indent(second.to_table()))
    if second.rows and all(v is SUPPRESSED for v in second.rows[0]):
        print("    withheld: the two sets differ by one row (query-set overlap control)\n")
    else:
        print("    RELEASED: want it withheld\n")
        failures += 1
    # 3. Differential privacy: the owner released a copy of its data under dp.
    sql = "SELECT sector, COUNT(*) AS n, AVG(income) AS mean FROM tax.income_dp GROUP BY sector"
    print(f"[C] release mode dp: noisy cells with their 95% intervals\n    {sql}")
    result = client.query(sql)
    print(_indent(result.to_table()))
    truth = {row[0]: row[1:] for row in oracle.execute(sql.replace("tax.income_dp", "tax.income"))}
    noise = {(r, c): n for r, c, n in result.noise}
    inside = total = 0
    for r, row in enumerate(result.rows):
        for c in (1, 2):
            cell = noise.get((r, c))
            want = truth.get(row[0], (0, None))[c - 1]
            if cell is None or cell.low is None or cell.high is None:
                continue
            if not isinstance(want, int | float):
                continue
            total += 1
            inside += cell.low <= float(want) <= cell.high
    print(f"    {inside} of {total} true values inside their 95% interval\n")
    if result.release != "dp" or total == 0:
        failures += 1
    return failures
