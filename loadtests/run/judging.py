"""Judging a run: ground truth and the CPU samples to measures, the scenario's objectives to
verdicts, and the series the report draws."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadtests.judge.cpu import CpuSampler, busy_levels, cpu_series, verdict
from loadtests.judge.measures import GroundTruth, compute
from loadtests.judge.objectives import Verdict, judge
from loadtests.judge.series import series
from loadtests.scenario.model import Scenario


@dataclass(frozen=True, slots=True)
class Judgement:
    measures: dict[str, Any]
    verdicts: list[Verdict]
    series: dict[str, Any]
    cpu: dict[str, Any]  # where the time went (see loadtests.judge.cpu)


def judge_run(sc: Scenario, gt: GroundTruth, cpu: CpuSampler) -> Judgement:
    measures = compute(gt)
    measures["reregistrations"] = len(gt.registrations)
    measures["token_events"] = len(gt.feed)
    where = where_the_time_went(cpu, gt.load_started_at, gt.load_ended_at)
    measures["simulator_cpu_pct"] = where["verdict"]["simulator_pct"]
    measures["simulator_cpu_share"] = where["verdict"]["simulator_share"]
    ser = series(gt)
    ser["cpu"] = cpu_series(
        cpu.samples, gt.load_started_at, len(ser["sent"]), float(ser.get("bucket_s", 1.0))
    )
    return Judgement(measures, judge(sc.objectives, measures), ser, where)


def where_the_time_went(cpu: CpuSampler, load_started: float, load_ended: float) -> dict[str, Any]:
    """Each process's CPU during the load, and which one limited the run."""
    levels = busy_levels(cpu.samples, load_started, load_ended)
    return {
        "available": cpu.available,
        "cores": cpu.cores,
        "interval_s": cpu.interval,
        "unit": "% of one core",
        "levels": levels,
        "verdict": verdict(levels, cpu.cores),
    }
