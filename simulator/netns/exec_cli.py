"""``pushsim exec [--state-dir DIR] -- COMMAND ARGS...``: COMMAND with the real hostnames.

COMMAND runs in a network and mount namespace of its own where only loopback exists,
``/etc/hosts`` maps every real provider name to the simulator (through its front door socket)
and the pushsim CA is trusted through the environment. A simulator already serving DIR is
used; with none, one is started for COMMAND's lifetime (its control API stays reachable
from outside at the URL in ``DIR/endpoints.json``). Exits with COMMAND's exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_STATE_DIR = "state"


def state_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("PUSHSIM_STATE_DIR", DEFAULT_STATE_DIR)),
        help="the simulator's state directory (default: $PUSHSIM_STATE_DIR or ./state)",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    state_dir_argument(parser)
    parser.add_argument(  # not "command": pushsim's own parser keeps the subcommand there
        "argv", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS", help="what to run"
    )


def main(args: argparse.Namespace) -> int:
    from simulator.netns.command import namespaced, run_foreground
    from simulator.netns.launch import LaunchError, simulator_for
    from simulator.netns.namespace import unavailable

    command: list[str] = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        print("pushsim exec: expected -- COMMAND ARGS...", file=sys.stderr)
        return 2
    why = unavailable()
    if why is not None:
        print(
            f"pushsim exec: {why}; see 'pushsim hosts' to map the names by hand",
            file=sys.stderr,
        )
        return 2
    state_dir: Path = args.state_dir
    if state_dir.exists() and not state_dir.is_dir():
        print(f"pushsim exec: --state-dir: {state_dir} is not a directory", file=sys.stderr)
        return 2
    try:
        with simulator_for(state_dir) as endpoints:
            argv, env = namespaced(state_dir, endpoints, command)
            return run_foreground(argv, env)
    except LaunchError as exc:
        print(f"pushsim exec: {exc}", file=sys.stderr)
        return 1
