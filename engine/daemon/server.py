"""Run a party daemon: gRPC with mutual TLS, health service, graceful shutdown.

``jointstat party serve --config DIR/<party>/party.toml`` ends up in :func:`run`. The
daemon loads its datasets and refuses to start when one of them cannot be loaded (missing
file, unreadable or malformed values), naming the dataset, the file and the reason; with
``--allow-unavailable`` it starts anyway, names the unavailable datasets in its ready line
and publishes them as unavailable with that reason (every party and analyst sees it in
the catalog; it names the owner's file path, never a value). A dataset whose file appears
or changes later is loaded before the next query. The daemon then binds its gRPC port (a
port in use is a clear error), serves the Analyst, Federation and standard Health
services, and logs a status line every STATUS_SECONDS (queries in flight, unauthenticated
attempts refused).

On SIGTERM or SIGINT it drains: health turns NOT_SERVING, new queries and new batches
(``Prepare``) are refused with UNAVAILABLE, and the queries under way finish, including
their ledger rounds (the server keeps serving ``Collect``, ``Execute`` and ``Cosign`` until
every query this party approved has its result, refusal or abort on its ledger copy, at
most ``query_timeout_seconds``, and no longer than DRAIN_STALL_SECONDS after the
sequencer's last call); then it stops the server and its MPC workers.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from engine.anchor import registry
from engine.anchor.party_ledger import CosignOutcome, PartyLedger
from engine.anchor.queries import QueryAnchor
from engine.anchor.writer import CosignCall, LedgerWriter
from engine.catalog import DatasetInfo
from engine.config import PartyConfig, load_party
from engine.daemon.coordinator import Coordinator
from engine.daemon.intake import add_service
from engine.daemon.links import LocalParty, PartyLink
from engine.daemon.party import Party
from engine.daemon.sequencer import QuerySequencer
from engine.daemon.services import AnalystService, FederationService, Registrar
from engine.errors import ConfigError, DataError
from engine.local import LocalData
from engine.mpc.session import MpcSession
from engine.pki import load_signing_key, read_pem
from engine.rpc import jointstat_pb2 as pb
from engine.rpc.convert import catalog_from_pb
from engine.rpc.options import ANALYST_MAX_REQUEST_BYTES, MAX_MESSAGE_BYTES, server_options
from engine.rpc.peers import Peers
from engine.rpc.remote import RemoteParty
from engine.state_dir import make_private
from engine.wording import counted

log = logging.getLogger(__name__)

GRACE_SECONDS = 5.0
COSIGN_TIMEOUT = 30.0
STATUS_SECONDS = 60.0
DRAIN_POLL_SECONDS = 0.05
DRAIN_STALL_SECONDS = 20.0  # no call from the sequencer for this long: stop waiting


def check_port_free(host: str, port: int, what: str) -> None:
    """Raise ConfigError if ``host:port`` cannot be bound (another process uses it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ConfigError(
                f"{what} {host}:{port}: {reason}; want a free port (stop the other process, or "
                "change the address in federation.toml / jointstat init --base-port)"
            ) from None


class Daemon:
    """A running party daemon."""

    def __init__(self, config: PartyConfig, *, allow_unavailable: bool = False) -> None:
        self.config = config
        self.allow_unavailable = allow_unavailable
        self.server: grpc.aio.Server | None = None  # the Analyst service
        self.federation_server: grpc.aio.Server | None = None
        self.health = health.aio.HealthServicer()
        self.sequencer: QuerySequencer | None = None
        self.party: Party | None = None
        self.peers: Peers | None = None
        self.writer: LedgerWriter | None = None
        self.coordinator: Coordinator | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def _remote_cosign(self, name: str, call: CosignCall) -> CosignOutcome:
        assert self.peers is not None
        request = pb.CosignRequest(
            entries=call.entries,
            from_size=call.from_size,
            note=call.note,
            old_size=call.old_size,
            proof=call.proof,
            apply_only=call.apply_only,
            cosigned_note=call.cosigned_note,
        )
        reply = await self.peers.call(name, lambda s: s.Cosign(request, timeout=COSIGN_TIMEOUT))
        return CosignOutcome(reply.cosignature, reply.mirror_size, reply.witness_size)

    def _register_sender(
        self, registrar: Registrar | None
    ) -> Callable[[list[bytes]], Awaitable[int]]:
        """Return how this party sends its registrations: locally, or to the sequencer."""
        name = self.config.name

        async def send(entries: list[bytes]) -> int:
            if registrar is not None:
                return await registrar(name, entries)
            assert self.peers is not None
            request = pb.RegisterRequest(entries=entries)
            reply = await self.peers.call(
                self.config.federation.sequencer,
                lambda s: s.Register(request, timeout=COSIGN_TIMEOUT),
            )
            return int(reply.appended)

        return send

    async def start(self) -> None:
        config = self.config
        me = config.me
        make_private(config)  # state directory 0700, files and keys 0600
        check_port_free(me.host, me.port, "gRPC address")
        check_port_free(me.federation_host, me.federation_port, "Federation address")
        check_port_free(me.mpc_host, me.mpc_port, "MPC address")
        check_port_free(me.mpc_large_host, me.mpc_large_port, "MPC large-lane address")
        signing_key = load_signing_key(config.signing_key)  # fail now, not at the first query
        credentials = grpc.ssl_server_credentials(
            [
                (
                    read_pem(config.tls_key, "party TLS key"),
                    read_pem(config.tls_certificate, "party TLS certificate"),
                )
            ],
            root_certificates=read_pem(config.federation.ca_certificate, "federation CA"),
            require_client_auth=True,
        )
        data = await asyncio.to_thread(LocalData, config)
        unavailable = self._check_datasets(data)
        session = MpcSession(config, config.state_dir / "mpc")
        large_session = MpcSession(config, config.state_dir / "mpc-large", lane="large")
        self.peers = peers = Peers(config)

        async def fetch_catalog(name: str) -> tuple[DatasetInfo, ...]:
            def ask(stub: Any) -> Any:
                return stub.GetCatalog(pb.GetCatalogRequest(), timeout=5.0)

            return catalog_from_pb(await peers.call_reconnecting(name, ask))

        ledger = None
        if config.federation.ledger:
            ledger = await asyncio.to_thread(PartyLedger, config, signing_key)
        self.party = party = Party(config, data, session, fetch_catalog, ledger, large_session)
        registrar: Registrar | None = None
        if config.federation.sequencer == config.name:
            anchor = None
            if ledger is not None:
                assert config.log_key is not None
                self.writer = writer = LedgerWriter(
                    config.federation,
                    ledger,
                    load_signing_key(config.log_key),
                    self._remote_cosign,
                )
                writer.start()
                anchor = QueryAnchor(ledger, writer)

                async def registrar_fn(caller: str, entries: list[bytes]) -> int:
                    return await registry.accept(ledger, writer, caller, entries)

                registrar = registrar_fn
            links: dict[str, PartyLink] = {
                p.name: LocalParty(party) if p.name == config.name else RemoteParty(peers, p.name)
                for p in config.federation.parties
            }
            self.sequencer = QuerySequencer(config, party, links, anchor)
            self.sequencer.start()
        self.coordinator = coordinator = Coordinator(config, party, peers, self.sequencer)

        # Two servers, so that each service has its own message size limit (intake.py).
        self.server = self._bind(me.address, "gRPC address", ANALYST_MAX_REQUEST_BYTES, credentials)
        add_service(self.server, "Analyst", AnalystService(coordinator, party))
        self.federation_server = self._bind(
            me.federation_address, "Federation address", MAX_MESSAGE_BYTES, credentials
        )
        add_service(
            self.federation_server,
            "Federation",
            FederationService(config, party, self.sequencer, registrar),
        )
        await self.server.start()
        await self.federation_server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("jointstat.v1.Analyst", health_pb2.HealthCheckResponse.SERVING)
        if ledger is not None:
            self._tasks.append(
                asyncio.create_task(
                    registry.keep_registered(
                        ledger, data.catalog, self._register_sender(registrar)
                    ),
                    name="ledger-registration",
                )
            )
        self._tasks.append(asyncio.create_task(self._report_status(), name="status"))
        datasets = ", ".join(d.name for d in config.datasets if d.name not in unavailable)
        if unavailable:
            datasets = f"{datasets or 'none'}; unavailable: {', '.join(unavailable)}"
        datasets = datasets or "none (compute-only)"
        log.info(
            "party %s ready on %s (parties %s, MPC %s:%d, large lane %d, sequencer %s, "
            "datasets: %s)",
            config.name,
            me.address,
            me.federation_address,
            me.mpc_host,
            me.mpc_port,
            me.mpc_large_port,
            "yes" if self.sequencer else config.federation.sequencer,
            datasets,
        )

    def _check_datasets(self, data: LocalData) -> list[str]:
        """Return the names of the datasets that could not be loaded.

        Raises DataError naming each such dataset, its file and the reason, unless the
        daemon was started with ``allow_unavailable``.
        """
        files = {d.name: d.file for d in self.config.datasets}
        broken = [d for d in data.catalog() if not d.available]
        if not broken:
            return []
        problems = "; ".join(
            d.problem if str(files[d.name]) in d.problem else f"{d.problem} (file {files[d.name]})"
            for d in broken
        )
        if not self.allow_unavailable:
            raise DataError(
                f"party {self.config.name}: got {counted(len(broken), 'dataset')} that cannot "
                f"be loaded, want every declared dataset loadable: {problems}. Fix the "
                "file or the [[dataset]] block in party.toml, or start with "
                "--allow-unavailable to serve without it (analysts see it as unavailable)"
            )
        log.warning(
            "party %s: starting with %s unavailable (--allow-unavailable): %s",
            self.config.name,
            counted(len(broken), "dataset"),
            problems,
        )
        return [d.name for d in broken]

    def status(self) -> str:
        """Return the daemon's status line: queries in flight and refused attempts."""
        parts = [f"party {self.config.name}"]
        if self.party is not None:
            parts.append(f"{self.party.in_flight()} approved query(ies) under way")
        if self.sequencer is not None:
            parts.append(f"sequencer holds {self.sequencer.in_flight}")
        if self.coordinator is not None:
            parts.append(f"refusals recorded on the ledger: {self.coordinator.refusals_recorded}")
            parts.append(self.coordinator.attempts.status())
        return "status: " + "; ".join(parts)

    async def _report_status(self) -> None:
        last = ""
        while True:
            await asyncio.sleep(STATUS_SECONDS)
            line = self.status()
            if line != last:
                log.info("%s", line)
                last = line

    def _bind(
        self, address: str, what: str, max_receive: int, credentials: grpc.ServerCredentials
    ) -> grpc.aio.Server:
        """Return a server on ``address`` (with the health service) receiving messages of
        up to ``max_receive`` bytes; raise ConfigError if the address cannot be bound."""
        server = grpc.aio.server(options=server_options(max_receive))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        try:
            server.add_secure_port(address, credentials)
        except RuntimeError:
            raise ConfigError(f"{what} {address}: could not bind; want a free port") from None
        return server

    async def drain(self, timeout: float) -> None:
        """Refuse new queries and batches; wait until those under way have ended."""
        began = time.monotonic()
        await self.health.enter_graceful_shutdown()
        if self.party is not None:
            self.party.draining = True
        if self.sequencer is not None:
            await self.sequencer.drain(timeout)
        party = self.party
        while party is not None and party.in_flight() and time.monotonic() - began < timeout:
            if party.stalled(DRAIN_STALL_SECONDS):
                break  # the sequencer is gone or has nothing more for this party
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        left = party.in_flight() if party is not None else 0
        if left:
            log.warning("party %s: %d query(ies) still under way at stop", self.config.name, left)
        log.info("party %s drained in %.1f s", self.config.name, time.monotonic() - began)

    async def stop(self) -> None:
        log.info("party %s stopping: finishing the queries under way", self.config.name)
        await self.drain(self.config.federation.query_timeout_seconds)
        for task in self._tasks:
            task.cancel()
        servers = [s for s in (self.server, self.federation_server) if s is not None]
        await asyncio.gather(*(s.stop(GRACE_SECONDS) for s in servers))
        if self.sequencer is not None:
            await self.sequencer.stop()
        if self.writer is not None:
            await self.writer.stop()
        if self.party is not None:
            for session in {id(s): s for s in self.party.sessions.values()}.values():
                await session.stop()
            self.party.close()
        if self.peers is not None:
            await self.peers.close()
        log.info("%s", self.status())
        log.info("party %s stopped", self.config.name)


async def run(config_path: Path, *, allow_unavailable: bool = False) -> None:
    """Serve until SIGTERM or SIGINT.

    ``config_path`` is a party.toml or the directory holding it. Raises ConfigError for a
    bad configuration or a port in use, DataError for a dataset that cannot be loaded
    (unless ``allow_unavailable``).
    """
    config = load_party(config_path)
    daemon = Daemon(config, allow_unavailable=allow_unavailable)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await daemon.start()
    # Everything loaded so far (modules, catalogs, keys) lives as long as the daemon: keep
    # it out of the garbage collector's full passes, which otherwise walk it again and
    # again while queries allocate (several % of a busy daemon's CPU).
    gc.freeze()
    try:
        await stop.wait()
    finally:
        await daemon.stop()
