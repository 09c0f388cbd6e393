"""A query's life at the sequencer: the stage it has reached and how it ended.

Every query the sequencer accepts gets one :class:`QueryLife`. It moves forward through
the stages below and ends exactly once: with its result, refused (a party's decision on
the ledger says why), or aborted with a reason. A query ends in an abort on the ledger
exactly when its request is on the ledger and it did not end otherwise: the life says so
once (:meth:`QueryLife.fail` returns True only the first time), and the ledger index
(:mod:`ledger.outcomes`) keeps a retried or restarted sequencer from adding a second one.

An analyst who stops waiting (a client deadline, a disconnect) *gives up*: a query that
has not reached its MPC job is dropped at the next stage boundary and aborted on the
ledger with the reason ("client gave up after N s"); one whose MPC job has started runs
to its end, and its result is committed on the ledger (the analyst is told so).

    QUEUED -> PREPARING -> ANCHORED -> COLLECTED -> RUNNING -> COMMITTING -> ended
                  \\____________\\___________\\__________\\___________\\____> ended
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from dataclasses import dataclass, field

REMEMBERED_ENDINGS = 4096  # failed queries whose reason the ledger sweep may still need


class Stage(enum.IntEnum):
    """How far a query has come (each later stage implies the earlier ones)."""

    QUEUED = 0  # waiting for a batch
    PREPARING = 1  # every party checks it; not on the ledger yet
    ANCHORED = 2  # its request and every party's decision are on the ledger
    COLLECTED = 3  # the owners scanned; waiting for its MPC lane
    RUNNING = 4  # its MPC job has started: it runs to its end
    COMMITTING = 5  # its result commitments are being anchored


class Ending(enum.Enum):
    RESULT = "result"
    REFUSED = "refused"
    ABORTED = "aborted"


@dataclass
class QueryLife:
    """One query's stage, ledger index and ending (see the module docstring)."""

    query_id: str
    analyst: str
    began: float = field(default_factory=time.monotonic)
    stage: Stage = Stage.QUEUED
    index: int = -1  # of its request on the ledger (-1: not anchored, or no ledger)
    ending: Ending | None = None
    reason: str = ""
    gave_up: str = ""  # why the analyst stopped waiting ("" while it waits)
    operations: int = 0  # its estimated secure operations (engine.cost), once collected

    @property
    def ended(self) -> bool:
        return self.ending is not None

    @property
    def dropped(self) -> bool:
        """Return whether the query must not go on (it ended, or was given up before MPC)."""
        return self.ended or bool(self.gave_up)

    def advance(self, stage: Stage) -> None:
        """Move forward to ``stage`` (never backward). Precondition: not ended."""
        assert self.ending is None, f"query {self.query_id}: advanced after it ended"
        self.stage = max(self.stage, stage)

    def give_up(self, reason: str) -> bool:
        """Record that the analyst stopped waiting; return whether the query is cancelled
        (True before its MPC job started) or runs on to its end (False)."""
        if self.ended:
            return False
        if self.stage >= Stage.RUNNING:
            return False
        self.gave_up = reason
        return True

    def succeed(self) -> None:
        """End with the result (its commitments are on the ledger)."""
        if self.ending is None:
            self.ending = Ending.RESULT

    def refuse(self, reason: str) -> None:
        """End refused: a party's decision on the ledger holds the reason."""
        if self.ending is None:
            self.ending, self.reason = Ending.REFUSED, reason

    def fail(self, reason: str) -> bool:
        """End aborted with ``reason``; return True exactly once, when this call ended it
        and its request is on the ledger (so an abort must be anchored)."""
        if self.ending is not None:
            return False
        self.ending, self.reason = Ending.ABORTED, reason
        return self.index >= 0


class Lives:
    """The lives of the queries a sequencer holds, and the reasons of recent failures."""

    def __init__(self) -> None:
        self._live: dict[str, QueryLife] = {}
        self._failed: OrderedDict[str, str] = OrderedDict()

    def begin(self, query_id: str, analyst: str) -> QueryLife:
        """Return a new life for ``query_id`` (a replay of a live one gets its own)."""
        life = QueryLife(query_id, analyst)
        self._live.setdefault(query_id, life)
        return life

    def retire(self, life: QueryLife) -> None:
        """Forget an ended life; remember a failure's reason for the ledger sweep."""
        if self._live.get(life.query_id) is life:
            del self._live[life.query_id]
        if life.ending is Ending.ABORTED:
            self._failed[life.query_id] = life.reason
            while len(self._failed) > REMEMBERED_ENDINGS:
                self._failed.popitem(last=False)

    def is_live(self, query_id: str) -> bool:
        return query_id in self._live

    def failure(self, query_id: str) -> str | None:
        """Return why a recently retired query failed, if it did."""
        return self._failed.get(query_id)

    def __len__(self) -> int:
        return len(self._live)

    def by_analyst(self, analyst: str) -> list[QueryLife]:
        return [life for life in self._live.values() if life.analyst == analyst]
