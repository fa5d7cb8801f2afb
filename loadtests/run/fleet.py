"""The run's reference sender: one instance or several on one store, killed and restarted
by the scenario's ``sender_crash`` faults.

One instance is the child ``sender`` (log ``sender.log``) on ``OUT/sender.db`` (SQLite), as
it always was. Several are ``sender-1`` .. ``sender-N`` (``sender-N.log``) sharing one
PostgreSQL database (``--store URL``). A crash SIGKILLs the instance's process group --
after reading its counters, so the run's totals keep what it had counted -- and starts it
again on the same port after the fault's duration, so the Locust users' URLs stay valid.
Each crash is recorded as a fault window (kind ``sender_crash``) beside the simulator's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadtests.run import processes
from loadtests.run.processes import ProcessGroup
from loadtests.scenario.model import SenderCrash

Metrics = Callable[[str], Any]  # an instance's URL -> an awaitable of its metrics or None


@dataclass
class Instance:
    name: str  # the child's name in the ProcessGroup
    url: str = ""
    port: int = 0
    down: bool = False  # killed by a sender_crash and not yet back


@dataclass
class SenderFleet:
    procs: ProcessGroup
    out: Path
    simulator_dir: str
    instances: int
    store: str | None  # --store URL for every instance; None: SQLite at OUT/sender.db
    startup_s: float
    members: list[Instance] = field(default_factory=list)
    windows: list[dict[str, Any]] = field(default_factory=list)  # the crashes, as they ran
    carried: dict[str, float] = field(default_factory=dict)  # killed instances' counters
    bind: dict[str, str] = field(default_factory=dict)  # instance -> its address (else loopback)

    def __post_init__(self) -> None:
        if not self.members:
            names = ["sender"] if self.instances == 1 else [
                f"sender-{i + 1}" for i in range(self.instances)
            ]  # fmt: skip
            self.members = [Instance(n) for n in names]

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.members]

    def argv_store(self) -> list[str]:
        if self.store is None:
            return ["--db", str(self.out / "sender.db")]
        return ["--store", self.store]

    async def start(self) -> list[str]:
        """Start every instance (each on a free port); their URLs once all are up."""
        await asyncio.gather(*(self._start(m) for m in self.members))
        return self.urls

    async def _start(self, member: Instance) -> None:
        member.url = await processes.start_sender(
            self.procs,
            self.out,
            simulator_dir=self.simulator_dir,
            startup_s=self.startup_s,
            name=member.name,
            port=member.port,
            store=self.argv_store(),
            host=self.bind.get(member.name, "127.0.0.1"),
        )
        member.port = urlsplit(member.url).port or 0
        member.down = False

    def death(self) -> str | None:
        """What went wrong when an instance died that no crash killed; None while all run."""
        for m in self.members:
            if not m.down and not self.procs.alive(m.name):
                return processes.died(f"{m.name} died during the run", self.out / f"{m.name}.log")
        return None

    async def crash(self, c: SenderCrash, metrics: Metrics) -> None:
        """Execute one ``sender_crash``: read the instance's counters, SIGKILL it, wait out
        the fault's duration, start it again on its port; record the window."""
        member = self.members[c.instance - 1]
        last = await metrics(member.url)
        member.down = True
        killed_at = time.time()
        await asyncio.to_thread(self.procs.kill, member.name)
        carry(self.carried, last)
        window: dict[str, Any] = {
            "kind": "sender_crash",
            "provider": "sender",
            "variant": f"instance {c.instance}",
            "id": c.id,
            "start": killed_at,
            "end": killed_at + c.down,
            "absolute": True,
            "count": 1,
        }
        self.windows.append(window)
        await asyncio.sleep(max(0.0, killed_at + c.down - time.time()))
        window["end"] = time.time()
        await self._start(member)
        window["answering_at"] = time.time()

    async def run_crashes(
        self, crashes: tuple[SenderCrash, ...], load_started: float, metrics: Metrics
    ) -> None:
        """Each crash at its time in the load (seconds after ``load_started``, monotonic)."""
        for c in crashes:
            await asyncio.sleep(max(0.0, load_started + c.start - time.monotonic()))
            await self.crash(c, metrics)


def carry(carried: dict[str, float], metrics: Mapping[str, float] | None) -> None:
    """Add a killed instance's counters (``*_total``) to what the fleet carries: they start
    again from zero when it restarts."""
    for name, value in (metrics or {}).items():
        if _counter(name):
            carried[name] = carried.get(name, 0.0) + value


def combine(
    answers: list[Mapping[str, float] | None], carried: Mapping[str, float]
) -> dict[str, float] | None:
    """The fleet's metrics: counters summed over the instances that answered plus what the
    killed ones had counted; a gauge (queue depth) is the largest any instance reports, since
    instances on one database may each report the shared queue. None when none answered."""
    got = [a for a in answers if a is not None]
    if not got:
        return None
    out: dict[str, float] = dict(carried)
    for answer in got:
        for name, value in answer.items():
            if _counter(name):
                out[name] = out.get(name, 0.0) + value
            else:
                out[name] = max(out.get(name, value), value)
    return out


def _counter(name: str) -> bool:
    return name.endswith("_total") or "_total{" in name


def check_store_url(url: str) -> str | None:
    """Why ``--store URL`` cannot be used (None: it can): a PostgreSQL URL on loopback or a
    local socket directory, as every part of a run stays on this machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        return f"--store: expected a postgresql:// URL, got {url!r}"
    host = parts.hostname or ""
    if host and host != "localhost" and not host.startswith("127.") and host != "::1":
        return f"--store: pushsim only uses a database on loopback (127.0.0.0/8, ::1), got {host!r}"
    if not parts.path.strip("/"):
        return f"--store: expected a database name in the URL, got {url!r}"
    return None


def redacted(url: str) -> str:
    """A store URL fit for the report: any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
