"""What a party does for each batch: check, scan, compute — deciding from its own policy.

The sequencer drives a batch through three calls on every party (see the Federation
service in the .proto): ``prepare`` (verify each request and its plan; no data read),
``collect`` (run this party's plaintext scans; nothing about them is reported but, for a
join, its table's size rounded up to a power of two) and ``execute`` (feed
this party's partial aggregates to the batch's MPC job and seal its shares to each
analyst). A party never takes the sequencer's word for a plan: it plans each query itself
from the signed SQL and its own view of the catalog, and compares digests.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from engine.anchor.party_ledger import PartyLedger
from engine.catalog import Catalog, DatasetInfo
from engine.config import PartyConfig, ReleaseMode
from engine.errors import (
    CatalogMissError,
    EngineError,
    PeerError,
    PolicyError,
    UnsupportedError,
)
from engine.local import LocalData
from engine.local_scan import JoinTable, ScanResult
from engine.mpc.job import JobResult
from engine.mpc.join_layout import join_extras, join_input, join_job
from engine.mpc.layout import QuerySlot, layout, local_inputs, noise_inputs
from engine.mpc.session import MpcSession
from engine.nonces import NonceStore
from engine.overlap import OverlapHistory, Sketch
from engine.plan import JoinPlan, Plan, QueryPlan
from engine.planner import plan_query
from engine.protocol import Collected, Domain, Outcome, PartyDecision
from engine.request import QueryRequest, SignedRequest, verify
from engine.sealing import Shares, seal
from ledger import encode_entry

log = logging.getLogger(__name__)

CATALOG_TTL_SECONDS = 30.0
DATA_CHECK_SECONDS = 1.0  # how often a party looks for changed data files
PLAN_CACHE_SIZE = 1024
BATCH_STATE_TTL_SECONDS = 600.0
MAX_TRACKED_APPROVALS = 10_000
ANCHOR_WAIT_SECONDS = 10.0  # an approval whose request is not anchored by then never will be


@dataclass
class _Approved:
    query_id: str
    request: QueryRequest
    request_hash: bytes
    plan: Plan
    partials: list[ScanResult] | None = None  # set by collect (aggregates), per own scan
    table: JoinTable | None = None  # set by collect (this party's side of a join)


@dataclass
class _Batch:
    created: float
    queries: dict[str, _Approved] = field(default_factory=dict)


CatalogFetcher = Callable[[str], Awaitable[tuple[DatasetInfo, ...]]]


class Party:
    """One agency's daemon state: its data, its policy decisions, its MPC session."""

    def __init__(
        self,
        config: PartyConfig,
        data: LocalData,
        session: MpcSession,
        fetch_catalog: CatalogFetcher,
        ledger: PartyLedger | None = None,
        large_session: MpcSession | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.data = data
        self.session = session
        # One MPC session per lane (engine.daemon.lanes); the large lane's is optional
        # for callers that run no large jobs (it then shares the small one's).
        self.sessions = {"small": session, "large": large_session or session}
        self.draining = False  # stopping: new batches are refused, those under way finish
        self._approved_at: dict[str, float] = {}  # query id -> when this party approved it
        self._serving = 0  # Collect and Execute calls under way
        self._contacted = time.monotonic()  # the sequencer's last call
        self.nonces = NonceStore(
            config.state_dir / "nonces.sqlite", config.federation.max_request_age_seconds
        )
        self.overlap = OverlapHistory(config.state_dir / "overlap.sqlite")
        self._peer_catalogs: dict[str, tuple[float, tuple[DatasetInfo, ...]]] = {}
        self._plans: OrderedDict[tuple[str, str, str], Plan] = OrderedDict()
        self._batches: dict[str, _Batch] = {}
        self._fetch_catalog = fetch_catalog
        self._catalog: tuple[int, Catalog] | None = None
        self._data_checked = 0.0

    # ------------------------------------------------------------------ catalog

    async def catalog(self, *, refresh: bool = False) -> Catalog:
        """Return the federation catalog: own datasets live, peers' cached for a while."""
        now = time.monotonic()
        if refresh or now - self._data_checked > DATA_CHECK_SECONDS:
            await asyncio.to_thread(self.data.refresh)
            self._data_checked = now
        stale = refresh or any(
            now - self._peer_catalogs.get(p.name, (-1e9, ()))[0] > CATALOG_TTL_SECONDS
            for p in self.config.federation.parties
            if p.name != self.config.name
        )
        if not stale and self._catalog is not None and self._catalog[0] == self.data.version:
            return self._catalog[1]
        datasets = list(self.data.catalog())
        for party in self.config.federation.parties:
            if party.name == self.config.name:
                continue
            cached = self._peer_catalogs.get(party.name)
            if cached is None or refresh or now - cached[0] > CATALOG_TTL_SECONDS:
                try:
                    infos = await self._fetch_catalog(party.name)
                    cached = (now, tuple(i for i in infos if i.owner == party.name))
                    self._peer_catalogs[party.name] = cached
                except PeerError as exc:
                    log.warning("catalog of %s unavailable: %s", party.name, exc)
                    if cached is None:
                        continue
            datasets.extend(cached[1])
        catalog = Catalog(tuple(datasets))
        self._catalog = (self.data.version, catalog)
        return catalog

    async def plan(self, sql: str, analyst: str, *, refresh: bool = False) -> Plan:
        """Plan ``sql`` for ``analyst`` against the current catalog (cached by digest)."""
        catalog = await self.catalog(refresh=refresh)
        key = (sql, analyst, catalog.digest())
        plan = self._plans.get(key)
        if plan is None:
            try:
                plan = plan_query(sql, catalog, analyst)
            except CatalogMissError:
                if refresh:
                    raise
                # A peer's catalog may be missing or stale (it just started or changed).
                return await self.plan(sql, analyst, refresh=True)
            threshold = self.config.federation.threshold
            if isinstance(plan, JoinPlan) and threshold != 1:
                raise UnsupportedError(
                    f"not supported yet: joins in a federation with threshold {threshold}; "
                    "want federation.threshold = 1 (the private join tolerates one "
                    "dishonest party)"
                )
            self._plans[key] = plan
            if len(self._plans) > PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return plan

    # ------------------------------------------------------------------ prepare

    async def prepare(
        self, batch_id: str, requests: list[SignedRequest], digests: list[str]
    ) -> list[PartyDecision]:
        """Check every request of a batch; remember the approved ones. Reads no data.

        With the ledger on, each decision comes with this party's signed entry for it.
        """
        self._expire()
        batch = self._batches.setdefault(batch_id, _Batch(time.monotonic()))
        decisions = []
        now = time.time()
        for signed, digest in zip(requests, digests, strict=True):
            query_id = signed.query_id
            error: EngineError | None = None
            try:
                request = verify(signed, self.config.federation, peer_analyst=None, now=now)
                self.nonces.remember(request.analyst, request.nonce, now)
                plan = await self.plan(request.sql, request.analyst)
                if plan.digest() != digest:
                    plan = await self.plan(request.sql, request.analyst, refresh=True)
                if plan.digest() != digest:
                    raise PolicyError(
                        f"plan: party {self.config.name} planned this query differently "
                        "from the sequencer, want identical catalogs (retry shortly)"
                    )
                # Anything this party's SQL would fail on fails now, on no rows.
                await asyncio.to_thread(self.data.dry_run, plan)
                if plan.charges:
                    if self.ledger is None:
                        raise PolicyError(
                            "release mode dp: got a federation without the ledger, want "
                            "federation.ledger = true (the privacy budget is kept there)"
                        )
                    self.ledger.check_budget(request.analyst, plan.charges)
                digest_bytes = hashlib.sha256(signed.body).digest()
                batch.queries[query_id] = _Approved(query_id, request, digest_bytes, plan)
                self._approved_at[query_id] = time.monotonic()
                if len(self._approved_at) > MAX_TRACKED_APPROVALS:
                    self.in_flight()  # forget the ended ones
            except EngineError as exc:
                log.info("query %s refused by %s: %s", query_id, self.config.name, exc)
                error = exc
            entry = b""
            charges: tuple[bytes, ...] = ()
            if self.ledger is not None:
                reason = None if error is None else f"{type(error).__name__}: {error}"
                entry = encode_entry(self.ledger.decide(query_id, signed.body, reason))
                approved = batch.queries.get(query_id)
                if error is None and approved is not None:
                    charges = tuple(
                        encode_entry(
                            self.ledger.charge(query_id, signed.body, approved.request.analyst, c)
                        )
                        for c in approved.plan.charges
                        if c.owner == self.config.name
                    )
            decisions.append(PartyDecision(query_id, error, entry, charges))
        return decisions

    # ------------------------------------------------------------------ collect

    async def collect(
        self, batch_id: str, query_ids: list[str], request_indices: list[int]
    ) -> list[Collected]:
        """Run this party's scans for each query; return what Collect reports, or the error.

        With the ledger on, a query's data is touched only once its request and this
        party's approval are in this party's mirror. For a join, this party also reports
        its table's size rounded up to a power of two (the padded length depends on it).
        """
        batch = self._batches.get(batch_id)
        if batch is None:
            raise PeerError(f"batch {batch_id}: unknown at {self.config.name}, want prepare first")
        indices = request_indices or [-1] * len(query_ids)
        out: list[Collected] = []
        for query_id, index in zip(query_ids, indices, strict=True):
            approved = batch.queries.get(query_id)
            if approved is None:
                error = PeerError(f"query {query_id}: not approved at {self.config.name}")
                out.append(Collected(error))
                continue
            try:
                if self.ledger is not None:
                    self.ledger.check_anchored(query_id, index)
                    if approved.plan.charges:
                        self.ledger.check_charged(
                            query_id, approved.request.analyst, approved.plan.charges
                        )
                out.append(await asyncio.to_thread(self._collect, approved))
            except EngineError as exc:
                log.info("query %s: scan failed at %s: %s", query_id, self.config.name, exc)
                out.append(Collected(exc))
        return out

    def _collect(self, approved: _Approved) -> Collected:
        plan = approved.plan
        if isinstance(plan, JoinPlan):
            for scan in plan.scans:
                if scan.party == self.config.name:
                    approved.table = self.data.join_scan(scan)
                    rows = self.data.row_count(scan.dataset)
                    bound = 1 << max(rows - 1, 0).bit_length()
                    return Collected(None, bound)
            return Collected(None)
        approved.partials = [
            self.data.scan(scan, plan.measures, overlap=plan.release == ReleaseMode.EXACT.value)
            for scan in plan.scans
            if scan.party == self.config.name
        ]
        return Collected(None)

    # ------------------------------------------------------------------ execute

    async def execute(
        self,
        job_id: str,
        batch_ids: list[str],
        epoch: int,
        domains: list[Domain],
        timeout: float,
        lane: str = "small",
    ) -> list[Outcome]:
        """Run the MPC jobs of collected batches; return this party's outcome per query.

        ``domains`` holds each query's request index on the ledger and, for a join, the
        padded length, in ledger order (its groups are its plan's); consecutive aggregate
        queries share
        one MPC job, each join query runs its own. With the ledger on, jobs must come in the
        order of their requests on it, per MPC ``lane`` (a batch's queries may be split
        between the lanes: only the queries named in ``domains`` are taken from it).
        """
        queries: dict[str, _Approved] = {}
        named = {d.query_id for d in domains}
        for batch_id in batch_ids:
            batch = self._batches.get(batch_id)
            if batch is None:
                raise PeerError(
                    f"batch {batch_id}: unknown at {self.config.name}, want collect first"
                )
            for query_id in named & set(batch.queries):
                queries[query_id] = batch.queries.pop(query_id)
            if not batch.queries:
                del self._batches[batch_id]
        session = self.sessions.get(lane)
        if session is None:
            raise PeerError(f"MPC lane: got {lane!r}, want small or large")
        if not session.ready or session.epoch != epoch:
            raise PeerError(
                f"MPC session ({lane} lane) at {self.config.name}: got epoch {session.epoch} "
                f"(ready={session.ready}), want live epoch {epoch}"
            )
        if self.ledger is not None:
            self.ledger.check_order([d.request_index for d in domains], lane)
        found = []
        for domain in domains:
            approved = queries.get(domain.query_id)
            if approved is None:
                raise PeerError(f"query {domain.query_id}: not prepared at {self.config.name}")
            found.append((domain, approved))
        outcomes: list[Outcome] = []
        segment: list[tuple[Domain, _Approved]] = []
        for number, (domain, approved) in enumerate(found):
            if isinstance(approved.plan, JoinPlan):
                outcomes += await self._aggregates(f"{job_id}.{number}a", segment, timeout, session)
                segment = []
                outcomes.append(
                    await self._join(f"{job_id}.{number}", domain, approved, timeout, session)
                )
            else:
                segment.append((domain, approved))
        outcomes += await self._aggregates(f"{job_id}.end", segment, timeout, session)
        return outcomes

    async def _aggregates(
        self,
        job_id: str,
        queries: list[tuple[Domain, _Approved]],
        timeout: float,
        session: MpcSession,
    ) -> list[Outcome]:
        """Run one MPC job for consecutive aggregate queries (no join)."""
        if not queries:
            return []
        plans = []
        for _, approved in queries:
            assert isinstance(approved.plan, QueryPlan)
            plans.append(approved.plan)
        job, slots = layout(job_id, plans)
        inputs: list[int] = []
        allowed: list[int] = []
        for slot, (domain, approved) in zip(slots, queries, strict=True):
            results = approved.partials or []
            labels = set(slot.plan.groups)
            if any(not set(r.partials) <= labels for r in results):
                raise PeerError(
                    f"query {domain.query_id}: a scan at {self.config.name} found a label "
                    "outside the plan's domains (an internal error)"
                )
            vector = local_inputs(slot, [r.partials for r in results])
            if slot.plan.release == ReleaseMode.DP.value:
                for position, part in noise_inputs(slot.plan, self._honest()).items():
                    vector[position] += part
            inputs.extend(vector)
            allowed.extend(self._overlap_flags(approved, slot, results))
        if job.input_length == 0 or len(job.cells) == 0:
            return [self._outcome(a, None) for _, a in queries]
        log.info("job %s: MPC job of %d cells started", job_id, len(job.cells))
        result = await session.run(job, (inputs, allowed), timeout)
        return [
            self._outcome(approved, result, slot.cell_offset, slot.cell_count)
            for slot, (_, approved) in zip(slots, queries, strict=True)
        ]

    def _honest(self) -> int:
        """Return h = parties − threshold: how many parts of noise make it full (dp)."""
        federation = self.config.federation
        return len(federation.parties) - federation.threshold

    def _overlap_flags(
        self, approved: _Approved, slot: QuerySlot, results: list[ScanResult]
    ) -> list[int]:
        """Return this owner's 0/1 per released cell: 0 where a part of the cell over one
        of its datasets is too close to an earlier release (engine.overlap); recorded.

        A cell's part is the rows its measure aggregates: the filter's rows, or where the
        measure reads nullable columns, those of the rows where they are not NULL.
        """
        plan = slot.plan
        if plan.release != ReleaseMode.EXACT.value:
            return [1] * slot.cell_count  # dp: cells are noisy totals, never withheld
        outputs = plan.aggregate_outputs()
        flags = [[1] * len(outputs) for _ in plan.groups]
        own = [scan for scan in plan.scans if scan.party == self.config.name]
        for scan, result in zip(own, results, strict=True):
            if not result.sketches:
                continue  # the dataset's owner does not control overlap
            config = next(d for d in self.config.datasets if d.name == scan.dataset)
            terms = len(next(iter(result.sketches.values())).sums)
            empty = Sketch(0, (0,) * terms)
            kinds = {(): result.sketches, **result.supports}
            read = [() if o.measure is None else result.reads[o.measure] for o in outputs]
            used = [k for k in kinds if k in read]  # only the parts some cell releases
            parts = [kinds[k].get(g, empty) for k in used for g in plan.groups]
            ok = self.overlap.check_and_record(
                scan.dataset, config.min_group_size, approved.query_id, parts
            )
            withheld = ok.count(False)
            if withheld:
                log.info(
                    "query %s: %d of %d part(s) of %s withheld by overlap control",
                    approved.query_id,
                    withheld,
                    len(parts),
                    scan.dataset,
                )
            groups = len(plan.groups)
            for g in range(groups):
                for j, kind in enumerate(read):
                    flags[g][j] &= int(ok[used.index(kind) * groups + g])
        return [flag for per_group in flags for flag in per_group]

    async def _join(
        self,
        job_id: str,
        domain: Domain,
        approved: _Approved,
        timeout: float,
        session: MpcSession,
    ) -> Outcome:
        """Run the MPC job of one join query."""
        plan = approved.plan
        assert isinstance(plan, JoinPlan)
        parties = [p.name for p in self.config.federation.parties]
        job = join_job(job_id, plan, plan.groups, domain.padded_length, parties)
        side = None
        extras = list(join_extras(plan, -1, None, plan.groups))
        for index, scan in enumerate(plan.scans):
            if scan.party == self.config.name:
                if approved.table is None:
                    raise PeerError(f"query {domain.query_id}: not collected at {self.config.name}")
                side = join_input(plan, index, approved.table, plan.groups)
                extras = list(side.extras)
        if plan.release == ReleaseMode.DP.value:
            for position, part in noise_inputs(plan, self._honest()).items():
                extras[position] += part
        if not job.cells:
            return self._outcome(approved, None)
        log.info("job %s: join job of %d cells started", job_id, len(job.cells))
        result = await session.run(job, (side, tuple(extras)), timeout)
        return self._outcome(approved, result, 0, len(job.cells))

    def _outcome(
        self, approved: _Approved, result: JobResult | None, lo: int = 0, count: int = 0
    ) -> Outcome:
        """Seal this party's shares of one query's cells to the analyst, and commit to them
        on the ledger (a query with no cells gets empty shares)."""
        hi = lo + count
        shares = Shares(
            result.x if result else self.config.me.index + 1,
            result.modulus if result else 0,
            result.num[lo:hi] if result else (),
            result.den[lo:hi] if result else (),
            result.flag[lo:hi] if result else (),
            result.sign[lo:hi] if result else (),
        )
        sealed = seal(approved.request.result_key, approved.query_id, self.config.name, shares)
        if self.ledger is None:
            return Outcome(sealed)
        entry, opening = self.ledger.commit(
            approved.query_id, approved.request_hash, sealed.to_bytes()
        )
        return Outcome(sealed, encode_entry(entry), opening)

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Count a Collect or Execute call under way (the sequencer is working here)."""
        self._serving += 1
        self.contacted()
        try:
            yield
        finally:
            self._serving -= 1
            self.contacted()

    def contacted(self) -> None:
        """Note that the sequencer called this party just now."""
        self._contacted = time.monotonic()

    def stalled(self, seconds: float) -> bool:
        """Return whether no call from the sequencer is under way and none came for
        ``seconds`` (a draining party stops waiting for queries that cannot end now)."""
        return self._serving == 0 and time.monotonic() - self._contacted > seconds

    def in_flight(self) -> int:
        """Return how many queries this party approved that have not ended yet: with the
        ledger, those still open on its mirror (their result, refusal or abort is not in
        yet: the witness must go on cosigning); without it, those not yet executed."""
        if self.ledger is None:
            return sum(len(b.queries) for b in self._batches.values())
        now = time.monotonic()
        for query_id, approved in list(self._approved_at.items()):
            state = self.ledger.query_state(query_id)
            unanchored = state == "absent" and now - approved > ANCHOR_WAIT_SECONDS
            if state == "ended" or unanchored or now - approved > BATCH_STATE_TTL_SECONDS:
                del self._approved_at[query_id]
        return len(self._approved_at)

    def _expire(self) -> None:
        now = time.monotonic()
        for batch_id in [
            b for b, s in self._batches.items() if now - s.created > BATCH_STATE_TTL_SECONDS
        ]:
            del self._batches[batch_id]

    def close(self) -> None:
        self.nonces.close()
        self.overlap.close()
        if self.ledger is not None:
            self.ledger.close()
