"""``pushsim sender``: serve the reference sender's API.

The providers and credentials come from a running simulator's state directory
(``--simulator DIR``) or from an explicit config file (``--config FILE``, format in
:mod:`sender.config.file`); flags given here win over the file's ``sender:`` settings.

The store is SQLite by default (``--db PATH``, or ``--store sqlite:PATH``), or PostgreSQL
(``--store postgresql://user@host:port/db``), which any number of instances share.
"""

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
from typing import Any

from sender.config.settings import PROVIDERS, SenderConfig


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--simulator",
        type=Path,
        metavar="DIR",
        help="simulator state directory (endpoints.json and credentials)",
    )
    source.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="sender config (YAML or JSON): provider URLs and credentials, db, deadline",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="SQLite database (default DIR/sender.db, or the config's sender.db)",
    )
    parser.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="postgresql://user@host:port/db (shared by every instance on it) or sqlite:PATH"
        " (the default, as --db)",
    )
    parser.add_argument(
        "--lease",
        type=float,
        default=None,
        help="PostgreSQL: seconds before a dead instance's deliveries are taken over (default 5)",
    )
    parser.add_argument(
        "--ready-file", type=Path, default=None, help='write {"url", "pid"} here once listening'
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=None,
        help="seconds after acceptance before a delivery is dead-lettered (default 300)",
    )
    parser.add_argument(
        "--durability",
        choices=("process", "power"),
        default=None,
        help="process: survive a killed sender (default); power: fsync every commit",
    )


def _write_ready(path: Path, url: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.replace(tmp, path)


def load_config(args: argparse.Namespace) -> SenderConfig:
    """The sender's config from ``--simulator`` or ``--config``, with the flags applied;
    :class:`ConfigError` names the file and field that cannot be used."""
    from sender.config.file import from_config_file
    from sender.config.simulator_dir import from_simulator_dir

    overrides: dict[str, Any] = {}
    if args.deadline is not None:
        overrides["deadline"] = args.deadline
    if args.lease is not None:
        overrides["lease"] = args.lease
    if args.store is not None and not args.store.startswith("sqlite:"):
        overrides["store_url"] = args.store
    if args.durability is not None:
        overrides["synchronous"] = "FULL" if args.durability == "power" else "NORMAL"
    if args.config is not None:
        if args.db is not None:
            overrides["db_path"] = args.db
        return from_config_file(args.config, **overrides)
    db = args.db or args.simulator / "sender.db"
    return from_simulator_dir(args.simulator, db, **overrides)


async def _serve(args: argparse.Namespace, config: SenderConfig) -> None:
    from aiohttp import web  # here, not at the top: a bad flag is answered before this import

    from sender.api.app import make_app
    from sender.service import Sender

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
    off = [p for p in PROVIDERS if p not in config.enabled]
    if off:
        print(f"pushsim sender: not configured (refused): {', '.join(off)}", flush=True)
    if config.store_url:
        from sender.storage.pg.store import shown

        print(f"pushsim sender: store {shown(config.store_url)} (shared)", flush=True)
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


def store_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with ``--store`` / ``--db`` / ``--lease`` (None: nothing)."""
    if args.store is not None:
        if args.db is not None:
            return "--store and --db: give one of them (--db PATH is --store sqlite:PATH)"
        if args.store.startswith("sqlite:"):
            if not args.store[len("sqlite:") :]:
                return "--store: expected sqlite:PATH with a path"
        elif not args.store.startswith(("postgresql://", "postgres://")):
            return f"--store: expected postgresql://... or sqlite:PATH, got {args.store!r}"
    if args.lease is not None and not 0.5 <= args.lease <= 3600:
        return f"--lease: expected 0.5-3600 seconds, got {args.lease}"
    return None


def main(args: argparse.Namespace) -> int:
    from pushsim.process import install_uvloop, validate_loopback

    err = validate_loopback(args.host)
    if err:
        print(f"pushsim sender: {err}", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"pushsim sender: --port: expected 0-65535, got {args.port}", file=sys.stderr)
        return 2
    if args.deadline is not None and not 0 < args.deadline < float("inf"):  # and nan
        print(
            f"pushsim sender: --deadline: expected a positive number of seconds, "
            f"got {args.deadline}",
            file=sys.stderr,
        )
        return 2
    if args.simulator is not None and not (args.simulator / "endpoints.json").is_file():
        print(
            f"pushsim sender: --simulator: no endpoints.json in {args.simulator}"
            " (is the simulator running?)",
            file=sys.stderr,
        )
        return 2
    problem = store_problem(args)
    if problem:
        print(f"pushsim sender: {problem}", file=sys.stderr)
        return 2
    if args.store is not None and args.store.startswith("sqlite:"):
        args.db = Path(args.store[len("sqlite:") :])
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
    from sender.config.checks import ConfigError

    try:
        config = load_config(args)
    except ConfigError as exc:
        print(f"pushsim sender: {exc}", file=sys.stderr)
        return 2
    from sender.storage.backend import StoreUnavailable

    install_uvloop()
    try:
        asyncio.run(_serve(args, config))
    except StoreUnavailable as exc:
        print(f"pushsim sender: --store: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        print(f"pushsim sender: --db: cannot open the database: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"pushsim sender: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0
