"""The gRPC edge's conversions (engine.rpc.convert): each protocol step survives the wire.

Every message is serialized to bytes and parsed back, as between two daemons, and the
dataclasses on the far side must equal the ones sent; refusals keep their class and text.
"""

from __future__ import annotations

from typing import Any

from engine.errors import CapacityError, EngineError, PolicyError, UnreachableError
from engine.protocol import (
    Collected,
    Domain,
    ExecuteOrder,
    LaneSession,
    Outcome,
    PartyDecision,
    Prepared,
)
from engine.request import SignedRequest
from engine.rpc import convert
from engine.rpc import jointstat_pb2 as pb
from engine.sealing import SealedShares


def _wire(message: Any) -> Any:
    """Return ``message`` as the receiving daemon parses it."""
    return type(message).FromString(message.SerializeToString())


def _same_error(a: EngineError | None, b: EngineError | None) -> bool:
    if a is None or b is None:
        return a is b
    return type(a) is type(b) and str(a) == str(b)


def test_a_prepare_reply_keeps_decisions_refusals_and_sessions() -> None:
    refusal = PolicyError("tax.income.citizen_id: got a join_key column in SELECT, want none")
    prepared = Prepared(
        (
            PartyDecision("q1", None, b"entry-1", (b"charge-a", b"charge-b")),
            PartyDecision("q2", refusal, b"entry-2"),
        ),
        {"small": LaneSession(4, True), "large": LaneSession(-1, False)},
    )
    back = convert.prepared_from_pb(_wire(convert.prepared_to_pb(prepared)))
    assert back.sessions == prepared.sessions
    for got, sent in zip(back.decisions, prepared.decisions, strict=True):
        assert (got.query_id, got.entry, got.charges) == (sent.query_id, sent.entry, sent.charges)
        assert _same_error(got.error, sent.error)


def test_a_prepare_request_carries_the_signed_requests_and_digests() -> None:
    signed = [SignedRequest(b'{"sql": "SELECT 1"}', b"\x01" * 64), SignedRequest(b"{}", b"")]
    message = _wire(convert.prepare_to_pb("b7", signed, ["d1", "d2"]))
    assert message.batch_id == "b7" and list(message.plan_digests) == ["d1", "d2"]
    assert [convert.signed_from_pb(q) for q in message.queries] == signed


def test_collect_answers_keep_failures_and_row_counts() -> None:
    results = [Collected(None, 1024), Collected(CapacityError("groups: got 9, want 8"))]
    reply = _wire(convert.collected_to_pb(["q1", "q2"], results))
    back = convert.collected_from_pb(reply)
    assert [r.rows for r in back] == [1024, 0]
    assert all(_same_error(g.error, s.error) for g, s in zip(back, results, strict=True))


def test_an_execute_order_and_its_outcomes_survive_the_wire() -> None:
    order = ExecuteOrder("jb3L", 2, (Domain("q1", 5, 0), Domain("q2", 6, 4096)), ("b3",), "large")
    assert convert.order_from_pb(_wire(convert.order_to_pb(order))) == order
    outcomes = [
        Outcome(SealedShares("tax", b"k" * 32, b"ciphertext"), b"entry", b"opening"),
        Outcome(SealedShares("social", b"e" * 32, b"")),
    ]
    assert convert.outcomes_from_pb(_wire(convert.outcomes_to_pb(outcomes))) == outcomes


def test_an_unknown_error_class_from_a_peer_stays_an_engine_error() -> None:
    reply = pb.CollectReply(
        queries=[pb.QueryLabels(query_id="q", failure=pb.Failure(code="Bogus", message="x"))]
    )
    (back,) = convert.collected_from_pb(_wire(reply))
    assert isinstance(back.error, EngineError) and "x" in str(back.error)
    assert not isinstance(back.error, UnreachableError)
