"""The MPC job of a batch of queries, as plain data shared by the daemon and the worker.

A batch runs as one MPC job so that many small queries share the rounds of one secure
computation. Every party builds the same :class:`MpcJob` from the same batch (the layout
depends only on the plans and the agreed group domains) and supplies its own private
input vector; the worker returns this party's Shamir shares of the released cells.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.cells import CellKind


@dataclass(frozen=True)
class CellProgram:
    """The released cells of a batch: one entry per cell, indices into the input vector.

    ``s_index``/``q_index`` are -1 where the kind does not use them.
    """

    kinds: tuple[CellKind, ...]
    n_index: tuple[int, ...]
    s_index: tuple[int, ...]
    q_index: tuple[int, ...]
    min_size: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.kinds)


@dataclass(frozen=True)
class MpcJob:
    """One secure computation: sum the parties' inputs, release the cells."""

    job_id: str
    field_bits: int
    input_length: int
    cells: CellProgram


@dataclass(frozen=True)
class JobResult:
    """This party's shares of the released cells: numerators, denominators, flags.

    ``x`` is this party's Shamir evaluation point (index + 1). A flag share reconstructs
    to 0 when a cell is suppressed and to a random non-zero value otherwise.
    """

    job_id: str
    modulus: int
    x: int
    num: tuple[int, ...]
    den: tuple[int, ...]
    flag: tuple[int, ...]


@dataclass(frozen=True)
class JobFailure:
    """The worker could not finish a job; ``reason`` names what failed (no data)."""

    job_id: str
    reason: str


@dataclass(frozen=True)
class SessionReady:
    """Sent once by the worker when all MPC links are up."""

    epoch: int
    modulus_hint: int = 0
