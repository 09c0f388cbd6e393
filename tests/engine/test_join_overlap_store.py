"""Each party's kept join row sets (engine.join_overlap_store): the window, its bound, and
how a party drops the rows the others lack."""

from __future__ import annotations

from pathlib import Path

from engine.join_overlap_store import JoinOverlapStore
from engine.mpc._join_overlap import job_tag
from engine.mpc.job import OverlapRecord

Q = (1 << 127) - 1


def _record(
    job: str, rows: int, agreed: tuple[int, ...] = (), complete: bool = True
) -> OverlapRecord:
    tags = tuple(job_tag(f"{job}:{s}") for s in range(rows))
    shares = tuple(tuple((s * 1000 + k) * (1 << 100) % Q for k in range(19)) for s in range(rows))
    return OverlapRecord(Q, tags, shares, agreed, complete)


def test_the_window_keeps_the_last_rows_in_order(tmp_path: Path) -> None:
    store = JoinOverlapStore(tmp_path / "join_overlap.sqlite")
    assert store.window(4) is None
    first, second = _record("j1", 2), _record("j2", 3)
    store.record("j1", first, 4)
    store.record("j2", second, 4)
    window = store.window(4)
    assert window is not None and window.modulus == Q
    assert window.tags == first.tags[1:] + second.tags  # the oldest row left the window
    assert window.rows == first.rows[1:] + second.rows  # shares come back exactly
    assert store.size() == 4
    assert (tmp_path / "join_overlap.sqlite").stat().st_mode & 0o077 == 0


def test_rows_not_every_party_held_are_dropped(tmp_path: Path) -> None:
    store = JoinOverlapStore(tmp_path / "join_overlap.sqlite")
    store.record("j1", _record("j1", 2), 8)
    held = _record("j1", 2).tags[1:]  # the others lacked row 0 of j1
    store.record("j2", _record("j2", 1, agreed=held, complete=False), 8)
    window = store.window(8)
    assert window is not None
    assert window.tags == held + _record("j2", 1).tags
