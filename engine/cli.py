"""The ``jointstat`` command line. Every command exits through :func:`main`.

Exit codes: 0 success; 1 the query or command was refused or failed (message on stderr);
2 usage errors (bad arguments).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from engine.errors import EngineError


def _parties(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jointstat",
        description="Joint statistics across agencies with secure multi-party computation.",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="create a federation: CA, keys, config files")
    init.add_argument("directory", type=Path)
    init.add_argument("--parties", type=_parties, required=True, help="comma-separated, >= 3")
    init.add_argument("--analysts", type=_parties, default=[], help="comma-separated")
    init.add_argument("--name", default="federation", help="federation name")
    init.add_argument(
        "--base-port",
        type=int,
        default=7300,
        help="party i listens on base+i (analysts), base+200+i (parties), base+100+i (MPC)",
    )

    party = commands.add_parser("party", help="run a party daemon")
    party_commands = party.add_subparsers(dest="party_command", required=True)
    serve = party_commands.add_parser("serve", help="serve until SIGTERM/SIGINT")
    serve.add_argument("--config", type=Path, required=True, help="path to party.toml")

    query = commands.add_parser("query", help="run one SQL query as an analyst")
    query.add_argument("--identity", type=Path, required=True, help="analyst identity directory")
    query.add_argument("--party", help="party to send the query to (default from identity)")
    query.add_argument("--format", choices=("table", "json", "csv"), default="table")
    query.add_argument("--timeout", type=float, help="seconds to wait for the result")
    query.add_argument("--receipt", type=Path, help="save the ledger receipt bundle here")
    query.add_argument("sql")

    datasets = commands.add_parser("datasets", help="list the federation's datasets")
    datasets.add_argument("--identity", type=Path, required=True, help="analyst identity directory")
    datasets.add_argument("--party", help="party to ask (default from identity)")
    datasets.add_argument("--format", choices=("table", "json"), default="table")

    from engine.ledger_cli import add_commands

    add_commands(commands)

    demo = commands.add_parser("demo", help="run a local demo federation end to end")
    demo.add_argument("--citizens", type=int, default=100_000)
    demo.add_argument("--directory", type=Path, help="where to create it (default: temporary)")
    demo.add_argument("--base-port", type=int, default=7300)
    demo.add_argument("--seed", type=int, default=7)
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command == "init":
        from engine.federation_init import create_federation

        path = create_federation(
            args.directory, args.parties, args.analysts, name=args.name, base_port=args.base_port
        )
        print(f"created federation {args.name!r} in {args.directory} ({path.name}); next:")
        for party in args.parties:
            print(f"  jointstat party serve --config {args.directory / party / 'party.toml'}")
        return 0
    if args.command == "party":
        from engine.daemon.server import run

        asyncio.run(run(args.config))
        return 0
    if args.command == "query":
        from engine.client import Client

        with Client(args.identity, args.party) as client:
            result = client.query(args.sql, timeout=args.timeout)
        if args.receipt is not None:
            if result.receipt is None:
                raise EngineError("--receipt: the federation's ledger is off; no receipt to save")
            from engine.anchor.bundle import dumps

            args.receipt.write_text(dumps(result.receipt))
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
    if args.command == "demo":
        from engine.demo.run import run_demo

        return run_demo(args.citizens, args.directory, args.base_port, args.seed)
    raise AssertionError(args.command)


def _datasets_text(datasets: list[dict[str, Any]]) -> str:
    """Return the datasets as text: one block per dataset, one line per usable column."""
    blocks = []
    for d in datasets:
        who = d["analysts"]
        analysts = "every analyst" if "*" in who else "analysts " + ", ".join(who)
        head = f"{d['owner']}.{d['name']}  (minimum group size {d['min_group_size']}; {analysts})"
        if not d["available"]:
            head += f"\n  unavailable: {d['problem']}"
        lines = [head]
        for name, kind, policy, decimals in d["columns"]:
            scale = f", {decimals} decimals" if kind == "float" else ""
            lines.append(f"  {name:<20} {kind:<8} {policy}{scale}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "no datasets (every party is compute-only)"


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
    except EngineError as exc:
        print(f"jointstat: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into a command that stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
