"""``pushsim sender``: serve the reference sender's API."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

from aiohttp import web


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--simulator",
        type=Path,
        required=True,
        metavar="DIR",
        help="simulator state directory (endpoints.json and credentials)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument(
        "--db", type=Path, default=None, help="SQLite database (default DIR/sender.db)"
    )
    parser.add_argument(
        "--ready-file", type=Path, default=None, help='write {"url", "pid"} here once listening'
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=300.0,
        help="seconds after acceptance before a delivery is dead-lettered",
    )
    parser.add_argument(
        "--durability",
        choices=("process", "power"),
        default="process",
        help="process: survive a killed sender (default); power: fsync every commit",
    )


def _write_ready(path: Path, url: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.replace(tmp, path)


async def _serve(args: argparse.Namespace) -> None:
    from sender.api import make_app
    from sender.config import from_simulator_dir
    from sender.service import Sender

    db = args.db or args.simulator / "sender.db"
    config = from_simulator_dir(
        args.simulator,
        db,
        deadline=args.deadline,
        synchronous="FULL" if args.durability == "power" else "NORMAL",
    )
    sender = Sender(config)
    runner = web.AppRunner(make_app(sender), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    # What is loaded by now (modules, clients, credentials) lives for the whole run: keep it
    # out of the cyclic collector's full passes, which otherwise walk it under load.
    gc.freeze()
    port = runner.addresses[0][1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{port}"
    print(f"pushsim sender listening on {url}", flush=True)
    if sender.recovered:
        print(f"pushsim sender: resumed {sender.recovered} unfinished deliveries", flush=True)
    if args.ready_file is not None:
        _write_ready(args.ready_file, url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(args: argparse.Namespace) -> int:
    from simulator.cli import install_uvloop, validate_loopback

    err = validate_loopback(args.host)
    if err:
        print(f"pushsim sender: {err}", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"pushsim sender: --port: expected 0-65535, got {args.port}", file=sys.stderr)
        return 2
    if not 0 < args.deadline < float("inf"):  # also refuses nan
        print(
            f"pushsim sender: --deadline: expected a positive number of seconds, "
            f"got {args.deadline}",
            file=sys.stderr,
        )
        return 2
    if not (args.simulator / "endpoints.json").is_file():
        print(
            f"pushsim sender: --simulator: no endpoints.json in {args.simulator}"
            " (is the simulator running?)",
            file=sys.stderr,
        )
        return 2
    try:
        endpoints = json.loads((args.simulator / "endpoints.json").read_text())
    except (OSError, ValueError) as exc:
        print(
            f"pushsim sender: --simulator: {args.simulator / 'endpoints.json'}: "
            f"expected the simulator's JSON endpoints file: {exc}",
            file=sys.stderr,
        )
        return 2
    if not isinstance(endpoints, dict):
        print(
            f"pushsim sender: --simulator: {args.simulator / 'endpoints.json'}: "
            "expected a JSON object",
            file=sys.stderr,
        )
        return 2
    if args.db is not None and args.db.is_dir():
        print(f"pushsim sender: --db: expected a file, {args.db} is a directory", file=sys.stderr)
        return 2
    if args.ready_file is not None and not args.ready_file.parent.is_dir():
        print(
            f"pushsim sender: --ready-file: expected a file in an existing directory, "
            f"{args.ready_file.parent} does not exist",
            file=sys.stderr,
        )
        return 2
    install_uvloop()
    try:
        asyncio.run(_serve(args))
    except sqlite3.Error as exc:
        print(f"pushsim sender: --db: cannot open the database: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"pushsim sender: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0
