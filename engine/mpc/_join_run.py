"""One call of the join: its public parameters, the agreement step, and the runs of its spokes.

See docs/join-protocol.md, "Public parameters".

Returns raw share vectors (numpy arrays of field elements); :mod:`engine.mpc._join` wraps
them as MPyC secure arrays, and :mod:`engine.mpc._join_open` compacts them.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import EngineError
from engine.mpc._join_field import FieldVector
from engine.mpc._join_keys import agree
from engine.mpc._join_links import check_runtime, spawn
from engine.mpc._join_noise import JoinNoise, dummy_count
from engine.mpc._join_prf import IndexVector, PairKey
from engine.mpc._join_spoke import SpokeRun, SpokeShares, align_spoke, hub_input
from engine.mpc._join_tables import JoinSide, PaddedTable

_MAX_SPOKES = 255
_MAX_WIDTH = 65_535
_MAX_LENGTH = (1 << 31) - 1  # τ, a permutation of range(2N), travels as uint32


@dataclass(frozen=True)
class Spoke:
    """A table joined onto the hub: its ``owner``, the ``helper`` and its number of columns.

    The helper must be neither the hub nor the owner; it may own another spoke.
    """

    owner: int
    helper: int
    width: int


class JoinPlan:
    """The validated public parameters of one call, and this party's place in it."""

    def __init__(
        self,
        mpc: Any,
        secint: Any,
        *,
        protocol: str,
        hub: int,
        hub_width: int,
        spokes: Sequence[Spoke],
        my_side: JoinSide | None,
        length: int,
        noise: JoinNoise,
    ) -> None:
        """Check the public arguments (the same at every party); raise ValueError if invalid.

        ``protocol`` names the variant; it is part of the digest the parties compare.
        """
        check_runtime(mpc)
        n = len(mpc.parties)
        if n < 3:
            raise ValueError(f"parties: got {n}, want at least 3")
        if mpc.threshold != 1:
            raise ValueError(f"threshold: got {mpc.threshold}, want 1 (the join tolerates one)")
        if not 1 <= len(spokes) <= _MAX_SPOKES:
            raise ValueError(f"spokes: got {len(spokes)}, want 1 to {_MAX_SPOKES}")
        owners = [s.owner for s in spokes]
        if len(set(owners)) != len(owners) or hub in owners:
            raise ValueError("spokes: got a party owning two sides, want one side per party")
        for index in [hub, *owners, *[s.helper for s in spokes]]:
            if not 0 <= index < n:
                raise ValueError(f"party index: got {index}, want 0 <= index < {n}")
        for s in spokes:
            if s.helper in (hub, s.owner):
                raise ValueError(f"helper: got {s.helper}, want neither hub nor owner")
        for width in [hub_width, *[s.width for s in spokes]]:
            if not 0 <= width <= _MAX_WIDTH:
                raise ValueError(f"width: got {width}, want 0 to {_MAX_WIDTH}")
        if not 2 * noise.dummies <= length <= _MAX_LENGTH:
            raise ValueError(
                f"padded length: got {length}, want {2 * noise.dummies} to {_MAX_LENGTH}"
            )
        self.n, self.me, self.hub, self.hub_width = n, mpc.pid, hub, hub_width
        self.spokes, self.length, self.noise = tuple(spokes), length, noise
        self.modulus: int = secint.field.order
        self.bits: int = secint.bit_length
        owns_side = mpc.pid == hub or mpc.pid in owners
        if owns_side != (my_side is not None):
            want = "a JoinSide" if owns_side else "None"
            raise ValueError(
                f"my_side of party {mpc.pid}: got {type(my_side).__name__}, want {want}"
            )
        public = {
            "protocol": protocol,
            "parties": n,
            "hub": hub,
            "hub_width": hub_width,
            "spokes": [[s.owner, s.helper, s.width] for s in spokes],
            "length": length,
            "dummies": noise.dummies,
            "epsilon": [noise.epsilon.numerator, noise.epsilon.denominator],
            "modulus": str(self.modulus),
            "bits": self.bits,
        }
        self.digest = hashlib.sha256(json.dumps(public, sort_keys=True).encode()).digest()

    def run(self, k: int) -> SpokeRun:
        """Return the public description of spoke ``k`` as seen by this party."""
        spoke = self.spokes[k]
        return SpokeRun(
            index=k,
            parties=self.n,
            me=self.me,
            hub=self.hub,
            owner=spoke.owner,
            helper=spoke.helper,
            hub_width=self.hub_width,
            width=spoke.width,
            length=self.length,
            dummies=self.noise.dummies,
            modulus=self.modulus,
        )


@dataclass
class StarShares:
    """This party's raw shares after a star join, and its pair keys for the call.

    ``hub_rows`` is set at the hub only (:meth:`PaddedTable.side_rows` of its side).
    """

    keys: dict[int, PairKey]
    hub_columns: list[FieldVector]
    spokes: list[SpokeShares]
    hub_rows: IndexVector | None = None


async def run_star(mpc: Any, plan: JoinPlan, my_side: JoinSide | None) -> StarShares:
    """Run every step of the join for ``plan``; return this party's shares.

    Errors as documented in :func:`engine.mpc._join.star_join`.
    """
    local = _prepare_locally(plan, my_side)
    keys = await agree(mpc, plan.digest, isinstance(local, EngineError), "join")
    if isinstance(local, EngineError):
        raise local
    hub_table, d_hub, own_table, d_own = local
    hub_shares = spawn(mpc, lambda: hub_input(mpc, plan.run(0), keys, hub_table))
    runs = []
    for k in range(len(plan.spokes)):
        table = hub_table if plan.me == plan.hub else own_table
        partial = d_hub[k] if plan.me == plan.hub else d_own
        run = functools.partial(align_spoke, mpc, plan.run(k), keys, table, partial)
        runs.append(spawn(mpc, run))
    hub_columns = await hub_shares
    hub_rows = hub_table.side_rows() if hub_table is not None else None
    return StarShares(keys, hub_columns, [await r for r in runs], hub_rows)


_Local = tuple[PaddedTable | None, list[int], PaddedTable | None, int]


def _prepare_locally(plan: JoinPlan, my_side: JoinSide | None) -> _Local | EngineError:
    """Pad and shuffle this party's side and draw its dummy counts (protocol step 1)."""
    reserve = 2 * plan.noise.dummies
    try:
        if my_side is None:
            return None, [], None, 0
        if plan.me == plan.hub:
            width = plan.hub_width
        else:
            (width,) = [s.width for s in plan.spokes if s.owner == plan.me]
        table = PaddedTable(my_side, width, plan.length, reserve, plan.modulus, plan.bits)
        if plan.me == plan.hub:
            return table, [dummy_count(plan.noise) for _ in plan.spokes], None, 0
        return None, [], table, dummy_count(plan.noise)
    except EngineError as exc:
        return exc
