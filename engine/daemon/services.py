"""gRPC servicers: the Analyst service (for analysts) and the Federation service (for parties).

Each method checks the caller's role from its TLS client certificate (common name
``analyst:<name>`` or ``party:<name>``), converts messages at the edge, and reports an
EngineError through :func:`engine.rpc.status.abort_with`.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc

from engine.anchor.budget import MICRO
from engine.catalog import DatasetInfo
from engine.config import PartyConfig
from engine.daemon import handlers
from engine.daemon.coordinator import Coordinator
from engine.daemon.party import Party
from engine.daemon.sequencer import QuerySequencer
from engine.errors import AuthError, EngineError, PeerError
from engine.pki import ANALYST_PREFIX, PARTY_PREFIX
from engine.request import SignedRequest, parse
from engine.rpc import convert
from engine.rpc import jointstat_pb2 as pb
from engine.rpc import jointstat_pb2_grpc as pb_grpc
from engine.rpc.convert import catalog_to_pb, signed_from_pb
from engine.rpc.status import abort_with

log = logging.getLogger(__name__)

T = TypeVar("T")
Registrar = Callable[[str, list[bytes]], Awaitable[int]]


def patience(context: Any) -> float | None:
    """Return how long the caller waits for an answer (None: no deadline)."""
    remaining = context.time_remaining()
    if remaining is None or remaining > 1e8:
        return None
    return float(remaining)


def source_of(context: Any, name: str) -> str:
    """Return where a call came from, for the log: its TLS name and address (no port)."""
    peer = str(context.peer() or "")
    address = peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer
    return f"{name or '?'}@{address}"


def peer_name(context: grpc.aio.ServicerContext, prefix: str) -> str:
    """Return the caller's name if its certificate has role ``prefix``; else raise AuthError."""
    names = context.auth_context().get("x509_common_name", [])
    common = names[0].decode() if names else ""
    if not common.startswith(prefix):
        role = prefix.rstrip(":")
        raise AuthError(f"caller: got certificate {common!r}, want a {role} certificate")
    return common[len(prefix) :]


async def _guard(context: grpc.aio.ServicerContext, body: Callable[[], Awaitable[T]]) -> T:
    try:
        return await body()
    except EngineError as exc:
        await abort_with(context, exc)
    except grpc.aio.AbortError:
        raise
    except Exception as exc:  # a bug: say where in the log, never its message (data?)
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        log.error("internal error: %s at %s (no details logged)", type(exc).__name__, where)
        await abort_with(context, EngineError(f"internal error ({type(exc).__name__}) at {where}"))


class AnalystService(pb_grpc.AnalystServicer):
    """Queries and catalog listing for analysts."""

    def __init__(self, coordinator: Coordinator, party: Party) -> None:
        self._coordinator = coordinator
        self._party = party

    async def Query(self, request: pb.SignedRequest, context: Any) -> pb.QueryResult:
        async def body() -> pb.QueryResult:
            try:
                analyst = peer_name(context, ANALYST_PREFIX)
            except AuthError as exc:
                self._coordinator.attempts.refused(
                    source_of(context, ""), type(exc).__name__, str(exc)
                )
                raise
            return await self._coordinator.query(
                signed_from_pb(request),
                analyst,
                source=source_of(context, f"analyst:{analyst}"),
                patience=patience(context),
            )

        return await _guard(context, body)

    async def ListDatasets(self, request: pb.ListDatasetsRequest, context: Any) -> pb.CatalogReply:
        async def body() -> pb.CatalogReply:
            analyst = peer_name(context, ANALYST_PREFIX)
            catalog = await self._party.catalog()
            ledger = self._party.ledger

            def spent(d: DatasetInfo) -> tuple[float, float]:
                if ledger is None:
                    return 0.0, 0.0
                return (
                    ledger.remaining(d.owner, d.name) / MICRO,
                    ledger.remaining(d.owner, d.name, analyst) / MICRO,
                )

            return catalog_to_pb(catalog.datasets, spent)

        return await _guard(context, body)

    async def GetCheckpoint(
        self, request: pb.GetCheckpointRequest, context: Any
    ) -> pb.CheckpointReply:
        async def body() -> pb.CheckpointReply:
            self._auditor(context)
            note, witness_note = await handlers.checkpoints(self._party)
            return pb.CheckpointReply(note=note, witness_note=witness_note)

        return await _guard(context, body)

    def _auditor(self, context: Any) -> None:
        """Accept an analyst's certificate or a federation party's; else raise AuthError."""
        names = context.auth_context().get("x509_common_name", [])
        common = names[0].decode() if names else ""
        if common.startswith(ANALYST_PREFIX):
            return
        parties = {PARTY_PREFIX + p.name for p in self._party.config.federation.parties}
        if common not in parties:
            raise AuthError(
                f"caller: got certificate {common!r}, want an analyst's or a federation party's"
            )


class FederationService(pb_grpc.FederationServicer):
    """The party-to-party protocol driven by the sequencer."""

    def __init__(
        self,
        config: PartyConfig,
        party: Party,
        sequencer: QuerySequencer | None,
        registrar: Registrar | None = None,
    ) -> None:
        self._config = config
        self._party = party
        self._sequencer = sequencer
        self._registrar = registrar

    def _caller(self, context: Any) -> str:
        name = peer_name(context, PARTY_PREFIX)
        if name not in {p.name for p in self._config.federation.parties}:
            raise AuthError(f"caller: got party {name!r}, want a member of the federation")
        return name

    def _from_sequencer(self, context: Any) -> None:
        caller = self._caller(context)
        if caller != self._config.federation.sequencer:
            raise AuthError(
                f"caller: got party {caller!r}, want the sequencer "
                f"{self._config.federation.sequencer!r}"
            )

    async def GetCatalog(self, request: pb.GetCatalogRequest, context: Any) -> pb.CatalogReply:
        async def body() -> pb.CatalogReply:
            self._caller(context)
            return catalog_to_pb(self._party.data.catalog())

        return await _guard(context, body)

    async def Submit(self, request: pb.SignedRequest, context: Any) -> pb.QueryResult:
        async def body() -> pb.QueryResult:
            self._caller(context)
            if self._sequencer is None:
                raise PeerError(
                    f"submit: party {self._config.name} is not the sequencer, want "
                    f"{self._config.federation.sequencer}"
                )
            outcome = await self._sequencer.submit(
                signed_from_pb(request), patience=patience(context)
            )
            return convert.query_result_to_pb(outcome)

        return await _guard(context, body)

    async def Prepare(self, request: pb.PrepareRequest, context: Any) -> pb.PrepareReply:
        async def body() -> pb.PrepareReply:
            self._from_sequencer(context)
            queries = [signed_from_pb(q) for q in request.queries]
            digests = list(request.plan_digests)
            prepared = await handlers.prepare(self._party, request.batch_id, queries, digests)
            return convert.prepared_to_pb(prepared)

        return await _guard(context, body)

    async def Collect(self, request: pb.CollectRequest, context: Any) -> pb.CollectReply:
        async def body() -> pb.CollectReply:
            self._from_sequencer(context)
            ids, indices = list(request.query_ids), list(request.request_indices)
            results = await handlers.collect(self._party, request.batch_id, ids, indices)
            return convert.collected_to_pb(ids, results)

        return await _guard(context, body)

    async def Execute(self, request: pb.ExecuteRequest, context: Any) -> pb.ExecuteReply:
        async def body() -> pb.ExecuteReply:
            self._from_sequencer(context)
            timeout = max(context.time_remaining() or 60.0, 1.0) - 0.5
            order = convert.order_from_pb(request)
            return convert.outcomes_to_pb(await handlers.execute(self._party, order, timeout))

        return await _guard(context, body)

    async def StartSession(
        self, request: pb.StartSessionRequest, context: Any
    ) -> pb.StartSessionReply:
        async def body() -> pb.StartSessionReply:
            self._from_sequencer(context)
            lane = request.lane or "small"
            seconds = await handlers.start_session(self._party, request.epoch, lane)
            return pb.StartSessionReply(seconds=seconds)

        return await _guard(context, body)

    async def Cosign(self, request: pb.CosignRequest, context: Any) -> pb.CosignReply:
        async def body() -> pb.CosignReply:
            self._from_sequencer(context)
            outcome = await handlers.cosign(self._party, convert.cosign_from_pb(request))
            return pb.CosignReply(
                cosignature=outcome.cosignature,
                mirror_size=outcome.mirror_size,
                witness_size=outcome.witness_size,
            )

        return await _guard(context, body)

    async def RecordRefusal(self, request: pb.RefusalRequest, context: Any) -> pb.RefusalReply:
        async def body() -> pb.RefusalReply:
            caller = self._caller(context)
            if self._sequencer is None:
                raise PeerError(
                    f"refusal: party {self._config.name} is not the sequencer, want "
                    f"{self._config.federation.sequencer}"
                )
            signed = signed_from_pb(request.query)
            self._sequencer.record_refusal(signed, _analyst_of(signed), caller, request.decision)
            return pb.RefusalReply()

        return await _guard(context, body)

    async def Register(self, request: pb.RegisterRequest, context: Any) -> pb.RegisterReply:
        async def body() -> pb.RegisterReply:
            caller = self._caller(context)
            if self._registrar is None:
                raise PeerError(
                    f"register: party {self._config.name} does not keep the ledger, want "
                    f"the sequencer {self._config.federation.sequencer}"
                )
            appended = await self._registrar(caller, list(request.entries))
            return pb.RegisterReply(appended=appended)

        return await _guard(context, body)


def _analyst_of(signed: SignedRequest) -> str:
    """Return the analyst a request names (its signature is checked by the sequencer)."""
    return parse(signed.body).analyst
