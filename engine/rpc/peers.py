"""gRPC channels from a party to the other parties' Federation service (mutual TLS under
the federation CA), at each party's federation_address."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from engine.config import PartyConfig
from engine.errors import EngineError, PeerError, UnreachableError
from engine.pki import read_pem
from engine.rpc import jointstat_pb2_grpc as pb_grpc
from engine.rpc.options import channel_options
from engine.rpc.status import error_from_rpc

log = logging.getLogger(__name__)

RECONNECT_WAIT = 3.0  # seconds a party that just came back may take to connect

T = TypeVar("T")


def client_credentials(ca: bytes, key: bytes, certificate: bytes) -> grpc.ChannelCredentials:
    """Return mTLS channel credentials trusting only the federation CA."""
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=certificate
    )


def secure_channel(address: str, server_name: str, credentials: grpc.ChannelCredentials) -> Any:
    """Open an aio channel to ``address`` verifying the server certificate names ``server_name``."""
    options = [*channel_options(), ("grpc.ssl_target_name_override", server_name)]
    return grpc.aio.secure_channel(address, credentials, options=options)


class Peers:
    """Stubs of the Federation service of every party (including this one)."""

    def __init__(self, config: PartyConfig) -> None:
        credentials = client_credentials(
            read_pem(config.federation.ca_certificate, "federation CA certificate"),
            read_pem(config.tls_key, "party TLS key"),
            read_pem(config.tls_certificate, "party TLS certificate"),
        )
        self._channels = {}
        self._stubs: dict[str, pb_grpc.FederationStub] = {}
        for party in config.federation.parties:
            channel = secure_channel(party.federation_address, party.name, credentials)
            self._channels[party.name] = channel
            self._stubs[party.name] = pb_grpc.FederationStub(channel)

    def stub(self, party: str) -> pb_grpc.FederationStub:
        return self._stubs[party]

    async def call(self, party: str, method: Callable[[pb_grpc.FederationStub], Awaitable[T]]) -> T:
        """Call ``method(stub)`` on ``party``; translate failures into EngineError."""
        try:
            return await method(self._stubs[party])
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, party) from None
        except EngineError:
            raise
        except Exception as exc:  # channel closed, cancelled, ...
            raise PeerError(f"party {party}: call failed ({type(exc).__name__})") from None

    async def call_reconnecting(
        self, party: str, method: Callable[[pb_grpc.FederationStub], Awaitable[T]]
    ) -> T:
        """Like :meth:`call`, but if ``party`` is unreachable (nothing was delivered), give
        it RECONNECT_WAIT seconds to connect, once: a party that just came back, or just
        started, may still be in the channel's reconnect backoff."""
        try:
            return await self.call(party, method)
        except UnreachableError:
            if not await self.wait_ready(party, RECONNECT_WAIT):
                raise
            return await self.call(party, method)

    async def wait_ready(self, party: str, seconds: float) -> bool:
        """Return whether the channel to ``party`` connects within ``seconds``."""
        try:
            await asyncio.wait_for(self._channels[party].channel_ready(), seconds)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
