"""Fuzzing real daemons: mutated SQL and raw protobuf and TLS bytes, from a seeded mutator.

Against the shared three-party federation (tests/engine/fuzzing.py): 750 mutated
queries from three client threads (most of them EXPLAIN, so that a fuzzed query that
still parses costs no MPC job), 1,500 mutated protobuf bodies sent as raw bytes to every
method of the Analyst service (as an analyst) and of the Federation service (as a party
that is not the sequencer, and as the sequencer for Prepare and Cosign, which keep
nothing), and 60 garbage TCP and TLS connections. Every answer must be a result or a
documented refusal with the engine's error class and a clear message; afterwards no
daemon died, none logged a traceback, every health service says SERVING and a normal
query returns the right answer. ``JOINTSTAT_FUZZ_SEED`` picks another seed;
benchmarks/fuzz_long.py runs longer.
"""

from __future__ import annotations

import os
import time

from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine.oracle import compare

from . import fuzzing
from .conftest import Federation

SEED = int(os.environ.get("JOINTSTAT_FUZZ_SEED", "20261204"))
SQL_INPUTS = 750
BYTES_PER_METHOD = 100
GARBAGE_CONNECTIONS = 60


def test_fuzzed_inputs_get_clear_refusals_and_leave_the_daemons_healthy(
    federation: Federation,
) -> None:
    began = time.monotonic()
    launcher = federation.launcher
    offsets = fuzzing.log_offsets(launcher.log_dir)
    tally = fuzzing.run(
        launcher,
        federation.directory,
        federation.identity,
        SEED,
        SQL_INPUTS,
        BYTES_PER_METHOD,
        GARBAGE_CONNECTIONS,
    )
    print(f"\nfuzz: {tally.inputs} inputs in {time.monotonic() - began:.1f} s (seed {SEED})")
    print(f"fuzz outcomes: {dict(tally.outcomes)}")
    assert tally.inputs >= 2000
    assert tally.findings == [], "\n".join(tally.findings[:20])
    assert fuzzing.tracebacks_since(offsets) == []
    for name, process in launcher.processes.items():
        assert process.poll() is None, f"party {name} died"
    for party in launcher.federation.parties:
        with fuzzing.channel(launcher, federation.directory / party.name, party.name) as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, party.name
    with federation.client() as client:
        result = client.query(fuzzing.PROBE)
    assert compare(result, federation.oracle.run(fuzzing.PROBE), (0,), 10, (1,)) == []
