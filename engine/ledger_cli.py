"""``jointstat ledger ...``: verify a ledger copy, list who used which data, check receipts.

Every command reads a party's mirror (``--config party.toml``) or a copied SQLite file
(``--file ledger.sqlite --federation federation.toml``); none of them writes to it.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

from engine.anchor import history, keys
from engine.anchor.bundle import verify_bundle
from engine.config import Federation, config_file, load_federation, load_party
from engine.errors import AuthError, ConfigError, EngineError
from engine.wording import counted
from ledger import LedgerError, LedgerStore, QuorumError


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

    verify = sub.add_parser("verify", help="recompute every hash and signature of a ledger")
    source(verify)
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


def _open(args: argparse.Namespace) -> tuple[LedgerStore, Federation]:
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
        return LedgerStore(path), federation
    except (sqlite3.DatabaseError, LedgerError):
        raise ConfigError(
            f"ledger: got a file that is not an SQLite database at {path}, "
            "want a party's ledger.sqlite"
        ) from None


def run(args: argparse.Namespace) -> int:
    """Run one ``jointstat ledger`` subcommand; return its exit code."""
    if args.ledger_command == "verify-receipt":
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
    store, federation = _open(args)
    with store:
        if args.ledger_command == "verify":
            report = store.verify(keys.keyring(federation), keys.quorum(federation))
            if not report.ok:
                print(f"ledger INVALID at entry {report.first_bad_index}: {report.problem}")
                return 1
            print(
                f"ledger valid: {store.size} entries, root {store.root.hex()}, every hash, "
                "signature and checkpoint recomputed"
            )
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
