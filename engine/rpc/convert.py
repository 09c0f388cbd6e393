"""Conversion between the protobuf messages of :mod:`engine.rpc` and plain dataclasses.

The rest of the engine works on typed dataclasses; only the servers, the client and this
module touch generated protobuf classes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence

from engine.anchor.queries import PartyResultReceipt, QueryReceipts
from engine.catalog import DatasetInfo
from engine.errors import EngineError, QueryError
from engine.labels import Label
from engine.plan import Plan
from engine.protocol import (
    Collected,
    CosignCall,
    Domain,
    ExecuteOrder,
    LaneSession,
    Outcome,
    PartyDecision,
    Prepared,
    QueryOutcome,
)
from engine.request import SignedRequest
from engine.rpc import jointstat_pb2 as pb
from engine.rpc.status import error_of
from engine.sealing import SealedShares


def value_to_pb(value: object) -> pb.Value:
    if value is None:
        return pb.Value(null=True)
    if isinstance(value, bool):
        return pb.Value(boolean=value)
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise QueryError("group label: got an integer beyond 64 bits, want a smaller label")
        return pb.Value(integer=value)
    if isinstance(value, float):
        return pb.Value(real=value)
    return pb.Value(text=str(value))


def value_from_pb(message: pb.Value) -> object:
    kind = message.WhichOneof("kind")
    if kind is None or kind == "null":
        return None
    return getattr(message, kind)


def label_to_pb(label: Label) -> pb.LabelRow:
    return pb.LabelRow(values=[value_to_pb(v) for v in label])


def label_from_pb(row: pb.LabelRow) -> Label:
    return tuple(value_from_pb(v) for v in row.values)


def signed_to_pb(signed: SignedRequest) -> pb.SignedRequest:
    return pb.SignedRequest(body=signed.body, signature=signed.signature)


def signed_from_pb(message: pb.SignedRequest) -> SignedRequest:
    return SignedRequest(bytes(message.body), bytes(message.signature))


def sealed_to_pb(sealed: SealedShares) -> pb.SealedShares:
    return pb.SealedShares(
        party=sealed.party, ephemeral_key=sealed.ephemeral_key, ciphertext=sealed.ciphertext
    )


def sealed_from_pb(message: pb.SealedShares) -> SealedShares:
    return SealedShares(message.party, bytes(message.ephemeral_key), bytes(message.ciphertext))


def catalog_to_pb(
    datasets: Iterable[DatasetInfo],
    spent: Callable[[DatasetInfo], tuple[float, float]] | None = None,
) -> pb.CatalogReply:
    """Return the catalogue message; ``spent`` gives a dp dataset's (total, analyst's) spend."""
    out = []
    for d in datasets:
        total, analyst = spent(d) if spent is not None and d.budget is not None else (0.0, 0.0)
        out.append(
            pb.DatasetSchema(
                owner=d.owner,
                name=d.name,
                available=d.available,
                problem=d.problem,
                metadata=d.canonical(),
                budget_spent=total,
                analyst_budget_spent=analyst,
            )
        )
    return pb.CatalogReply(datasets=out)


def budgets_from_pb(message: pb.CatalogReply) -> dict[str, tuple[float, float]]:
    """Return, per dp dataset ("owner.name"), the epsilon spent (total, by the analyst)."""
    return {
        f"{d.owner}.{d.name}": (d.budget_spent, d.analyst_budget_spent) for d in message.datasets
    }


def catalog_from_pb(message: pb.CatalogReply) -> tuple[DatasetInfo, ...]:
    out = []
    for d in message.datasets:
        try:
            info = DatasetInfo.from_json(json.loads(d.metadata))
        except (KeyError, TypeError, ValueError) as exc:
            raise EngineError(
                f"catalog: got malformed metadata for {d.owner}.{d.name} ({type(exc).__name__})"
                ", want the canonical description"
            ) from None
        if (info.owner, info.name) != (d.owner, d.name):
            raise EngineError(f"catalog: metadata names another dataset than {d.owner}.{d.name}")
        out.append(info)
    return tuple(out)


def failure_to_pb(error: EngineError) -> pb.Failure:
    return pb.Failure(code=type(error).__name__, message=str(error))


def _failure_from_pb(message: pb.Failure) -> EngineError:
    return error_of(message.code, message.message)


def prepare_to_pb(
    batch_id: str, queries: Sequence[SignedRequest], digests: Sequence[str]
) -> pb.PrepareRequest:
    return pb.PrepareRequest(
        batch_id=batch_id,
        queries=[signed_to_pb(q) for q in queries],
        plan_digests=list(digests),
    )


def prepared_to_pb(prepared: Prepared) -> pb.PrepareReply:
    small = prepared.sessions.get("small", LaneSession(-1, False))
    large = prepared.sessions.get("large", LaneSession(-1, False))
    return pb.PrepareReply(
        decisions=[
            pb.Decision(
                query_id=d.query_id,
                approved=d.error is None,
                refusal=failure_to_pb(d.error) if d.error is not None else None,
                entry=d.entry,
                charges=list(d.charges),
            )
            for d in prepared.decisions
        ],
        session_epoch=small.epoch,
        session_ready=small.ready,
        large_session_epoch=large.epoch,
        large_session_ready=large.ready,
    )


def prepared_from_pb(message: pb.PrepareReply) -> Prepared:
    decisions = tuple(
        PartyDecision(
            d.query_id,
            None if d.approved else _failure_from_pb(d.refusal),
            bytes(d.entry),
            tuple(bytes(c) for c in d.charges),
        )
        for d in message.decisions
    )
    sessions = {
        "small": LaneSession(message.session_epoch, message.session_ready),
        "large": LaneSession(message.large_session_epoch, message.large_session_ready),
    }
    return Prepared(decisions, sessions)


def collect_to_pb(
    batch_id: str, query_ids: Sequence[str], request_indices: Sequence[int]
) -> pb.CollectRequest:
    return pb.CollectRequest(
        batch_id=batch_id, query_ids=list(query_ids), request_indices=list(request_indices)
    )


def collected_to_pb(query_ids: Sequence[str], results: Sequence[Collected]) -> pb.CollectReply:
    return pb.CollectReply(
        queries=[
            pb.QueryLabels(
                query_id=query_id,
                failure=failure_to_pb(r.error) if r.error is not None else None,
                rows=r.rows,
            )
            for query_id, r in zip(query_ids, results, strict=True)
        ]
    )


def collected_from_pb(message: pb.CollectReply) -> list[Collected]:
    return [
        Collected(_failure_from_pb(q.failure) if q.HasField("failure") else None, q.rows)
        for q in message.queries
    ]


def order_to_pb(order: ExecuteOrder) -> pb.ExecuteRequest:
    return pb.ExecuteRequest(
        job_id=order.job_id,
        epoch=order.epoch,
        queries=[
            pb.QueryDomain(
                query_id=d.query_id, request_index=d.request_index, padded_length=d.padded_length
            )
            for d in order.domains
        ],
        batch_ids=list(order.batch_ids),
        lane=order.lane,
    )


def order_from_pb(message: pb.ExecuteRequest) -> ExecuteOrder:
    return ExecuteOrder(
        message.job_id,
        message.epoch,
        tuple(Domain(q.query_id, q.request_index, q.padded_length) for q in message.queries),
        tuple(message.batch_ids),
        message.lane or "small",
    )


def outcomes_to_pb(outcomes: Sequence[Outcome]) -> pb.ExecuteReply:
    return pb.ExecuteReply(
        shares=[sealed_to_pb(o.sealed) for o in outcomes],
        result_entries=[o.entry for o in outcomes],
        openings=[o.opening for o in outcomes],
    )


def outcomes_from_pb(message: pb.ExecuteReply) -> list[Outcome]:
    return [
        Outcome(sealed_from_pb(s), bytes(e), bytes(o))
        for s, e, o in zip(message.shares, message.result_entries, message.openings, strict=True)
    ]


def cosign_from_pb(message: pb.CosignRequest) -> CosignCall:
    return CosignCall(
        tuple(bytes(e) for e in message.entries),
        message.from_size,
        message.note,
        message.old_size,
        tuple(bytes(p) for p in message.proof),
        message.apply_only,
        message.cosigned_note,
    )


def labels_to_pb(labels: Sequence[Label]) -> list[pb.LabelRow]:
    return [label_to_pb(label) for label in labels]


def receipts_to_pb(receipts: QueryReceipts) -> pb.Receipts:
    return pb.Receipts(
        request_entry=receipts.request_entry,
        request_proof=receipts.request_proof,
        results=[
            pb.PartyResult(party=r.party, entry=r.entry, proof=r.proof, opening=r.opening)
            for r in receipts.results
        ],
    )


def receipts_from_pb(message: pb.Receipts) -> QueryReceipts:
    return QueryReceipts(
        bytes(message.request_entry),
        message.request_proof,
        tuple(
            PartyResultReceipt(r.party, bytes(r.entry), r.proof, bytes(r.opening))
            for r in message.results
        ),
    )


def outcome_to_pb(
    query_id: str,
    plan: Plan,
    groups: Sequence[Label],
    shares: Sequence[SealedShares],
    threshold: int,
    seconds: float,
    receipts: QueryReceipts | None = None,
    noise_parts: float = 1.0,
) -> pb.QueryResult:
    """Return the analyst-facing result message of a finished query.

    ``noise_parts`` (dp): each party's noise is a difference of two Pólya(1/noise_parts)
    draws (noise_parts = parties − threshold: any honest majority's sum is full noise).
    """
    columns = []
    for output in plan.outputs:
        measure = plan.measures[output.measure] if output.measure is not None else None
        columns.append(
            pb.OutputColumn(
                name=output.name,
                group=-1 if output.group is None else output.group,
                function="" if output.function is None else output.function.value,
                decimals=measure.decimals if measure else 0,
                second_decimals=measure.second_decimals if measure else 0,
                measure=-1 if output.measure is None else output.measure,
            )
        )
    return pb.QueryResult(
        query_id=query_id,
        columns=columns,
        groups=labels_to_pb(groups),
        shares=[sealed_to_pb(s) for s in shares],
        threshold=threshold,
        order_by=[pb.OrderKey(output=o, descending=d) for o, d in plan.order_by],
        limit=-1 if plan.limit is None else plan.limit,
        seconds=seconds,
        receipts=receipts_to_pb(receipts) if receipts is not None else None,
        having=plan.having,
        release=plan.release,
        noisy=[
            pb.NoisyTotal(
                measure=t.measure,
                component=t.component,
                sensitivity=t.sensitivity,
                epsilon=t.epsilon,
                parts=noise_parts,
            )
            for t in plan.noisy
        ],
    )


def query_result_to_pb(outcome: QueryOutcome) -> pb.QueryResult:
    """Return the analyst-facing result message of a finished query."""
    return outcome_to_pb(
        outcome.query_id,
        outcome.plan,
        outcome.groups,
        outcome.shares,
        outcome.threshold,
        outcome.seconds,
        outcome.receipts,
        noise_parts=len(outcome.shares) / (len(outcome.shares) - outcome.threshold),
    )
