"""The sequencer's third stage: a job's results, released once anchored.

Each party's commitment to its sealed shares goes on the ledger before the analyst gets
them; the next MPC job does not wait for that ledger round (engine.daemon.execute_stage
starts :func:`release` as a task and goes on).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable

from engine.anchor.queries import QueryReceipts
from engine.daemon.batch import CollectedPart, Crew, PendingQuery
from engine.labels import Label
from engine.protocol import Outcome, QueryOutcome

log = logging.getLogger(__name__)


async def release(
    crew: Crew,
    job_id: str,
    parts: list[CollectedPart],
    queries: int,
    done: list[tuple[int, PendingQuery, list[Label]]],
    executed: list[list[Outcome]],
    anchoring: Awaitable[list[QueryReceipts]] | None,
    marks: list[float],
) -> None:
    """Wait until the results of one MPC job are anchored, then release them."""
    pendings = [pending for _, pending, _ in done]
    with crew.ending_on_failure(pendings, "anchoring results"):
        receipts: list[QueryReceipts | None] = [None] * len(done)
        if anchoring is not None:
            receipts = list(await anchoring)
        first = parts[0]
        marks = [*marks, time.perf_counter()]
        seconds = marks[-1] - first.began
        threshold = crew.config.federation.threshold
        for (index, pending, groups), receipt in zip(done, receipts, strict=True):
            shares = tuple(reply[index].sealed for reply in executed)
            crew.succeeded(
                pending,
                QueryOutcome(
                    pending.signed.query_id,
                    pending.plan,
                    tuple(groups),
                    shares,
                    threshold,
                    seconds,
                    receipt,
                ),
            )
        log.info(
            "job %s: %d batches, %d queries in %.1f ms (first batch: prepare %.1f, "
            "anchor %.1f, collect %.1f, wait+execute %.1f, anchor results %.1f)",
            job_id,
            len(parts),
            queries,
            seconds * 1000,
            (marks[0] - first.began) * 1000,
            *((b - a) * 1000 for a, b in itertools.pairwise(marks)),
        )
