"""``jointstat ledger ...``: verify a ledger copy, list who used which data, check receipts.

Every command reads a party's mirror (``--config party.toml``) or a copied SQLite file
(``--file ledger.sqlite --federation federation.toml``) read-only (SQLite ``mode=ro``):
none of them writes to it, and a file that is not a jointstat ledger is refused. ``ledger
verify`` also compares the copy with the checkpoints others signed (the party's witness,
and every reachable party; see :mod:`engine.anchor.freshness`) and says when it was rolled
back. ``ledger export`` writes a consistent copy while the daemon runs (a plain ``cp`` of
a live WAL database can miss its newest entries). Ledger and SQLite errors become an
EngineError in one place, :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

from engine.anchor import freshness, history, keys
from engine.anchor.bundle import verify_bundle
from engine.anchor.errors import engine_error
from engine.config import (
    Federation,
    PartyConfig,
    config_file,
    load_federation,
    load_identity,
    load_party,
)
from engine.errors import AuthError, ConfigError, EngineError
from engine.pki import read_pem
from engine.rpc.checkpoints import party_checkpoints
from engine.rpc.peers import client_credentials
from engine.wording import counted
from ledger import LedgerError, LedgerStore, QuorumError, VerifyReport


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``ledger`` command and its subcommands to the CLI."""
    ledger = commands.add_parser("ledger", help="audit the federation's ledger")
    sub = ledger.add_subparsers(dest="ledger_command", required=True)

    def source(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--config", type=Path, help="a party.toml (or its directory): read that party's copy"
        )
        parser.add_argument("--file", type=Path, help="a copied ledger.sqlite to read instead")
        parser.add_argument(
            "--federation", type=Path, help="federation.toml or its directory (with --file)"
        )

    verify = sub.add_parser(
        "verify", help="recompute every hash and signature; compare with signed checkpoints"
    )
    source(verify)
    verify.add_argument(
        "--identity", type=Path, help="an analyst identity: ask the parties with it (with --file)"
    )
    verify.add_argument("--witness", type=Path, help="a witness.sqlite to compare with (--file)")
    verify.add_argument("--offline", action="store_true", help="ask no party")
    log = sub.add_parser("log", help="who used which dataset, when, for which query")
    source(log)
    log.add_argument("--dataset", help="only queries naming this dataset (party.dataset)")
    log.add_argument("--analyst", help="only queries by this analyst")
    log.add_argument(
        "--format", choices=("table", "json"), default="table", help="output (default table)"
    )
    receipt = sub.add_parser("verify-receipt", help="check a query's receipt bundle offline")
    receipt.add_argument("file", type=Path, help="the file saved by jointstat query --receipt")
    receipt.add_argument(
        "--federation", type=Path, required=True, help="federation.toml (or its directory)"
    )
    checkpoint = sub.add_parser("checkpoint", help="print the latest cosigned checkpoint")
    source(checkpoint)
    export = sub.add_parser(
        "export", help="write a consistent copy of a ledger (safe while the daemon runs)"
    )
    source(export)
    export.add_argument("output", type=Path, help="the new SQLite file to write")


def _open(args: argparse.Namespace) -> tuple[LedgerStore, Federation, PartyConfig | None]:
    party = None
    if args.config is not None:
        party = load_party(args.config)
        path = party.state_dir / "ledger.sqlite"
        federation = party.federation
    elif args.file is not None and args.federation is not None:
        path = config_file(args.file, "ledger.sqlite")
        federation = load_federation(args.federation)
    else:
        raise ConfigError(
            "ledger: got no source, want --config PARTY.toml or --file and --federation"
        )
    if not path.is_file():
        raise ConfigError(f"ledger: got no file at {path}, want a party's ledger.sqlite")
    try:
        return LedgerStore(path, read_only=True), federation, party
    except sqlite3.DatabaseError:
        raise ConfigError(
            f"ledger: got a file that is not an SQLite database at {path}, "
            "want a party's ledger.sqlite"
        ) from None


def run(args: argparse.Namespace) -> int:
    """Run one ``jointstat ledger`` subcommand; return its exit code.

    Raises EngineError for every ledger or SQLite error (the one place they are translated).
    """
    try:
        return _run(args)
    except LedgerError as exc:
        raise engine_error(exc, "ledger") from None
    except sqlite3.Error as exc:
        raise EngineError(f"ledger: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    if args.ledger_command == "verify-receipt":
        return _verify_receipt(args)
    store, federation, party = _open(args)
    with store:
        if args.ledger_command == "verify":
            return _verify(args, store, federation, party)
        if args.ledger_command == "export":
            size = store.export(args.output)
            print(f"exported {size} entries of {store.path} to {args.output} (a consistent copy)")
            return 0
        if args.ledger_command == "checkpoint":
            for _, note in store.iter_checkpoints(newest_first=True):
                try:
                    keys.quorum(federation).verify(note)
                except QuorumError:
                    continue
                print(note, end="")
                return 0
            raise AuthError("ledger: got no checkpoint cosigned by a quorum")
        return _log(args, store)


def _verify_receipt(args: argparse.Namespace) -> int:
    try:
        bundle = json.loads(args.file.read_text())
    except OSError as exc:
        raise EngineError(
            f"receipt: cannot read {args.file} ({exc.strerror}), want the file saved "
            "by jointstat query --receipt"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EngineError(f"receipt {args.file}: got invalid JSON ({exc})") from None
    proof = verify_bundle(bundle, load_federation(args.federation))
    print(f"receipt valid: query {proof.query_id}")
    print(f"  analyst {proof.analyst}, issued {history.when(proof.issued_at)}")
    print(f"  sql: {proof.sql}")
    print(
        f"  request at ledger index {proof.request_index}; checkpoint of size "
        f"{proof.checkpoint_size} cosigned by {', '.join(proof.cosigners)}"
    )
    print(f"  result committed by {', '.join(proof.committed_by)}")
    return 0


def _verify(
    args: argparse.Namespace, store: LedgerStore, federation: Federation, party: PartyConfig | None
) -> int:
    report = store.verify(keys.keyring(federation), keys.quorum(federation))
    if not report.ok:
        print(f"ledger INVALID at entry {report.first_bad_index}: {report.problem}")
        return 1
    comparison = _freshness(args, store, federation, party)
    for problem in comparison.problems:
        kind = "ROLLED BACK" if problem.startswith("rolled back") else "INVALID"
        print(f"ledger {kind}: {problem}")
    if comparison.problems:
        return 1
    print(
        f"ledger valid: {store.size} entries, root {store.root.hex()}, every hash, "
        "signature and checkpoint recomputed"
    )
    print(f"  {_checkpoints_line(store, federation, report)}")
    for line in freshness.describe(comparison):
        print(f"  {line}")
    return 0


def _freshness(
    args: argparse.Namespace, store: LedgerStore, federation: Federation, party: PartyConfig | None
) -> freshness.Comparison:
    """Gather the signed checkpoints to compare the copy with and compare it."""
    witnessed: list[freshness.Witnessed] = []
    missed: list[str] = []
    witness_path, source = args.witness, f"the witness in {args.witness}"
    if party is not None:
        witness_path, source = party.state_dir / "witness.sqlite", f"{party.name}'s witness"
    elif witness_path is not None and not witness_path.is_file():
        raise ConfigError(f"--witness: got no file at {witness_path}, want a witness.sqlite")
    if witness_path is not None:
        local = freshness.local_witness(witness_path, federation, source)
        if local is not None:
            witnessed.append(local)
    credentials = None
    if args.offline:
        pass
    elif party is not None:
        credentials = client_credentials(
            read_pem(federation.ca_certificate, "federation CA certificate"),
            read_pem(party.tls_key, "party TLS key"),
            read_pem(party.tls_certificate, "party TLS certificate"),
        )
    elif args.identity is not None:
        identity = load_identity(args.identity)
        credentials = client_credentials(
            read_pem(federation.ca_certificate, "federation CA certificate"),
            read_pem(identity.tls_key, "analyst TLS key"),
            read_pem(identity.tls_certificate, "analyst TLS certificate"),
        )
    if credentials is not None:
        skip = [party.name] if party is not None else []  # its own files are read above
        answers = party_checkpoints(federation, credentials, skip)
        found, not_reached = freshness.verify_answers(federation, answers)
        witnessed += found
        missed += not_reached
    return freshness.compare(store, witnessed, missed)


def _checkpoints_line(store: LedgerStore, federation: Federation, report: VerifyReport) -> str:
    """Say how many stored checkpoints a quorum cosigned, and which is the latest."""
    quorum = keys.quorum(federation)
    stored = below = 0
    for _, note in store.iter_checkpoints():
        stored += 1
        try:
            quorum.verify(note)
        except QuorumError:
            below += 1
    if report.cosigned_size is None:
        head = "no checkpoint cosigned by a quorum yet"
    else:
        head = f"the latest cosigned by a quorum at size {report.cosigned_size}"
    tail = f"; {below} with fewer cosignatures (not checkpoints of the ledger)" if below else ""
    return f"checkpoints: {stored} stored, {head}{tail}"


def _log(args: argparse.Namespace, store: LedgerStore) -> int:
    records, registrations = history.read(store)
    chosen = list(history.select(records, args.dataset, args.analyst))
    if args.format == "json":
        print(json.dumps([r.to_json() for r in chosen], indent=2))
        return 0
    # Registrations are made by parties, not analysts: none matches an analyst filter.
    for reg in registrations if args.analyst is None else []:
        if args.dataset in (None, f"{reg.owner}.{reg.dataset}", reg.dataset):
            print(
                f"#{reg.index:<6} registered {reg.owner}.{reg.dataset} "
                f"schema {reg.schema_hash} policy {reg.policy_hash}"
            )
    for r in chosen:
        print(f"#{r.index:<6} {history.when(r.issued_at)} {r.analyst:<10} query {r.query_id}")
        print(f"        datasets: {', '.join(r.datasets) or '-'}")
        print(f"        sql: {r.sql}")
        print(f"        approved by: {', '.join(sorted(r.approvals)) or '-'}; {r.outcome}")
        for dataset, epsilon in r.charges:
            print(f"        budget: epsilon {epsilon:g} charged to {dataset}")
    print(f"({len(chosen):,} of {counted(len(records), 'query', 'queries')})")
    return 0
