"""Test-only pauses at named stages of a query, for the fault suite. Inert in production.

``JOINTSTAT_TEST_PAUSE="stage:seconds[,stage:seconds...]"`` in a daemon's environment makes
it sleep that long each time a query reaches ``stage``, so that a test can kill or stop a
process at a known point. Stages:

- ``prepare`` — a party, at the start of Prepare (before checking the batch);
- ``approved`` — the sequencer, after the requests and decisions are anchored, before
  Collect;
- ``collect`` — a party, at the start of Collect (before scanning);
- ``execute`` — a party, at the start of Execute (before its MPC job);
- ``execute-large`` — the same, for jobs of the large MPC lane only;
- ``anchor-results`` — the sequencer, after the MPC job, before anchoring the results.

Without the variable (every real deployment) :func:`pause_at` returns at once.
"""

from __future__ import annotations

import asyncio
import logging
import os

log = logging.getLogger(__name__)

VARIABLE = "JOINTSTAT_TEST_PAUSE"
STAGES = ("prepare", "approved", "collect", "execute", "execute-large", "anchor-results")


def _parse(text: str) -> dict[str, float]:
    pauses = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        stage, _, seconds = item.partition(":")
        if stage in STAGES:
            pauses[stage] = float(seconds or 0)
    return pauses


_PAUSES = _parse(os.environ.get(VARIABLE, ""))
if _PAUSES:
    log.warning("test pauses on (%s=%s): not for production", VARIABLE, os.environ[VARIABLE])


async def pause_at(stage: str) -> None:
    """Sleep at ``stage`` if the test variable asks for it; return at once otherwise."""
    seconds = _PAUSES.get(stage)
    if seconds:
        log.info("test pause: %s for %.1f s", stage, seconds)
        await asyncio.sleep(seconds)
