"""``pushsim run [SCENARIO]``: run a scenario end to end and judge it.

``--check`` only validates the file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from loadtests import DEFAULT_SCENARIO
from loadtests.scenario.check import ScenarioError
from loadtests.scenario.load import load
from loadtests.scenario.model import Scenario


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenario",
        nargs="?",
        default=DEFAULT_SCENARIO,
        help=(
            "a bundled scenario name (see 'pushsim scenarios') or a YAML file "
            f"(default: {DEFAULT_SCENARIO})"
        ),
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=(
            "output directory (default: ./out/<scenario>-<YYYYMMDD-HHMMSS>-<NNN>, "
            "NNN: the last three digits of the process id)"
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="apply the scenario's quick: overrides (CI: under a minute)",
    )
    parser.add_argument("--check", action="store_true", help="validate the scenario file and exit")
    parser.add_argument(
        "--target", metavar="URL", help="drive this sender instead of starting the reference sender"
    )
    parser.add_argument(
        "--target-cmd",
        metavar="COMMAND",
        help="start COMMAND (sh -c) as the sender, where the real provider hostnames reach the "
        "simulator (see 'pushsim exec'); it must listen at --target URL",
    )
    parser.add_argument(
        "--simulator",
        type=Path,
        metavar="DIR",
        help="use the simulator already running with this --state-dir (required with --target)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="run a Locust master and N local workers",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="a PostgreSQL database (postgresql://..., on loopback) the reference sender's "
        "instances share, instead of the throwaway one a store: postgresql scenario starts",
    )
    parser.add_argument(
        "--hosts",
        action="store_true",
        help="root only: run the simulator, PostgreSQL, each sender instance and each Locust "
        "process on a host of its own (network namespaces on a private link made for the run "
        "and deleted after it; nothing routes off the machine)",
    )
    parser.add_argument("--hosts-plan", type=Path, help=argparse.SUPPRESS)  # the inner harness
    parser.add_argument("--seed", type=int, help="seed for tokens, traffic mix and injected chance")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress line while the load runs"
    )
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="start the simulator with its live dashboard (its URL is printed) and show the "
        "run's progress there",
    )


def _loopback_url(url: str) -> str | None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"--target: expected an http:// URL, got {url!r}"
    host = parts.hostname
    if host != "localhost" and not host.startswith("127.") and host != "::1":
        return (
            "--target: pushsim only sends traffic to loopback "
            f"(127.0.0.0/8, ::1, localhost), got {host!r}"
        )
    return None


def _fleet_error(sc: Scenario, args: argparse.Namespace) -> str | None:
    """Why the reference sender's flags and the scenario's sender: section do not fit."""
    if args.store is not None:
        from loadtests.run.fleet import check_store_url

        if args.target:
            return "--store: the reference sender's database; --target drives another sender"
        if (err := check_store_url(args.store)) is not None:
            return err
    if sc.crashes and args.target:
        first = sc.crashes[0]
        return (
            f"{sc.source}: faults: {first.id} is a sender_crash, which kills the reference "
            "sender's instances; --target drives another sender"
        )
    return None


def _on_hosts(sc: Scenario, args: argparse.Namespace) -> int:
    """``--hosts``: make the run's hosts and run the harness on one of them."""
    from loadtests.run import harness, onhosts

    err = onhosts.incompatible(args)
    if err:
        print(f"pushsim run: {err}", file=sys.stderr)
        return 2
    out = args.out or harness.default_out(sc)
    return onhosts.run_on_hosts(sc, args, out, str(os.getpid()))


def describe(sc: Scenario) -> str:
    pop = ", ".join(f"{n} {p}" for p, n in sc.population.devices.items() if n)
    objs = ", ".join(f"{o.name} {o.kind.op} {o.required:g}" for o in sc.objectives) or "none"
    faults = len(sc.faults) if isinstance(sc.faults, list) else (1 if sc.faults else 0)
    faults += len(sc.crashes)
    declared = ", ".join(f"{n:,} {p}" for p, n in sc.population.declared.items() if n)
    beside = f", beside {declared} declared in the simulator" if declared else ""
    fleet = ""
    if sc.sender.instances > 1 or sc.sender.store != "sqlite":
        fleet = f"sender {sc.sender.instances} instance(s) on {sc.sender.store}; "
    return (
        f"{sc.source}: ok: {sc.name}: {pop} devices for {sc.population.users} users{beside}; "
        f"{sc.load.shape} load, {sc.load.users} users x {sc.load.rate_text()} "
        f"for {sc.duration:g}s; "
        f"{fleet}{faults} fault(s); objectives: {objs}"
    )


def main(args: argparse.Namespace) -> int:
    try:
        sc = load(args.scenario, quick=args.quick)
        if args.check:
            print(describe(sc))
            if not args.quick:
                load(args.scenario, quick=True)  # the quick overrides must be valid too
            return 0
    except ScenarioError as exc:
        print(f"pushsim run: {exc}", file=sys.stderr)
        return 2
    err = _fleet_error(sc, args)
    if err:
        print(f"pushsim run: {err}", file=sys.stderr)
        return 2
    if args.workers < 0 or args.workers > 64:
        print(f"pushsim run: --workers: expected 0-64, got {args.workers}", file=sys.stderr)
        return 2
    if args.target_cmd:
        from simulator.netns.target import target_cmd_error

        err = target_cmd_error(args.target)
        if err:
            print(f"pushsim run: {err}", file=sys.stderr)
            return 2
    if args.target:
        err = _loopback_url(args.target)
        if err:
            print(f"pushsim run: {err}", file=sys.stderr)
            return 2
        if args.simulator is None and not args.target_cmd:
            print(
                "pushsim run: --target needs --simulator DIR: start "
                "'pushsim simulator --state-dir DIR', point "
                "your sender at DIR/endpoints.json, then pass the same DIR here",
                file=sys.stderr,
            )
            return 2

    if args.hosts:
        return _on_hosts(sc, args)

    from loadtests.report import junit, outputs
    from loadtests.run import HarnessError, harness
    from loadtests.run.hosts import Plan

    out = args.out or harness.default_out(sc)
    options = harness.RunOptions(
        out=out,
        quick=args.quick,
        target=args.target,
        target_cmd=args.target_cmd,
        simulator_dir=args.simulator,
        workers=args.workers,
        seed=args.seed,
        progress=not args.no_progress,
        dashboard=args.dashboard,
        store=args.store,
        hosts=Plan.read(args.hosts_plan) if args.hosts_plan else None,
    )

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        result = harness.run(sc, options)
    except KeyboardInterrupt:
        print("\npushsim run: interrupted; every child process was stopped", file=sys.stderr)
        return 130
    except HarnessError as exc:
        out.mkdir(parents=True, exist_ok=True)
        (out / "junit.xml").write_text(junit.junit_error(sc.name, str(exc)), encoding="utf-8")
        (out / "report.json").write_text(
            json.dumps(
                {"scenario": {"name": sc.name}, "passed": False, "error": str(exc)}, indent=2
            )
            + "\n"
        )
        print(f"pushsim run: {exc}", file=sys.stderr)
        return 3
    finally:
        signal.signal(signal.SIGTERM, previous)
    doc = outputs.write_all(result)
    print(outputs.summary_text(doc))
    return 0 if result.passed else 1
