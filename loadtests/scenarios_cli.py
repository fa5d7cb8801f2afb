"""``pushsim scenarios``: the bundled scenarios, one line each."""

from __future__ import annotations

import argparse

from loadtests.scenario.check import ScenarioError
from loadtests.scenario.load import load
from scenarios import bundled


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--paths", action="store_true", help="show each scenario's file path")


def main(args: argparse.Namespace) -> int:
    rc = 0
    paths = bundled()
    width = max((len(p.stem) for p in paths), default=8)
    for path in paths:
        try:
            sc = load(str(path))
        except ScenarioError as exc:
            print(f"{path.stem:<{width}}  INVALID: {exc}")
            rc = 1
            continue
        first = sc.description.strip().splitlines()[0] if sc.description else ""
        line = f"{sc.name:<{width}}  {first}"
        if args.paths:
            line += f"  ({path})"
        print(line)
    if not paths:
        print("no bundled scenarios found")
        return 1
    return rc
