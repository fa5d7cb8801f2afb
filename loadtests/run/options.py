"""What a run is asked to do (:class:`RunOptions`) and what it found (:class:`RunResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.judge.objectives import Verdict
from loadtests.run.hosts import Plan
from loadtests.scenario.model import Scenario


@dataclass
class RunOptions:
    out: Path
    quick: bool = False
    target: str | None = None  # someone else's sender
    target_cmd: str | None = None  # ... started here, in a namespace (simulator.netns.target)
    simulator_dir: Path | None = None  # an already running simulator (its state dir)
    workers: int = 0
    seed: int | None = None
    progress: bool = True
    startup_timeout: float = 30.0
    dashboard: bool = False  # the simulator serves its dashboard; the run posts its progress
    store: str | None = None  # --store URL: the database the sender instances share
    hosts: Plan | None = None  # --hosts: each part on a host of its own (a network namespace)


@dataclass
class RunResult:
    scenario: Scenario
    out: Path
    measures: dict[str, Any]
    verdicts: list[Verdict]
    series: dict[str, Any]
    faults: list[dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, Any] = field(
        default_factory=dict
    )  # where the time went (see loadtests.judge.cpu)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)
