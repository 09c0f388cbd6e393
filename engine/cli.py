"""The ``jointstat`` command line. Every command exits through :func:`main`.

Exit codes: 0 success; 1 the query or command was refused or failed (message on stderr);
2 usage errors (bad arguments). :func:`main` is the one place that turns an error into a
one-line diagnostic: an EngineError prints its message, an OSError (a path given on the
command line that cannot be used) the path and the reason; neither prints a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from engine.anchor.errors import engine_error
from engine.errors import ConfigError, EngineError
from engine.wording import counted
from ledger import LedgerError


def _parties(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _host(text: str) -> tuple[str, str]:
    party, sep, host = text.partition("=")
    if not sep or not party.strip() or not host.strip():
        raise argparse.ArgumentTypeError(f"got {text!r}, want PARTY=HOST (e.g. tax=10.0.0.2)")
    return party.strip(), host.strip()


def _version() -> str:
    try:
        return metadata.version("jointstat")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        from engine import __version__

        return __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jointstat",
        description="Joint statistics across agencies with secure multi-party computation.",
        epilog="Exit codes: 0 success, 1 refused or failed (reason on stderr), 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"jointstat {_version()}")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="create a federation: CA, keys, config files")
    init.add_argument(
        "directory", type=Path, help="where to create the federation (a new directory)"
    )
    init.add_argument(
        "--parties",
        type=_parties,
        required=True,
        help="comma-separated party names, at least 3, in MPC order; the first is the sequencer",
    )
    init.add_argument("--analysts", type=_parties, default=[], help="comma-separated names")
    init.add_argument("--name", default="federation", help="federation name")
    init.add_argument(
        "--base-port",
        type=int,
        default=7300,
        help="party i listens on base+i (analysts), base+200+i (parties), base+100+i (MPC) "
        "and base+1100+i (large MPC jobs); default 7300",
    )
    init.add_argument(
        "--host",
        type=_host,
        action="append",
        default=[],
        metavar="PARTY=HOST",
        help="the host name or IPv4 address a party listens on and is reached at "
        "(default 127.0.0.1); repeat once per party",
    )
    init.add_argument(
        "--request",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a key request made by a party or analyst with `jointstat keys request`: "
        "the CA signs it and no private key is made for that member; repeatable",
    )

    party = commands.add_parser("party", help="run a party daemon")
    party_commands = party.add_subparsers(dest="party_command", required=True)
    serve = party_commands.add_parser("serve", help="serve until SIGTERM/SIGINT")
    serve.add_argument(
        "--config", type=Path, required=True, help="the party's party.toml, or its directory"
    )
    serve.add_argument(
        "--allow-unavailable",
        action="store_true",
        help="start even if a declared dataset cannot be loaded (it is listed as unavailable)",
    )

    query = commands.add_parser("query", help="run one SQL query as an analyst")
    query.add_argument(
        "--identity", type=Path, required=True, help="analyst identity directory (or identity.toml)"
    )
    query.add_argument("--party", help="party to send the query to (default from identity)")
    query.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="output format (default table; json is described in README)",
    )
    query.add_argument("--timeout", type=float, help="seconds to wait for the result")
    query.add_argument("--receipt", type=Path, help="save the ledger receipt bundle here")
    query.add_argument(
        "sql",
        metavar="SQL",
        help='one SELECT statement (quote it), or "EXPLAIN SELECT ..." for the plan alone',
    )

    datasets = commands.add_parser("datasets", help="list the federation's datasets")
    datasets.add_argument(
        "--identity", type=Path, required=True, help="analyst identity directory (or identity.toml)"
    )
    datasets.add_argument("--party", help="party to ask (default from identity)")
    datasets.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="output format (default table; json is described in README)",
    )

    from engine.key_requests import add_commands as add_key_commands
    from engine.ledger_cli import add_commands

    add_commands(commands)
    add_key_commands(commands)

    demo = commands.add_parser("demo", help="run a local demo federation end to end")
    demo.add_argument(
        "--citizens",
        type=int,
        default=100_000,
        help="synthetic citizens to generate (default 100,000; at least 100)",
    )
    demo.add_argument(
        "--directory",
        type=Path,
        help="where to create the federation and keep it afterwards (default: a temporary "
        "directory, removed at the end)",
    )
    demo.add_argument(
        "--base-port",
        type=int,
        default=7300,
        help="party i listens on base+i (gRPC) and base+100+i (MPC); default 7300",
    )
    demo.add_argument("--seed", type=int, default=7, help="seed of the synthetic data (default 7)")
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command == "init":
        from engine.federation_init import create_federation, handout
        from engine.key_requests import read_request

        hosts = dict(args.host)
        if len(hosts) != len(args.host):
            raise ConfigError("--host: got a party twice, want one PARTY=HOST per party")
        requests = [read_request(path) for path in args.request]
        create_federation(
            args.directory,
            args.parties,
            args.analysts,
            name=args.name,
            base_port=args.base_port,
            hosts=hosts,
            requests=requests,
        )
        print(f"created federation {args.name!r} in {args.directory}")
        print(handout(args.directory, args.parties, args.analysts, requests))
        return 0
    if args.command == "party":
        from engine.daemon.server import run

        asyncio.run(run(args.config, allow_unavailable=args.allow_unavailable))
        return 0
    if args.command == "query":
        from engine.client import Client

        with Client(args.identity, args.party) as client:
            result = client.query(args.sql, timeout=args.timeout)
        if args.receipt is not None:
            _save_receipt(args.receipt, result.receipt)
        if args.format == "json":
            print(json.dumps(result.to_json()))
        elif args.format == "csv":
            sys.stdout.write(result.to_csv())
        else:
            print(result.to_table())
        return 0
    if args.command == "datasets":
        from engine.client import Client

        with Client(args.identity, args.party) as client:
            listed = client.datasets()
        print(json.dumps(listed, indent=2) if args.format == "json" else _datasets_text(listed))
        return 0
    if args.command == "ledger":
        from engine.ledger_cli import run as run_ledger

        return run_ledger(args)
    if args.command in ("keys", "ca"):
        from engine.key_requests import run as run_keys

        return run_keys(args)
    if args.command == "demo":
        from engine.demo.run import run_demo

        return run_demo(args.citizens, args.directory, args.base_port, args.seed)
    raise AssertionError(args.command)


def _save_receipt(path: Path, receipt: dict[str, Any] | None) -> None:
    """Write a query's receipt bundle to ``path``; raise EngineError if there is none."""
    if receipt is None:
        raise EngineError("--receipt: the federation's ledger is off; no receipt to save")
    from engine.anchor.bundle import dumps

    try:
        path.write_text(dumps(receipt))
    except OSError as exc:
        raise EngineError(
            f"--receipt: cannot write {path} ({exc.strerror}), want a file path "
            "in an existing directory"
        ) from None


def _datasets_text(datasets: list[dict[str, Any]]) -> str:
    """Return the datasets as text: one block per dataset, one line per column."""
    blocks = []
    for d in datasets:
        who = d["analysts"]
        analysts = "every analyst" if "*" in who else "analysts " + ", ".join(who)
        head = f"{d['dataset']}  (minimum group size {d['min_group_size']}; {analysts})"
        if not d["available"]:
            head += f"\n  unavailable at its owner: {d['problem']}"
        if d.get("release") == "dp" and "budget" in d:
            budget = d["budget"]
            head += (
                f"\n  release dp: epsilon {budget['epsilon_per_query']:g} per query; you have "
                f"{budget['analyst_budget'] - d.get('analyst_budget_spent', 0):.6g} of "
                f"{budget['analyst_budget']:g} left; all analysts "
                f"{budget['budget'] - d.get('budget_spent', 0):.6g} of {budget['budget']:g}"
            )
        lines = [head]
        for column in d["columns"]:
            kind, policy = column["type"], column["policy"]
            notes = []
            if column["decimals"]:
                notes.append(counted(column["decimals"], "decimal"))
            if "domain" in column:
                notes.append(f"{len(column['domain'])} labels")
            if "bounds" in column:
                notes.append(f"bounds {column['bounds'][0]:g}..{column['bounds'][1]:g}")
            if column.get("order_statistics"):
                notes.append("order statistics allowed")
            extra = f", {', '.join(notes)}" if notes else ""
            lines.append(f"  {column['name']:<20} {kind:<8} {policy}{extra}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "no datasets (every party is compute-only)"


def _os_problem(exc: OSError) -> str:
    """Return an OSError as "path: reason" (no traceback: the user gave a path we cannot use)."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        parser.error(f"--log-level: got {args.log_level!r}, want DEBUG, INFO, WARNING or ERROR")
    logging.basicConfig(
        level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr
    )
    try:
        return _run(args)
    except (EngineError, LedgerError) as exc:
        error = engine_error(exc, "ledger") if isinstance(exc, LedgerError) else exc
        print(f"jointstat: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into a command that stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a path given on the command line that cannot be used
        print(f"jointstat: {_os_problem(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
