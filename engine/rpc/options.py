"""gRPC channel and server options, keepalive settings that clients and servers agree on.

Every channel (party to party, analyst to party) sends an HTTP/2 keepalive ping after
``KEEPALIVE_SECONDS`` of silence, also while a long call waits for its answer (a join's MPC
job can take minutes with no bytes on the connection) and between calls, so that a dead
peer is noticed within about one period plus ``KEEPALIVE_TIMEOUT_MS``. gRPC core servers
count a ping that comes sooner than ``grpc.http2.min_ping_interval_without_data_ms``
(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, default 5 minutes) after the last
one, or while no call is open, as a "ping strike" and
close the connection after ``grpc.http2.max_ping_strikes`` (GOAWAY ENHANCE_YOUR_CALM,
"too_many_pings"; see gRPC core's doc/keepalive.md). So the servers here permit pings
without calls and every half period, and the clients ping without a cap on pings between
data frames (``grpc.http2.max_pings_without_data`` = 0; with its default of 2, gRPC sends
later pings of a long call once a minute, which the servers' default counted as strikes:
queries longer than about 140 s failed with "Too many pings", and a frozen peer went
unnoticed for minutes). A ping not acknowledged within ``KEEPALIVE_TIMEOUT_MS`` closes
the connection, and its calls fail as unreachable.

The period is read from the environment variable ``JOINTSTAT_KEEPALIVE_SECONDS`` (seconds,
0.1 to 3600; tests shorten it) each time options are built, that is when a daemon starts
and when a client opens its channel; every party and analyst of a federation must use the
same period (or clients a longer one), which the default does.
"""

from __future__ import annotations

import os

from engine.errors import ConfigError

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # the Federation service: joins, ledger catch-up
# The Analyst service's limit: a valid request is below 80 KiB (64 KiB of SQL, a key and a
# signature). Its server refuses a larger message from its length prefix, before reading
# it (RESOURCE_EXHAUSTED, "Received message larger than max").
ANALYST_MAX_REQUEST_BYTES = 256 * 1024
KEEPALIVE_SECONDS = 10.0
KEEPALIVE_ENV = "JOINTSTAT_KEEPALIVE_SECONDS"
KEEPALIVE_TIMEOUT_MS = 5_000  # a ping not acknowledged within this closes the connection
# gRPC core (1.85) waits for a ping's acknowledgement for "grpc.http2.ping_timeout_ms"
# (GRPC_ARG_PING_TIMEOUT_MS, in its internal headers; default 1 minute), and measured here
# did not close a connection to a frozen peer on the keepalive timeout alone.
PING_TIMEOUT_ARG = "grpc.http2.ping_timeout_ms"
MAX_PING_STRIKES = 2  # gRPC core's default: a client pinging too often is cut off

Options = list[tuple[str, int | str]]


def keepalive_ms() -> int:
    """Return the keepalive period in milliseconds (``JOINTSTAT_KEEPALIVE_SECONDS`` or the
    default). Raises ConfigError for a value that is not a number of seconds in range."""
    text = os.environ.get(KEEPALIVE_ENV)
    if text is None:
        return int(KEEPALIVE_SECONDS * 1000)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0.1 <= seconds <= 3600:
        raise ConfigError(f"{KEEPALIVE_ENV}: got {text!r}, want seconds in 0.1..3600")
    return int(seconds * 1000)


def channel_options() -> Options:
    """Return the options of every client channel (to a party, from a party or analyst)."""
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", keepalive_ms()),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        (PING_TIMEOUT_ARG, KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]


def server_options(max_receive: int = MAX_MESSAGE_BYTES) -> Options:
    """Return the options of a party's gRPC server, which receives messages of up to
    ``max_receive`` bytes and accepts the channels' pings."""
    period = keepalive_ms()
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", max_receive),
        ("grpc.keepalive_time_ms", period),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        (PING_TIMEOUT_ARG, KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", period // 2),
        ("grpc.http2.max_ping_strikes", MAX_PING_STRIKES),
        ("grpc.so_reuseport", 0),
    ]
