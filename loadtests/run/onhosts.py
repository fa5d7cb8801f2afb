"""``pushsim run --hosts``, the outer half: make the run's hosts, run the harness on its own
host, tear the hosts down whatever happens.

The harness is this same command run again inside the ``harness`` host with
``--hosts-plan OUT/hosts.json`` (the plan :mod:`loadtests.run.hosts` made); it starts every
other part on its host. This process only waits for it -- Ctrl-C reaches both, SIGTERM is
passed on -- and then deletes the namespaces, so none outlives the run.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from loadtests.run import hosts
from loadtests.scenario.model import Scenario

# pushsim run's flags the harness inside gets again as they were given (all but --hosts)
_VALUE_FLAGS = ("workers", "seed")
_SWITCHES = ("quick", "no_progress")


def incompatible(args: argparse.Namespace) -> str | None:
    """Why --hosts cannot be used with the other flags given (None: it can)."""
    for flag in ("target", "target_cmd", "simulator", "store"):
        if getattr(args, flag, None):
            name = "--" + flag.replace("_", "-")
            return f"--hosts starts every part on its own host; it does not take {name}"
    if getattr(args, "dashboard", False):
        return "--hosts: the dashboard would listen on the run's private link, out of reach"
    return hosts.unavailable()


def plan_for(sc: Scenario, args: argparse.Namespace, run: str) -> hosts.Plan:
    postgres = sc.sender.store == "postgresql"
    return hosts.plan(run, hosts.roles(sc.sender.instances, postgres, int(args.workers)))


def inner_argv(args: argparse.Namespace, out: Path, plan_file: Path) -> list[str]:
    argv = [sys.executable, "-m", "pushsim", "run", str(args.scenario), "--out", str(out)]
    for flag in _VALUE_FLAGS:
        value = getattr(args, flag, None)
        if value is not None:
            argv += ["--" + flag.replace("_", "-"), str(value)]
    argv += ["--" + s.replace("_", "-") for s in _SWITCHES if getattr(args, s, False)]
    return [*argv, "--hosts-plan", str(plan_file)]


def run_on_hosts(sc: Scenario, args: argparse.Namespace, out: Path, run: str) -> int:
    """Make the hosts, run the harness inside, tear down; the harness's exit status."""
    out = out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    plan = plan_for(sc, args, run)
    plan_file = plan.write(out / "hosts.json")
    try:
        hosts.build(plan)
    except hosts.HostsError as exc:
        print(f"pushsim run: {exc}", file=sys.stderr)
        return 3
    print(
        f"pushsim run {sc.name}: {len(plan.hosts)} hosts on {hosts.SUBNET} (network "
        f"namespaces {plan.link.removesuffix('-link')}-*): "
        + ", ".join(f"{h.role} {h.address}" for h in plan.hosts),
        file=sys.stderr,
    )
    try:
        return _wait(subprocess.Popen([*plan.prefix("harness"), *inner_argv(args, out, plan_file)]))
    finally:
        left = hosts.tear_down(plan)
        if left:
            print(f"pushsim run: could not delete namespaces {', '.join(left)}", file=sys.stderr)


def _wait(proc: subprocess.Popen[bytes]) -> int:
    def on_term(signum: int, frame: FrameType | None) -> None:
        proc.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # the harness got it too and is stopping its parts
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)
