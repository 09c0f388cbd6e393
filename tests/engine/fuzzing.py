"""A seeded mutator of SQL text and protobuf bytes, and the checks of what daemons answer.

Shared by tests/engine/test_fuzz.py (about 2,300 inputs, under a minute) and
benchmarks/fuzz_long.py (as many as asked). Every input comes from one ``random.Random``
seeded by the caller, so a finding is reproduced by its seed and index.

A daemon's answer to a fuzzed input passes when it is a result, or a refusal with a
documented status (see proto/engine/rpc/jointstat.proto), the engine's error class in its
trailing metadata, and a message without a traceback or a Python repr in it.
"""

from __future__ import annotations

import random
import re
import socket
import ssl
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from engine.client import Client
from engine.errors import EngineError
from engine.launch import LocalFederation
from engine.pki import read_pem
from engine.rpc import jointstat_pb2 as pb
from engine.rpc.convert import signed_to_pb
from engine.rpc.options import channel_options
from engine.rpc.status import status_of

SEED_SQL = (
    "SELECT sector, COUNT(*), AVG(income) FROM tax.income GROUP BY sector",
    "SELECT district, COUNT(*) FROM registry.people WHERE birth_year < 1960 GROUP BY district",
    "SELECT k, g, COUNT(*), AVG(v) FROM tax.edge WHERE k IN ('a', 'b') AND g BETWEEN 3 AND 9 "
    "GROUP BY k, g",
    "SELECT region, COVAR_POP(pension, medical_claims), CORR(pension, medical_claims) "
    "FROM social.benefits GROUP BY region",
    "SELECT p.district, COUNT(*), AVG(t.income) FROM registry.people p JOIN tax.income t "
    "ON p.citizen_id = t.citizen_id GROUP BY p.district",
    "SELECT k, COUNT(*), SUM(v), VAR_SAMP(w) FROM (SELECT * FROM tax.edge WHERE v IS NOT NULL "
    "UNION ALL SELECT * FROM social.edge) AS u GROUP BY k",
    "SELECT CASE WHEN birth_year < 1960 THEN 'old' ELSE 'young' END AS age, COUNT(*) "
    "FROM registry.people GROUP BY age",
    "SELECT sector, COUNT(*) AS n FROM tax.income GROUP BY sector HAVING n > 5 "
    "ORDER BY n DESC LIMIT 3",
    "SELECT WIDTH_BUCKET(income, 0, 100000, 10) AS b, COUNT(*) FROM tax.income GROUP BY b",
    "SELECT k, MIN(v), MAX(v), MEDIAN(w) FROM tax.edge GROUP BY k",
)
WORDS = (
    "SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "JOIN", "ON", "UNION ALL",
    "AND", "OR", "NOT", "NULL", "IS", "IN", "BETWEEN", "LIKE", "CASE", "WHEN", "THEN", "END",
    "COUNT(*)", "SUM(", "AVG(", "MEDIAN(", "QUANTILE_CONT(", "read_csv('/etc/passwd')",
    "secret", "person", "citizen_id", "tax.income", "social.private", "registry.wide",
    "(SELECT 1)", "OVER (PARTITION BY k)", "DISTINCT", "LIMIT -1", "1e308", "-9223372036854775809",
    "'", '"', "--", "/*", ";", ",", "(", ")", "*", "\x00", "\u202e", "ß", "😀",
)  # fmt: skip
ALPHABET = "abcdefghijklmnopqrstuvwxyz_ABCXYZ0123456789 ,.()*+-/<>=!'\"%;\n\t\\|&~^@#$:?[]{}"


def mutate_sql(rng: random.Random, sql: str) -> str:
    """Return ``sql`` changed by one to four random edits (some of them pathological)."""
    for _ in range(rng.randint(1, 4)):
        sql = rng.choice(_SQL_EDITS)(rng, sql)
    return sql[:70_000]


def _span(rng: random.Random, text: str) -> tuple[int, int]:
    a = rng.randint(0, len(text))
    return a, min(len(text), a + rng.randint(0, 12))


def _delete(rng: random.Random, sql: str) -> str:
    a, b = _span(rng, sql)
    return sql[:a] + sql[b:]


def _insert_chars(rng: random.Random, sql: str) -> str:
    a = rng.randint(0, len(sql))
    return sql[:a] + "".join(rng.choices(ALPHABET, k=rng.randint(1, 6))) + sql[a:]


def _insert_word(rng: random.Random, sql: str) -> str:
    a = rng.randint(0, len(sql))
    return f"{sql[:a]} {rng.choice(WORDS)} {sql[a:]}"


def _duplicate(rng: random.Random, sql: str) -> str:
    a, b = _span(rng, sql)
    return sql[:b] + sql[a:b] * rng.randint(1, 50) + sql[b:]


def _swap_tokens(rng: random.Random, sql: str) -> str:
    words = sql.split(" ")
    i, j = rng.randrange(len(words)), rng.randrange(len(words))
    words[i], words[j] = words[j], words[i]
    return " ".join(words)


def _nest(rng: random.Random, sql: str) -> str:
    depth = rng.choice((5, 23, 25, 60, 300, 3000))
    kind = rng.choice(("paren", "not", "func", "case", "minus"))
    core = {
        "paren": "(" * depth + "1 = 1" + ")" * depth,
        "not": "NOT " * depth + "1 = 1",
        "func": "abs(" * depth + "v" + ")" * depth + " > 1",
        "case": "CASE WHEN 1 = 1 THEN " * depth + "1" + " END" * depth + " = 1",
        "minus": "- " * depth + "v > 1",
    }[kind]
    return f"SELECT COUNT(*) FROM tax.edge WHERE {core}" if rng.random() < 0.5 else sql + core


def _long_list(rng: random.Random, sql: str) -> str:
    count = rng.choice((100, 3000, 20000))
    return f"SELECT COUNT(*) FROM tax.edge WHERE g IN ({', '.join(['1'] * count)})"


def _truncate(rng: random.Random, sql: str) -> str:
    return sql[: rng.randint(0, len(sql))]


_SQL_EDITS: tuple[Callable[[random.Random, str], str], ...] = (
    _delete, _delete, _insert_chars, _insert_chars, _insert_word, _insert_word, _insert_word,
    _duplicate, _swap_tokens, _swap_tokens, _nest, _long_list, _truncate,
)  # fmt: skip


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Return ``data`` changed by one to three random edits at the protobuf wire level."""
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(_BYTE_EDITS)(rng, data)
    return data


def _flip(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    out = bytearray(data)
    out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def _replace(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _cut(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randint(0, len(data))]


def _extend(rng: random.Random, data: bytes) -> bytes:
    return data + rng.randbytes(rng.randint(1, 64))


def _field(rng: random.Random, data: bytes) -> bytes:
    """Insert a field of a random number and wire type (varint, fixed, length, groups)."""
    number = rng.choice((1, 2, 3, 7, 15, 16, 99, 536870911))
    wire = rng.choice((0, 1, 2, 3, 4, 5, 6, 7))
    key = _varint(number << 3 | wire)
    body = {
        0: _varint(rng.choice((0, 1, 2**63, 2**64 - 1))),
        1: rng.randbytes(8),
        2: _varint(rng.choice((0, 5, 2**31, 2**40))) + rng.randbytes(5),
        5: rng.randbytes(4),
    }.get(wire, b"")
    at = rng.randint(0, len(data))
    return data[:at] + key + body + data[at:]


def _groups(rng: random.Random, data: bytes) -> bytes:
    depth = rng.choice((10, 99, 101, 1000, 100_000))
    return _varint(1 << 3 | 3) * depth + data


def _random(rng: random.Random, data: bytes) -> bytes:
    return rng.randbytes(rng.choice((0, 1, 3, 17, 300, 5000)))


def _huge(rng: random.Random, data: bytes) -> bytes:
    return data + b"\x0a" + _varint(300_000) + b"x" * 300_000


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


_BYTE_EDITS: tuple[Callable[[random.Random, bytes], bytes], ...] = (
    _flip, _flip, _flip, _replace, _replace, _cut, _cut, _extend, _field, _field, _groups,
    _random, _huge,
)  # fmt: skip

ALLOWED = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
    }
)
# The Analyst server refuses a message above its limit before any handler runs.
_TRANSPORT_LIMIT = re.compile(r"(SERVER: )?Received message larger than max \(\d+ vs\. \d+\)$")
_NOT_CLEAR = re.compile(r"Traceback|Unexpected [<\[]|\w+Error\(|File \"|<class |object at 0x")


@dataclass
class Tally:
    """What the daemons answered, and every answer that broke a rule."""

    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)

    def refusal(self, where: str, code: grpc.StatusCode, message: str, classed: bool) -> None:
        self.inputs += 1
        self.outcomes[code.name] += 1
        if code not in ALLOWED:
            self.findings.append(f"{where}: status {code.name}: {message[:300]}")
        elif not classed and not _TRANSPORT_LIMIT.match(message):
            self.findings.append(f"{where}: {code.name} without the engine's error class")
        elif _NOT_CLEAR.search(message) or len(message) > 2000:
            self.findings.append(f"{where}: unclear message: {message[:300]}")

    def success(self) -> None:
        self.inputs += 1
        self.outcomes["OK"] += 1

    def merge(self, other: Tally) -> None:
        self.inputs += other.inputs
        self.outcomes.update(other.outcomes)
        self.findings += other.findings


def check_engine_error(tally: Tally, where: str, error: EngineError) -> None:
    """Count an EngineError the client raised (its class came from the daemon's metadata)."""
    tally.refusal(where, status_of(error), str(error), type(error) is not EngineError)


def channel(
    federation: LocalFederation, identity: Path, target: str, service: str = "Analyst"
) -> grpc.Channel:
    """Return a channel to party ``target``'s server of ``service`` ("Analyst" or
    "Federation") with the TLS identity in directory ``identity``."""
    fed = federation.federation
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read_pem(fed.ca_certificate, "CA"),
        private_key=read_pem(identity / "tls.key", "key"),
        certificate_chain=read_pem(identity / "tls.crt", "certificate"),
    )
    options = [*channel_options(), ("grpc.ssl_target_name_override", target)]
    party = fed.party(target)
    address = party.address if service == "Analyst" else party.federation_address
    return grpc.secure_channel(address, credentials, options=options)


def call_raw(tally: Tally, rpc: grpc.UnaryUnaryMultiCallable, body: bytes, where: str) -> None:
    """Send raw bytes to a method and check the answer."""
    try:
        rpc(body, timeout=30)
    except grpc.RpcError as exc:
        trailing = dict(exc.trailing_metadata() or ())
        tally.refusal(where, exc.code(), exc.details() or "", "jointstat-error" in trailing)
        return
    tally.success()


def garbage_connections(rng: random.Random, federation: LocalFederation, count: int) -> None:
    """Open ``count`` TCP connections to the parties' gRPC ports and send garbage: random
    bytes, an HTTP/2 preface without TLS, or a TLS session (no client certificate) with
    random bytes in it; then hang up."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    for i in range(count):
        party = rng.choice(federation.federation.parties)
        host, port = rng.choice(
            ((party.host, party.port), (party.federation_host, party.federation_port))
        )
        try:
            with socket.create_connection((host, port), timeout=5) as raw:
                if i % 3 == 0:
                    raw.sendall(rng.randbytes(rng.randint(1, 4096)))
                elif i % 3 == 1:
                    raw.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + rng.randbytes(64))
                else:
                    with context.wrap_socket(raw, server_hostname=party.name) as tls:
                        tls.sendall(rng.randbytes(512))
        except (OSError, ssl.SSLError):
            continue  # refused or closed by the daemon: fine


def log_offsets(log_dir: Path) -> dict[Path, int]:
    """Return the current size of every daemon log (to read what comes after)."""
    return {p: p.stat().st_size for p in log_dir.glob("*.log")}


def tracebacks_since(offsets: dict[Path, int]) -> list[str]:
    """Return the first line of every traceback written to the logs after ``offsets``."""
    found = []
    for path, start in offsets.items():
        with path.open("rb") as log:
            log.seek(start)
            text = log.read().decode(errors="replace")
        for match in re.finditer(r"^.*\n(?=Traceback)", text, flags=re.MULTILINE):
            found.append(f"{path.name}: {match.group(0).strip()[:300]}")
        if "Traceback" in text and not found:
            found.append(f"{path.name}: a traceback")
    return found


COORDINATORS = ("registry", "tax", "social")  # one SQL client thread each
# (identity directory, target party, service, methods): who sends what to whom. Federation
# methods that change state go only from a party that is not the sequencer (refused);
# the sequencer's identity sends only Prepare and Cosign (checked, nothing kept).
ROUTES = (
    ("analysts/alice", "social", "Analyst", ("Query", "ListDatasets", "GetCheckpoint")),
    ("analysts/alice", "registry", "Analyst", ("Query",)),
    ("tax", "registry", "Federation", ("GetCatalog", "Submit", "Register", "Prepare")),
    ("tax", "social", "Federation", ("Collect", "Execute", "StartSession", "Cosign")),
    ("registry", "tax", "Federation", ("Prepare", "Cosign")),
    ("registry", "social", "Analyst", ("GetCheckpoint",)),
)
PROBE = "SELECT sector, COUNT(*), AVG(income) FROM tax.income GROUP BY sector"


def request_bases(client: Client) -> dict[str, bytes]:
    """Return a valid request body per method name, the starting points of mutations."""
    signed = signed_to_pb(client.sign("EXPLAIN " + PROBE)[0])
    return {
        "Query": signed.SerializeToString(),
        "Submit": signed.SerializeToString(),
        "ListDatasets": b"",
        "GetCheckpoint": b"",
        "GetCatalog": b"",
        "Prepare": pb.PrepareRequest(
            batch_id="fuzz", queries=[signed], plan_digests=[b"\x00" * 32]
        ).SerializeToString(),
        "Collect": pb.CollectRequest(
            batch_id="fuzz", query_ids=["q"], request_indices=[10**9]
        ).SerializeToString(),
        "Execute": pb.ExecuteRequest(job_id="fuzz", epoch=1).SerializeToString(),
        "StartSession": pb.StartSessionRequest(epoch=1).SerializeToString(),
        "Cosign": pb.CosignRequest(from_size=10**9, note="x\n").SerializeToString(),
        "Register": pb.RegisterRequest(entries=[b"\x01\x02"]).SerializeToString(),
    }


def run(
    launcher: LocalFederation,
    directory: Path,
    identity: Path,
    seed: int,
    sql_inputs: int,
    bytes_per_method: int,
    garbage: int,
) -> Tally:
    """Fuzz a running federation (``directory`` holds its keys; ``identity`` an analyst's):
    ``sql_inputs`` mutated queries (most of them EXPLAIN), ``bytes_per_method`` mutated
    bodies per route and method, ``garbage`` junk connections. Returns the tally."""
    rng = random.Random(seed)
    tally = Tally()
    streams = [random.Random(rng.random()) for _ in COORDINATORS]

    def fuzz_sql(worker: int) -> Tally:
        local, mine = Tally(), streams[worker]
        with Client(identity, COORDINATORS[worker]) as client:
            for i in range(sql_inputs // len(COORDINATORS)):
                sql = mutate_sql(mine, mine.choice(SEED_SQL))
                if mine.random() < 0.85:
                    sql = "EXPLAIN " + sql
                try:
                    client.query(sql, timeout=120)
                except EngineError as exc:
                    check_engine_error(local, f"sql {worker}/{i} (seed {seed})", exc)
                else:
                    local.success()
        return local

    with ThreadPoolExecutor(len(COORDINATORS)) as pool:
        for part in pool.map(fuzz_sql, range(len(COORDINATORS))):
            tally.merge(part)
    with Client(identity) as client:
        bases = request_bases(client)
    for who, target, service, methods in ROUTES:
        with channel(launcher, directory / who, target, service) as connection:
            for method in methods:
                rpc = connection.unary_unary(f"/jointstat.v1.{service}/{method}")
                for i in range(bytes_per_method):
                    where = f"{who} -> {target} {method} #{i} (seed {seed})"
                    call_raw(tally, rpc, mutate_bytes(rng, bases[method]), where)
    garbage_connections(rng, launcher, garbage)
    tally.inputs += garbage
    tally.outcomes["garbage connection"] += garbage
    return tally
