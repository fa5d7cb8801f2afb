"""The ``pushsim`` command: one console script, a subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType

from pushsim import __version__

# subcommand -> module providing ``configure(parser)`` and ``main(args) -> int``
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "simulator": (
        "simulator.cli",
        "serve the mock APNs, FCM and Web Push providers and the control API",
    ),
    "sender": ("sender.cli", "serve the reference sender (API, outbox, dispatcher)"),
    "run": ("loadtests.cli", "run a scenario end to end (simulator, sender, Locust) and judge it"),
    "scenarios": ("loadtests.scenarios_cli", "list the bundled scenarios"),
    "exec": ("simulator.netns.exec_cli", "run COMMAND with the real provider hostnames on pushsim"),
    "hosts": ("simulator.netns.hosts_cli", "print what pushsim exec sets up, to apply by hand"),
}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(
        prog="pushsim", description="Local push-provider simulator and load-test harness."
    )
    parser.add_argument("--version", action="version", version=f"pushsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, ModuleType] = {}
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        try:
            mod = importlib.import_module(module_name)
        except ImportError as exc:  # a part not installed: say so when it is asked for
            p.set_defaults(_missing=str(exc))
            continue
        mod.configure(p)
        modules[name] = mod
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if getattr(args, "_missing", None):
        print(f"pushsim {args.command}: unavailable: {args._missing}", file=sys.stderr)
        return 2
    rc: int = modules[args.command].main(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
