"""``pushsim simulator``: serve the mock providers and the control API."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from pushsim.process import install_uvloop, validate_loopback


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", required=True, type=Path, help="where credentials and endpoints.json live"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        default=0,
        type=int,
        help="first port: the seven listeners take N..N+6 (N at most 65529); 0 = any free",
    )
    parser.add_argument(
        "--no-tls", action="store_true", help="serve h2c (prior knowledge) and plain HTTP/1.1"
    )
    parser.add_argument(
        "--scenario",
        help="scenario whose fault plan to execute: a bundled name (see 'pushsim scenarios') "
        "or a YAML file",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed for tokens and injected chance"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes serving every provider listener on the same ports (SO_REUSEPORT); "
        "default 1",
    )
    parser.add_argument(
        "--real-hosts",
        action="store_true",
        help="Web Push subscriptions carry the real push services' endpoints (pushsim exec)",
    )
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="serve the live dashboard (loopback; its URL, with its token, is printed at start "
        "and written to endpoints.json)",
    )
    parser.add_argument(
        "--dashboard-port",
        type=_port,
        default=0,
        metavar="N",
        help="the dashboard's port (default 0: any free)",
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected 0-65535, got {value}")
    return value


def port_error(port: int, listeners: int) -> str | None:
    """Why ``--port`` cannot start ``listeners`` consecutive listeners, or None when it can."""
    last = 65535 - (listeners - 1)
    if port == 0 or 1 <= port <= last:
        return None
    return f"expected 0 or 1-{last} (the listeners take N..N+{listeners - 1}), got {port}"


def main(args: argparse.Namespace) -> int:
    from simulator.listeners import PORTS_TAKEN

    err = validate_loopback(args.host)
    if err:
        print(f"pushsim simulator: {err}", file=sys.stderr)
        return 2
    bad_port = port_error(args.port, PORTS_TAKEN)
    if bad_port:
        print(f"pushsim simulator: --port: {bad_port}", file=sys.stderr)
        return 2
    if not 1 <= args.workers <= 64:
        print(f"pushsim simulator: --workers: expected 1-64, got {args.workers}", file=sys.stderr)
        return 2
    if args.state_dir.exists() and not args.state_dir.is_dir():
        print(
            f"pushsim simulator: --state-dir: expected a directory, {args.state_dir} is a file",
            file=sys.stderr,
        )
        return 2
    from scenarios import resolve  # bundled names as ``pushsim run`` takes them

    scenario = None if args.scenario is None else resolve(args.scenario)
    if scenario is not None and not scenario.is_file():
        print(
            f"pushsim simulator: --scenario: no such file or bundled scenario {args.scenario}",
            file=sys.stderr,
        )
        return 2
    if scenario is not None:
        from simulator.faults.parse import load_fault_file
        from simulator.faults.spec import FaultSpecError

        try:
            load_fault_file(scenario)  # a bad fault plan stops the start, with where and what
        except FaultSpecError as exc:
            print(f"pushsim simulator: --scenario: {exc}", file=sys.stderr)
            return 2
    from simulator.app import Simulator, serve  # after the checks: a bad flag answers at once

    sim = Simulator(
        args.state_dir,
        host=args.host,
        port=args.port,
        tls=not args.no_tls,
        seed=args.seed,
        scenario=scenario,
        real_hosts=args.real_hosts,
        dashboard=args.dashboard,
        dashboard_port=args.dashboard_port,
    )

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.workers > 1:
            from simulator.workers.pool import serve_with_workers

            await serve_with_workers(sim, stop, args.workers)
        else:
            await serve(sim, stop)

    install_uvloop()
    from simulator.state.lock import StateDirInUse

    try:
        asyncio.run(runner())
    except StateDirInUse as exc:
        print(f"pushsim simulator: --state-dir: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"pushsim simulator: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0
