"""Where the time went: the /proc parsers, the per-second series and the bottleneck verdict
(pure), and the sampler against this machine's /proc where there is one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from loadtests.judge.cpu import (
    MACHINE,
    CpuSampler,
    Stat,
    busy_levels,
    cpu_series,
    group_ticks,
    parse_cpu_line,
    parse_stat,
    verdict,
)


def stat_line(pid: int, comm: str, pgrp: int, utime: int, stime: int) -> str:
    # fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    return f"{pid} ({comm}) S 1 {pgrp} {pgrp} 0 -1 4194560 10 0 0 0 {utime} {stime} 0 0 20 0 1 0"


def test_parse_stat_reads_pgrp_and_cpu_ticks() -> None:
    assert parse_stat(stat_line(42, "python3", 40, 150, 25)) == Stat(42, 40, 175)


def test_parse_stat_survives_spaces_and_parentheses_in_the_command_name() -> None:
    assert parse_stat(stat_line(7, "we ird) (name", 7, 3, 4)) == Stat(7, 7, 7)


@pytest.mark.parametrize(
    "text", ["", "garbage", "12 (x) S 1", "x (y) S 1 2 3 4 5 6 7 8 9 10 11 12"]
)
def test_parse_stat_rejects_what_is_not_a_stat_line(text: str) -> None:
    assert parse_stat(text) is None


def test_parse_cpu_line_counts_idle_and_iowait_as_not_busy() -> None:
    text = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\n"
    assert parse_cpu_line(text) == (160, 1000)
    assert parse_cpu_line("intr 1 2 3\n") is None


def test_group_ticks_sums_a_childs_process_group() -> None:
    stats = [Stat(10, 10, 100), Stat(11, 10, 50), Stat(20, 20, 7), Stat(30, 1, 9)]
    got = group_ticks(stats, {"sender": 10, "simulator": 20, "gone": 99}, {"pushsim run": 30})
    assert got == {"sender": 150, "simulator": 7, "pushsim run": 9}


def test_cpu_series_puts_each_sample_on_the_report_time_axis() -> None:
    t0 = 1000.0
    samples = [(t0 + 1.0, {"sender": 50.0}), (t0 + 2.0, {"sender": 80.0, "locust": 30.0})]
    got = cpu_series(samples, t0, 4)
    assert got["sender"] == [50.0, 80.0, None, None]
    assert got["locust"] == [None, 30.0, None, None]
    assert cpu_series([(t0 - 5, {"x": 1.0})], t0, 3) == {}


def test_busy_levels_peak_is_the_busiest_quarter_within_the_load_window() -> None:
    samples = [
        (float(t), {"sender": float(v)}) for t, v in enumerate([10, 20, 30, 40, 90, 100, 95, 99], 1)
    ]
    samples.append((100.0, {"sender": 5.0}))  # after the load: not counted
    lv = busy_levels(samples, 0.0, 8.0)["sender"]
    assert lv["samples"] == 8
    assert lv["peak"] == 99.5  # mean of 100 and 99
    assert lv["mean"] == pytest.approx(60.5)


def levels(**peaks: float) -> dict[str, dict[str, float]]:
    return {n.replace("_", " "): {"mean": v, "peak": v, "samples": 10.0} for n, v in peaks.items()}


def test_verdict_names_a_saturated_load_generator() -> None:
    v = verdict(levels(simulator=30, sender=60, locust=98), cores=4)
    assert v["bottleneck"] == "load generator"
    assert v["text"].startswith("load generator saturated (Locust at 98% of a core)")
    assert "the sender's ceiling is higher than measured" in v["text"]
    assert "--workers" in v["text"]
    assert "simulator at 30% of a core" in v["text"]
    assert v["text"].endswith("the simulator is not the bottleneck")


def test_verdict_names_the_sender_and_reports_the_simulators_share() -> None:
    v = verdict(levels(simulator=35, sender=100, locust=40, pushsim_run=1), cores=4)
    assert v["bottleneck"] == "sender"
    assert v["text"].startswith("sender at 100% of a core: the sender is the bottleneck")
    assert v["simulator_pct"] == 35
    assert v["simulator_share"] == pytest.approx(35 / 176, abs=1e-3)
    assert "simulator at 35% of a core (20% of the run's CPU)" in v["text"]


def test_verdict_owns_up_when_the_simulator_is_the_bottleneck() -> None:
    v = verdict(levels(simulator=97, sender=100, locust=98), cores=8)
    assert v["bottleneck"] == "simulator"
    assert "the simulator is the bottleneck" in v["text"]
    assert "not the bottleneck" not in v["text"]


def test_verdict_with_workers_names_the_busiest_worker() -> None:
    v = verdict(levels(simulator=20, sender=50, locust_master=5, **{"locust-worker-2": 95}), 8)
    assert v["bottleneck"] == "load generator"
    assert "locust-worker-2 at 95%" in v["text"]
    assert "on another machine" in v["text"]


def test_verdict_full_machine_and_nearly_saturated_and_idle() -> None:
    full = verdict(
        {
            **levels(simulator=60, sender=85, locust=50),
            MACHINE: {"mean": 190, "peak": 195, "samples": 5},
        },
        2,
    )
    assert full["bottleneck"] == "machine"
    assert full["text"].startswith("all 2 cores busy (machine at 195% of 200%")
    near = verdict(
        {
            **levels(simulator=50, sender=82, locust=33),
            MACHINE: {"mean": 150, "peak": 170, "samples": 5},
        },
        2,
    )
    assert near["bottleneck"] == "sender"
    assert near["text"].startswith("sender busiest at 82% of a core")
    idle = verdict(levels(simulator=5, sender=10, locust=3), 2)
    assert idle["bottleneck"] == "none"
    assert "not by CPU" in idle["text"]


def test_verdict_without_samples_says_so() -> None:
    v = verdict({}, 2)
    assert v["bottleneck"] == "unknown" and v["simulator_pct"] is None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sampler_sees_this_process_burn_cpu() -> None:
    sampler = CpuSampler(dict, {"me": os.getpid()}, interval=0.2)
    sampler.sample()
    end = time.monotonic() + 0.3
    n = 0
    while time.monotonic() < end:  # bounded busy loop
        n += 1
    sampler.sample()
    assert n > 0
    assert len(sampler.samples) == 1
    _, pct = sampler.samples[0]
    assert pct["me"] > 5.0  # a busy loop shows up, even on a crowded machine
    assert MACHINE in pct


def test_sampler_without_proc_records_nothing(tmp_path: Path) -> None:
    sampler = CpuSampler(dict, {"me": 1}, proc=tmp_path / "no-proc")
    assert not sampler.available
    sampler.start()
    sampler.sample()
    sampler.stop()
    assert all(not pct for _, pct in sampler.samples)
