"""The MPC worker on its own: three real worker processes over MPyC's TLS links.

Checks the released cells against the plain formulas, and that a worker presenting
another party's certificate cannot join a session.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from fractions import Fraction
from pathlib import Path

import pytest

from engine.cells import CellKind, bounds, field_bits, fraction, reconstruct_fraction
from engine.config import PartyConfig, load_party
from engine.errors import PeerError
from engine.federation_init import create_federation
from engine.launch import free_port_block
from engine.mpc.job import CellProgram, MpcJob
from engine.mpc.session import MpcSession
from engine.shamir import recombine


def _configs(tmp_path: Path) -> list[PartyConfig]:
    create_federation(tmp_path / "f", ["a", "b", "c"], [], base_port=free_port_block(3))
    return [load_party(tmp_path / "f" / p / "party.toml") for p in "abc"]


def test_cells_are_exact_and_small_counts_suppressed(tmp_path: Path) -> None:
    configs = _configs(tmp_path)
    rng = random.Random(3)
    groups = 12
    # (Bivariate kinds and order statistics are covered by the integration tests.)
    kinds = [k for k in CellKind if not k.bivariate and k is not CellKind.VALUE]
    data = [
        [
            (rng.randint(0, 9), rng.randint(-(10**9), 10**9), rng.randint(0, 10**18))
            for _ in range(groups)
        ]
        for _ in configs
    ]
    cells = [
        (k, 3 * g, 3 * g + 1, 3 * g + 2, rng.choice([1, 5, 12]))
        for g in range(groups)
        for k in kinds
    ]
    program = CellProgram(
        tuple(c[0] for c in cells),
        tuple((c[1], c[2], c[3], -1, -1, -1, -1, -1) for c in cells),
        tuple(c[4] for c in cells),
    )
    job = MpcJob("t1", field_bits(set(kinds)), 3 * groups, program)

    async def run() -> list:  # type: ignore[type-arg]
        sessions = [MpcSession(c, tmp_path / c.name) for c in configs]
        try:
            await asyncio.gather(*(s.start(1, 30) for s in sessions))
            return await asyncio.gather(
                *(
                    s.run(job, ([v for g in data[i] for v in g], [1] * len(cells)), 60)
                    for i, s in enumerate(sessions)
                )
            )
        finally:
            await asyncio.gather(*(s.stop() for s in sessions))

    results = asyncio.run(run())
    modulus = results[0].modulus
    opened = {
        name: recombine({r.x: getattr(r, name) for r in results}, 1, modulus)
        for name in ("num", "den", "flag")
    }
    assert all(bad == [] for _, bad in opened.values())
    num, den, flag = (opened[k][0] for k in ("num", "den", "flag"))
    for index, (kind, n_at, _, _, minimum) in enumerate(cells):
        g = n_at // 3
        n, s, q = (sum(part[g][k] for part in data) for k in range(3))
        if n < minimum:
            assert flag[index] == 0 and num[index] == 0 and den[index] == 0
            continue
        assert flag[index] != 0
        want = fraction(kind, n, s, q)
        if want[1] == 0:
            assert den[index] == 0
            continue
        u = num[index] * pow(den[index], -1, modulus) % modulus
        got = reconstruct_fraction(u, modulus, *bounds(kind))
        assert Fraction(*got) == Fraction(*want)


@pytest.mark.parametrize("impostor", ["a", "c"])
def test_a_worker_with_another_partys_certificate_cannot_join(
    tmp_path: Path, impostor: str
) -> None:
    configs = _configs(tmp_path)
    sessions = [MpcSession(c, tmp_path / c.name) for c in configs]
    # The impostor presents party b's certificate and key as its own.
    index = "abc".index(impostor)
    own = tmp_path / impostor / ".config"
    shutil.copyfile(tmp_path / "b" / ".config" / "party_1.crt", own / f"party_{index}.crt")
    shutil.copyfile(tmp_path / "b" / ".config" / "party_1.key", own / f"party_{index}.key")

    async def run() -> None:
        try:
            await asyncio.gather(*(s.start(1, 6) for s in sessions))
        finally:
            await asyncio.gather(*(s.stop() for s in sessions))

    with pytest.raises(PeerError, match="links not up"):
        asyncio.run(run())
