"""``pushsim hosts [--state-dir DIR]``: what ``pushsim exec`` sets up, to apply by hand.

Where namespaces are not available (macOS, a locked-down container), print the hosts
lines (for ``/etc/hosts`` or a container's ``--add-host``), the environment that trusts
the pushsim CA, and how to forward the real ports to the simulator's front door.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from simulator.netns.exec_cli import state_dir_argument


def configure(parser: argparse.ArgumentParser) -> None:
    state_dir_argument(parser)


def text(state_dir: Path) -> str:
    from simulator.frontdoor.names import PORTS, hosts_lines
    from simulator.frontdoor.sockets import control_socket, front_door_socket
    from simulator.netns.sandbox import prepare
    from simulator.state.credentials import ensure_credentials

    creds = ensure_credentials(state_dir)
    sandbox = prepare(state_dir, creds.ca_file)
    door = front_door_socket(state_dir)
    lines = ["# /etc/hosts (or one --add-host NAME:127.0.0.1 each)", *hosts_lines(), ""]
    lines.append("# environment: trust the pushsim CA beside the system's")
    lines += [f"export {k}={shlex.quote(v)}" for k, v in sandbox.extra_env.items()]
    lines += ["", "# with 'pushsim simulator --state-dir DIR' running, forward the real ports:"]
    lines += [
        f"#   socat TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:{door}"
        for port in PORTS
    ]
    control = control_socket(state_dir)
    lines.append(f"# the control API also answers on {control} (curl --unix-socket)")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    print(text(args.state_dir))
    return 0
