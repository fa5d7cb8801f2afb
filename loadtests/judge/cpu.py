"""Where the time went: CPU time of each process of a run, and which one limited it.

Once a second :class:`CpuSampler` reads ``/proc/<pid>/stat`` (utime + stime) of every
process of the run -- the simulator, the sender, each Locust process, ``pushsim run``
itself -- summing each child's whole process group (a child runs in its own session, so
anything it starts counts as its own). The pure parts -- :func:`parse_stat`,
:func:`cpu_series`, :func:`busy_levels` and :func:`verdict` -- are unit-tested without
``/proc``. Where ``/proc`` is missing (macOS, Windows) the sampler records nothing and
the report says so instead of guessing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
SATURATED = 90.0  # % of one core: a single-threaded process at this level is the limit
MACHINE_SATURATED = 90.0  # % of all cores


@dataclass(frozen=True, slots=True)
class Stat:
    """The fields of ``/proc/<pid>/stat`` pushsim reads."""

    pid: int
    pgrp: int
    ticks: int  # utime + stime, in clock ticks


def parse_stat(text: str) -> Stat | None:
    """Parse one ``/proc/<pid>/stat`` line; None when it is not one.

    The command name (field 2) is in parentheses and may itself hold spaces and
    parentheses, so the fields after it are counted from the *last* ``)``.
    """
    open_at = text.find("(")
    close_at = text.rfind(")")
    if open_at < 0 or close_at < open_at:
        return None
    try:
        pid = int(text[:open_at].strip())
        rest = text[close_at + 1 :].split()
        # rest[0] is field 3 (state): pgrp is field 5, utime 14, stime 15
        pgrp = int(rest[2])
        utime, stime = int(rest[11]), int(rest[12])
    except (ValueError, IndexError):
        return None
    if utime < 0 or stime < 0:
        return None
    return Stat(pid, pgrp, utime + stime)


MACHINE = "machine total"  # every process on the machine, in % of one core (200% = 2 cores)


def parse_cpu_line(text: str) -> tuple[int, int] | None:
    """``(busy, total)`` ticks from ``/proc/stat``'s aggregate ``cpu`` line (idle and iowait
    are not busy); None when there is none."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            try:
                vals = [int(v) for v in fields[1:9]]
            except ValueError:
                return None
            if len(vals) < 4:
                return None
            idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
            total = sum(vals)
            return total - idle, total
    return None


def clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100


def read_all_stats(proc: Path = PROC) -> list[Stat]:
    """Every process's stat line; [] where there is no ``/proc``."""
    out: list[Stat] = []
    try:
        entries = list(os.scandir(proc))
    except OSError:
        return out
    for e in entries:
        if not e.name.isdigit():
            continue
        try:
            text = (proc / e.name / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # exited between the listing and the read
        st = parse_stat(text)
        if st is not None:
            out.append(st)
    return out


def group_ticks(stats: list[Stat], groups: dict[str, int], own: dict[str, int]) -> dict[str, int]:
    """CPU ticks per name: ``groups`` names a process group leader (all its members count),
    ``own`` a single process."""
    by_pgrp: dict[int, int] = {}
    by_pid: dict[int, int] = {}
    for st in stats:
        by_pgrp[st.pgrp] = by_pgrp.get(st.pgrp, 0) + st.ticks
        by_pid[st.pid] = st.ticks
    out = {name: by_pgrp[pg] for name, pg in groups.items() if pg in by_pgrp}
    out.update({name: by_pid[pid] for name, pid in own.items() if pid in by_pid})
    return out


class CpuSampler:
    """Samples CPU % (of one core) of each named process once per ``interval`` in a thread.

    ``groups()`` is asked at every sample so that processes started later (Locust) are
    picked up. ``samples`` holds ``(wall time, {name: % of one core})``.
    """

    def __init__(
        self,
        groups: Callable[[], dict[str, int]],
        own: dict[str, int] | None = None,
        *,
        interval: float = 1.0,
        proc: Path = PROC,
    ) -> None:
        self.groups = groups
        self.own = dict(own or {})
        self.interval = interval
        self.proc = proc
        self.hz = clock_ticks()
        self.cores = os.cpu_count() or 1
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.available = (proc / "self" / "stat").exists()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prev: tuple[float, dict[str, int]] | None = None
        self._prev_machine: tuple[int, int] | None = None

    def machine_pct(self) -> float | None:
        try:
            text = (self.proc / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            return None
        cur = parse_cpu_line(text)
        prev, self._prev_machine = self._prev_machine, cur
        if cur is None or prev is None or cur[1] <= prev[1]:
            return None
        return round((cur[0] - prev[0]) / (cur[1] - prev[1]) * 100.0 * self.cores, 1)

    def sample(self) -> None:
        now_mono, now = time.monotonic(), time.time()
        ticks = group_ticks(read_all_stats(self.proc), self.groups(), self.own)
        machine = self.machine_pct()
        prev = self._prev
        self._prev = (now_mono, ticks)
        if prev is None:
            return
        dt = now_mono - prev[0]
        if dt <= 0:
            return
        pct = {
            name: round(max(0, t - prev[1][name]) / self.hz / dt * 100.0, 1)
            for name, t in ticks.items()
            if name in prev[1]
        }
        if machine is not None:
            pct[MACHINE] = machine
        self.samples.append((now, pct))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception:  # sampling must never break a run
                continue

    def start(self) -> None:
        if not self.available or self._thread is not None:
            return
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="pushsim-cpu", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


# -- pure: series, levels, verdict -----------------------------------------------------------


def role(name: str) -> str:
    """simulator | sender | locust | harness, from a process's name in the run (each of
    several sender instances, ``sender-2``, is a sender)."""
    if name.startswith("locust"):
        return "locust"
    return "sender" if name.startswith("sender-") else name


def cpu_series(
    samples: list[tuple[float, dict[str, float]]], t0: float, n: int, bucket_s: float = 1.0
) -> dict[str, list[float | None]]:
    """Per-process CPU % on the report's time axis (``n`` buckets from ``t0``); a sample
    stands for the second before it, so it lands in the bucket where that second began."""
    out: dict[str, list[float | None]] = {}
    for t, pct in samples:
        i = int((t - 0.5 * bucket_s - t0) // bucket_s)
        if not 0 <= i < n:
            continue
        for name, v in pct.items():
            row = out.setdefault(name, [None] * n)
            row[i] = v if row[i] is None else max(float(row[i] or 0.0), v)
    return out


def busy_levels(
    samples: list[tuple[float, dict[str, float]]], start: float, end: float
) -> dict[str, dict[str, float]]:
    """Per process, over the load window: ``mean`` and ``peak`` CPU % of one core (peak:
    the mean of its busiest quarter of seconds, so a ramp's top counts, one noisy second
    does not)."""
    per: dict[str, list[float]] = {}
    for t, pct in samples:
        if start < t <= end + 1.0:
            for name, v in pct.items():
                per.setdefault(name, []).append(v)
    out: dict[str, dict[str, float]] = {}
    for name, vals in per.items():
        top = sorted(vals, reverse=True)[: max(1, len(vals) // 4)]
        out[name] = {
            "mean": round(sum(vals) / len(vals), 1),
            "peak": round(sum(top) / len(top), 1),
            "samples": float(len(vals)),
        }
    return out


def _pct(v: float) -> str:
    return f"{v:.0f}%"


NEARLY = 70.0  # % of one core: the busiest process, short of saturation, is the likely limit


def verdict(levels: dict[str, dict[str, float]], cores: int) -> dict[str, Any]:
    """Name the likely bottleneck from the processes' busy levels (pure).

    Each part of a run is single-threaded, so a process near 100% of one core is the
    limit; if none is but the machine's cores are all busy, the parts compete for CPU.
    Returns ``{"bottleneck", "text", "simulator_pct", "simulator_share", "machine_pct"}``
    (share: the simulator's part of the CPU the run's processes used; machine: every
    process on the machine, in % of one core).
    """
    machine = levels.get(MACHINE, {}).get("peak")
    procs = {n: lv for n, lv in levels.items() if n != MACHINE}
    if not procs:
        return {
            "bottleneck": "unknown",
            "text": "no CPU samples (needs Linux /proc): the bottleneck is not known",
            "simulator_pct": None,
            "simulator_share": None,
            "machine_pct": machine,
        }
    peak = {name: lv["peak"] for name, lv in procs.items()}
    mean_total = sum(lv["mean"] for lv in procs.values())
    sim = peak.get("simulator")
    sim_mean = procs.get("simulator", {}).get("mean")
    share = round(sim_mean / mean_total, 3) if sim_mean is not None and mean_total > 0 else None
    sender = max((v for n, v in peak.items() if role(n) == "sender"), default=None)
    locust = {n: v for n, v in peak.items() if role(n) == "locust"}
    busiest_locust = max(locust.items(), key=lambda kv: kv[1]) if locust else None
    if machine is None:
        machine = sum(peak.values())
    machine_full = machine / max(1, cores) >= MACHINE_SATURATED
    machine_txt = f"machine at {_pct(machine)} of {cores * 100}%"
    sim_txt = (
        f"simulator at {_pct(sim)} of a core"
        + (f" ({share * 100:.0f}% of the run's CPU)" if share is not None else "")
        if sim is not None
        else "simulator not sampled (not started by this run)"
    )
    busiest, busiest_pct = max(peak.items(), key=lambda kv: kv[1])
    if sim is not None and sim >= SATURATED:
        kind = "simulator"
        head = (
            f"simulator saturated ({sim_txt}): the simulator is the bottleneck; "
            "the sender's ceiling is higher than measured"
        )
    elif busiest_locust is not None and busiest_locust[1] >= SATURATED:
        kind = "load generator"
        workers = [n for n in locust if n != "locust-master"]
        who = "Locust" if len(locust) == 1 else busiest_locust[0]
        hint = (
            "run with --workers N or Locust workers on another machine"
            if len(workers) <= 1
            else "add Locust workers on another machine"
        )
        head = (
            f"load generator saturated ({who} at {_pct(busiest_locust[1])} of a core): "
            f"the sender's ceiling is higher than measured; {hint}"
        )
    elif sender is not None and sender >= SATURATED:
        kind = "sender"
        head = f"sender at {_pct(sender)} of a core: the sender is the bottleneck"
    elif machine_full:
        kind = "machine"
        head = (
            f"all {cores} cores busy ({machine_txt}): the parts compete for CPU, so "
            "the ceiling measured is this machine's; run Locust workers on another machine "
            "to see the sender's own"
        )
    elif busiest_pct >= NEARLY:
        kind = role(busiest)
        head = (
            f"{busiest} busiest at {_pct(busiest_pct)} of a core ({machine_txt}): "
            f"the {role(busiest)} is the likely limit"
        )
    else:
        kind = "none"
        head = (
            f"no process saturated ({machine_txt}): throughput was set by the "
            "offered load or by waiting, not by CPU"
        )
    text = (
        head if kind == "simulator" else f"{head}; {sim_txt}: the simulator is not the bottleneck"
    )
    return {
        "bottleneck": kind,
        "text": text,
        "simulator_pct": sim,
        "simulator_share": share,
        "machine_pct": machine,
    }


def _top(peak: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(peak.items(), key=lambda kv: -kv[1])[:4]
