"""No code from a peer: MPC workers refuse a crafted pickle sent by another party's worker.

Real worker processes over MPyC's TLS links, started through our worker entry point
(:class:`engine.mpc.session.MpcSession`); party b is a real MPyC party whose outgoing
shares are a pickle that would create a marker file (``tests/engine/peer_workers.py``).
The honest workers refuse it, log it, report a PeerError naming b, and a new epoch with
an honest b succeeds. The control test starts the honest workers without the codec: the
same message then runs its code.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import NoReturn

import mpyc
import pytest

from engine.cells import CellKind, field_bits
from engine.config import PartyConfig, load_party
from engine.errors import PeerError
from engine.federation_init import create_federation
from engine.launch import free_port_block
from engine.mpc._peer_links import FRAME, MAX_FRAME, Refusals, receive_frames
from engine.mpc.job import CellProgram, JobResult, MpcJob
from engine.mpc.session import MpcSession
from engine.shamir import recombine

WORKERS = Path(__file__).with_name("peer_workers.py")
GROUPS = 4


class _EvilSession(MpcSession):
    worker_argv = (str(WORKERS), "evil")


class _UnguardedSession(MpcSession):
    worker_argv = (str(WORKERS), "unguarded")


def _configs(tmp_path: Path) -> list[PartyConfig]:
    create_federation(tmp_path / "f", ["a", "b", "c"], [], base_port=free_port_block(3))
    return [load_party(tmp_path / "f" / p / "party.toml") for p in "abc"]


def _count_job(job_id: str) -> MpcJob:
    program = CellProgram(
        (CellKind.COUNT,) * GROUPS,
        tuple((g, -1, -1, -1, -1, -1, -1, -1) for g in range(GROUPS)),
        (1,) * GROUPS,
    )
    return MpcJob(job_id, field_bits({CellKind.COUNT}), GROUPS, program)


async def _run(sessions: list[MpcSession], epoch: int, job: MpcJob) -> list[object]:
    try:
        await asyncio.gather(*(s.start(epoch, 30) for s in sessions))
        runs = (s.run(job, ([i + 1] * GROUPS, [1] * GROUPS), 30) for i, s in enumerate(sessions))
        return await asyncio.gather(*runs, return_exceptions=True)
    finally:
        await asyncio.gather(*(s.stop() for s in sessions))


def test_mpyc_decodes_peer_bytes_only_through_the_pickle_the_worker_replaces() -> None:
    """Every pickle use in MPyC is ``pickle.dumps``/``pickle.loads`` on runtime's global."""
    package = Path(mpyc.__file__).parent
    unpicklers = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle"}
    users = {}
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        if imported & unpicklers:
            users[path.name] = tree
    assert set(users) == {"runtime.py"}
    uses = [
        node
        for node in ast.walk(users["runtime.py"])
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "pickle"
    ]
    assert uses and {u.attr for u in uses} == {"dumps", "loads"}
    names = [n for n in ast.walk(users["runtime.py"]) if isinstance(n, ast.Name)]
    assert sum(n.id == "pickle" for n in names) == len(uses)  # no other use of the name


def test_a_peer_pickle_that_would_run_code_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    monkeypatch.setenv("JOINTSTAT_TEST_MARKER", str(marker))
    configs = _configs(tmp_path)
    sessions = [
        MpcSession(configs[0], tmp_path / "a"),
        _EvilSession(configs[1], tmp_path / "b"),
        MpcSession(configs[2], tmp_path / "c"),
    ]
    outcomes = asyncio.run(_run(sessions, 1, _count_job("evil-1")))
    logs = capfd.readouterr().err
    assert not marker.exists()
    honest = [outcomes[0], outcomes[2]]
    assert all(isinstance(o, PeerError) for o in honest), honest
    named = [str(o) for o in honest if "party b sent an MPC message" in str(o)]
    assert named, honest  # the other may see the first one's session end first
    assert all("not a share message" in n and "refused" in n for n in named)
    logged = "MPC message from party b (index 1) refused"
    refusals = [line for line in logs.splitlines() if logged in line]
    assert len(refusals) == len(named)  # once per refusing worker
    assert all("bytes)" in line for line in refusals)
    assert "Traceback" not in logs

    # A new epoch with an honest b: the sessions work again.
    honest_b = [MpcSession(c, tmp_path / c.name) for c in configs]
    results = asyncio.run(_run(honest_b, 2, _count_job("after-1")))
    assert all(isinstance(r, JobResult) for r in results), results
    modulus = results[0].modulus  # type: ignore[union-attr]
    num, bad = recombine({r.x: r.num for r in results}, 1, modulus)  # type: ignore[union-attr]
    den, _ = recombine({r.x: r.den for r in results}, 1, modulus)  # type: ignore[union-attr]
    assert bad == []
    assert [n * pow(d, -1, modulus) % modulus for n, d in zip(num, den, strict=True)] == [
        6
    ] * GROUPS


def test_without_the_codec_the_same_pickle_runs_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    monkeypatch.setenv("JOINTSTAT_TEST_MARKER", str(marker))
    configs = _configs(tmp_path)
    sessions = [
        _UnguardedSession(configs[0], tmp_path / "a"),
        _EvilSession(configs[1], tmp_path / "b"),
        _UnguardedSession(configs[2], tmp_path / "c"),
    ]
    asyncio.run(_run(sessions, 1, _count_job("evil-2")))
    assert marker.exists()


class _Link:
    """The fields of MPyC's MessageExchanger that receive_frames reads and writes."""

    def __init__(self, peer: int) -> None:
        self.peer_pid = peer
        self.bytes = bytearray()
        self.buffers: dict[int, object] = {}


class _Refused(Exception):
    pass


class _RaisingRefusals(Refusals):
    def refuse(self, peer: int | None, size: int, reason: str) -> NoReturn:
        raise _Refused(f"{self.party(peer)} {size} {reason}")


def _frame(pc: int, payload: bytes) -> bytes:
    return FRAME.pack(pc, len(payload)) + payload


def test_frames_are_delivered_whole_and_tagged_with_their_sender() -> None:
    link, refusals = _Link(2), _RaisingRefusals(["a", "b", "c"])
    waiting: asyncio.Future[bytes] = asyncio.new_event_loop().create_future()
    link.buffers[7] = waiting
    stream = _frame(5, b"first") + _frame(7, b"second") + _frame(9, b"")
    for at in range(0, len(stream), 3):  # arriving in pieces
        receive_frames(link, stream[at : at + 3], refusals)
    assert link.bytes == bytearray()
    first, empty = link.buffers.pop(5), link.buffers.pop(9)
    assert (first, empty, waiting.result()) == (b"first", b"", b"second")
    assert {first.peer, empty.peer, waiting.result().peer} == {2}  # type: ignore[attr-defined]
    assert link.buffers == {}


def test_an_oversized_or_repeated_frame_is_refused() -> None:
    refusals = _RaisingRefusals(["a", "b", "c"])
    with pytest.raises(_Refused, match=r"b \d+ MPC frame: got \d+ bytes, want <="):
        receive_frames(_Link(1), FRAME.pack(3, MAX_FRAME + 1), refusals)
    link = _Link(1)
    with pytest.raises(_Refused, match="b 1 MPC frame: got a second message for program counter 3"):
        receive_frames(link, _frame(3, b"x") + _frame(3, b"y"), refusals)
