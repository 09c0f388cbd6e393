"""The plaintext oracle itself: the reference every secure result is checked against."""

from __future__ import annotations

from pathlib import Path

from engine.oracle import PlaintextOracle


def test_each_row_pairs_with_its_own_cell_counts(tmp_path: Path) -> None:
    # A join then a grouped aggregate: DuckDB's parallel hash tables return the groups in
    # an order that changes from one query to the next, and the counts of each cell's
    # rows must still pair with that cell's row.
    left, right = tmp_path / "l.csv", tmp_path / "r.csv"
    left.write_text("k,v\n" + "".join(f"{i},{(i * 7919) % 150_000}\n" for i in range(300_000)))
    right.write_text("k,w\n" + "".join(f"{i},{i % 53}\n" for i in range(0, 300_000, 2)))
    oracle = PlaintextOracle({"a.l": left, "b.r": right})
    sql = (
        "SELECT width_bucket(l.v, 0, 150000, 10) AS bucket, COUNT(*) AS n, AVG(r.w) "
        "FROM a.l l JOIN b.r r ON l.k = r.k GROUP BY bucket"
    )
    for _ in range(10):
        result = oracle.run(sql)
        for row, counts in zip(result.rows, result.counts, strict=True):
            assert counts[0] == row[0] and counts[1] == row[1] == counts[2]
