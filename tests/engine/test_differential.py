"""The differential harness: >= 300 seeded valid queries on live daemons vs DuckDB.

Marked ``differential`` (out of the default run, like ``slow``; ``.ci/run`` runs it with
``pytest -m differential tests/engine/test_differential.py``, a few minutes on 2 cores).
The queries (tests/engine/differential.py) cover every aggregate alone and several in one
SELECT, the WHERE, GROUP BY, HAVING, ORDER BY and LIMIT forms README lists, one dataset, a
UNION ALL of two agencies' and joins of two and three agencies, over the federation of
tests/engine/agencies.py (NULLs, negatives, 0/2/4 decimals, text and boolean groups).

That federation's datasets switch query-set overlap control off (``overlap_control =
false``): hundreds of similar queries would otherwise be withheld by the disclosure rules,
rightly, and results would depend on the order of queries. Its group_by columns have public
domains: every label of a domain is a result row, all-suppressed when no row has it, which
the check expects. ``JOINTSTAT_DIFFERENTIAL_SEED`` picks another seed;
``benchmarks/differential.py --examples N --seed S`` runs longer. A failure prints the SQL
and both answers.
"""

from __future__ import annotations

import os
import time

import pytest

from . import differential
from .agencies import Agencies

SEED = int(os.environ.get("JOINTSTAT_DIFFERENTIAL_SEED", "20261204"))
QUERIES = 300


@pytest.mark.differential
@pytest.mark.timeout(900)
def test_generated_queries_match_duckdb(agencies: Agencies) -> None:
    began = time.monotonic()
    with agencies.client() as client:
        tally = differential.run(client, agencies.oracle, SEED, QUERIES)
    print(f"\ndifferential: {tally.queries} queries in {time.monotonic() - began:.1f} s")
    assert tally.queries >= 300
    assert tally.refused == [], "valid queries refused:\n" + "\n".join(tally.refused[:10])
    assert tally.failures == [], "disagreements with DuckDB:\n" + "\n".join(tally.failures[:10])
