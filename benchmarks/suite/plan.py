"""What each mode of the suite runs: sizes, repeats, durations.

``smoke`` is for the test (seconds per section), ``quick`` finishes in a few minutes on
2 cores, ``full`` is the run that the README's figures come from (under an hour).
"""

from __future__ import annotations

from dataclasses import dataclass

SECTIONS = (
    "aggregates",  # single-agency and cross-region (UNION ALL) aggregates against rows
    "joins",  # 2- and 3-agency joins, filtered and grouped
    "histogram",  # GROUP BY width_bucket(...) over joined rows
    "median",  # MEDIAN over joined rows (and over one agency's rows)
    "throughput",  # small queries from 1, 4, 16 concurrent analysts
    "ledger",  # cosigned appends/s and per-query ledger overhead
    "parties",  # cost against the number of parties (3, 5, 7)
    "network",  # the distributed workloads in namespaces with 1 ms and 20 ms RTT
    "profile",  # py-spy in every party during a 3-agency join (<= 10^5 citizens)
)


@dataclass(frozen=True)
class Plan:
    """Sizes and repeats of one mode."""

    mode: str
    rows: tuple[int, ...]  # single-agency and UNION ALL aggregates
    citizens: tuple[int, ...]  # populations for the joins, histogram and median
    repeat: int  # timed runs per figure (no warm-up: the first run may be slower)
    big_repeat: int  # timed runs for sizes >= 10^6 rows or citizens
    naive_rows: tuple[int, ...]  # the naive MPyC baseline's aggregate sizes
    naive_join_rows: tuple[int, ...]  # the naive all-pairs join's rows per agency
    analysts: tuple[int, ...]
    duration: float  # seconds of each throughput run
    appends: int  # cosigned appends for the ledger rate
    ledger_queries: int  # queries per ledger on/off run
    parties: tuple[int, ...]
    party_rows: int  # the aggregate's rows in the parties section
    party_citizens: int  # the join's population in the parties section
    rtts: tuple[float, ...]  # emulated round-trip times, ms
    net_rows: int
    net_citizens: int


PLANS = {
    "smoke": Plan(
        mode="smoke",
        rows=(1_000, 4_000),
        citizens=(1_500,),
        repeat=2,
        big_repeat=1,
        naive_rows=(1_000,),
        naive_join_rows=(40,),
        analysts=(1, 4),
        duration=1.5,
        appends=300,
        ledger_queries=5,
        parties=(3, 5),
        party_rows=1_000,
        party_citizens=1_000,
        rtts=(1.0,),
        net_rows=1_000,
        net_citizens=1_000,
    ),
    "quick": Plan(
        mode="quick",
        rows=(10_000, 100_000),
        citizens=(10_000,),
        repeat=3,
        big_repeat=1,
        naive_rows=(10_000,),
        naive_join_rows=(100,),
        analysts=(1, 4, 16),
        duration=3.0,
        appends=2_000,
        ledger_queries=15,
        parties=(3, 5, 7),
        party_rows=10_000,
        party_citizens=5_000,
        rtts=(1.0, 20.0),
        net_rows=10_000,
        net_citizens=5_000,
    ),
    "full": Plan(
        mode="full",
        rows=(10_000, 100_000, 1_000_000),
        citizens=(10_000, 100_000, 1_000_000),
        repeat=3,
        big_repeat=1,
        naive_rows=(10_000, 100_000),
        naive_join_rows=(100, 300),
        analysts=(1, 4, 16),
        duration=10.0,
        appends=20_000,
        ledger_queries=40,
        parties=(3, 5, 7),
        party_rows=100_000,
        party_citizens=10_000,
        rtts=(1.0, 20.0),
        net_rows=100_000,
        net_citizens=10_000,
    ),
}
