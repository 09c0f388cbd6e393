"""ledger.outcomes: which requests are open, on entries in log order."""

from __future__ import annotations

from ledger import Decision, QueryAborted, QueryDecided, QueryRequested, ResultCommitted
from ledger.entries import request_hash
from ledger.outcomes import QueryOutcomes

BODY = b"a request"
HASH = request_hash(BODY)


def _request(query_id: str) -> QueryRequested:
    return QueryRequested(query_id, "alice", BODY, "registry", b"")


def test_a_request_is_open_until_a_result_refusal_or_abort_ends_it() -> None:
    index = QueryOutcomes()
    for i, query_id in enumerate(("q1", "q2", "q3", "q4")):
        index.add(i, _request(query_id))
    index.add(4, QueryDecided("q1", "tax", HASH, Decision.APPROVED))
    index.add(5, QueryDecided("q2", "tax", HASH, Decision.REFUSED, "PolicyError: hidden"))
    index.add(6, ResultCommitted("q3", HASH, b"\x01" * 32))
    index.add(7, QueryAborted("q4", "registry", HASH, "PeerError: down"))
    assert [q.query_id for q in index.open_queries()] == ["q1"]
    assert index.open_queries()[0].index == 0 and index.open_queries()[0].request_hash == HASH
    assert not index.is_open("q2") and not index.is_open("unknown")


def test_a_replayed_request_opens_the_query_again() -> None:
    index = QueryOutcomes()
    index.add(0, _request("q1"))
    index.add(1, QueryAborted("q1", "registry", HASH, "sequencer restarted"))
    index.add(2, _request("q1"))
    assert index.is_open("q1")
    assert index.open_queries()[0].index == 2


def test_an_ending_ends_the_latest_open_request_of_a_replayed_query() -> None:
    index = QueryOutcomes()
    index.add(0, _request("q1"))  # the original, running
    index.add(1, _request("q1"))  # its replay, refused at once
    index.add(2, QueryDecided("q1", "tax", HASH, Decision.REFUSED, "AuthError: replayed"))
    assert [q.index for q in index.open_queries()] == [0]  # the original still must end
    index.add(3, QueryAborted("q1", "registry", HASH, "sequencer restarted"))
    assert not index.is_open("q1")


def test_the_parties_commitments_to_one_result_end_one_request() -> None:
    index = QueryOutcomes()
    index.add(0, _request("q1"))
    index.add(1, _request("q1"))  # a replay not yet decided
    for i in range(3):
        index.add(2 + i, ResultCommitted("q1", HASH, bytes([i]) * 32))
    assert [q.index for q in index.open_queries()] == [0]
