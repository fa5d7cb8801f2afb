"""Running a scenario end to end: simulator, sender, population, Locust, ground truth.

``run(scenario, options)`` returns a :class:`RunResult` with the measures, the verdicts
and the paths it wrote. Every child process is stopped on the way out, also on Ctrl-C.
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from loadtests.judge.cpu import CpuSampler
from loadtests.locust import config as locust_config
from loadtests.run import (
    HarnessError,
    faults,
    fleet,
    hosts,
    judging,
    population,
    processes,
    truth,
)
from loadtests.run.client import Client
from loadtests.run.options import RunOptions, RunResult
from loadtests.run.processes import ProcessGroup
from loadtests.run.progress import Progress
from loadtests.run.store import store_url
from loadtests.run.watch import Watch
from loadtests.scenario.model import Scenario
from simulator.netns.target import TargetCommand

__all__ = ["Run", "RunOptions", "RunResult", "default_out", "run"]


class Run:
    """One run, in order: start the parts, mint and register the population, arm the
    faults, drive the load, drain, read the ground truth back and judge it."""

    def __init__(self, scenario: Scenario, options: RunOptions, procs: ProcessGroup) -> None:
        self.sc = scenario
        self.opt = options
        self.procs = procs
        self.out = options.out
        self.progress = Progress(options.progress)
        self.endpoints: dict[str, str] = {}
        self.seed = options.seed if options.seed is not None else scenario.seed
        self._client: Client | None = None
        self.metric_samples: list[tuple[float, dict[str, float]]] = []
        self.info: dict[str, Any] = {}
        self.cpu = CpuSampler(self.running_children, {"pushsim run": os.getpid()})
        self.fleet: fleet.SenderFleet | None = None  # the reference sender, when started here
        self.hosts = options.hosts  # each part on a host of its own (pushsim run --hosts)

    def address(self, name: str) -> str:
        """Where part ``name`` listens: its host's address on the link, else loopback."""
        return self.hosts.address(name) if self.hosts is not None else "127.0.0.1"

    def running_children(self) -> dict[str, int]:
        """The run's child processes still running, by name (each leads its process group)."""
        return {
            name: proc.pid
            for name, proc in list(self.procs.children.items())
            if proc.poll() is None
        }

    @property
    def client(self) -> Client:
        assert self._client is not None
        return self._client

    def write_effective_scenario(self) -> Path:
        """``OUT/scenario.yaml``, the scenario as run; the file the simulator reads its fault
        plan from (without the harness's own sender_crash faults, which it does not know)."""
        path = self.out / "scenario.yaml"
        raw = dict(self.sc.raw)
        raw.pop("quick", None)
        raw["seed"] = self.seed
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        if not self.sc.crashes:
            return path
        for_simulator = self.out / "simulator-scenario.yaml"
        raw["faults"] = self.sc.faults
        for_simulator.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        return for_simulator

    async def start_parts(self, scenario_file: Path) -> None:
        """The simulator and the sender: ours, started here, or the ones given."""
        if self.opt.simulator_dir is not None:
            self.endpoints = processes.existing_simulator(self.opt.simulator_dir)
            sim_dir = self.opt.simulator_dir
        else:
            if self.hosts is not None:
                state = self.out / "simulator"
                hosts.serve_on(state, self.address("simulator"), self.seed)
            self.endpoints, sim_dir = await processes.start_simulator(
                self.procs,
                self.out,
                seed=self.seed,
                scenario_file=scenario_file if self.sc.faults else None,
                startup_s=self.opt.startup_timeout,
                real_hosts=self.opt.target_cmd is not None,
                dashboard=self.opt.dashboard,
                host=self.address("simulator"),
            )
        self.info["simulator_dir"] = str(sim_dir)
        if "dashboard" in self.endpoints:
            ep = self.endpoints
            url = f"{ep['dashboard']}/?token={ep.get('dashboard_token', '')}"
            self.progress.say(f"pushsim run {self.sc.name}: dashboard at {url}")
        self.client.control = self.endpoints["control"]
        if self.opt.target and self.opt.target_cmd:
            command = TargetCommand(sim_dir, self.endpoints, self.opt.target_cmd, self.opt.target)
            self.client.sender = await command.start(self.procs, "sender", self.out / "sender.log")
        elif self.opt.target:
            self.client.sender = self.opt.target.rstrip("/")
        else:
            await self.start_fleet(str(sim_dir))
        await self.wait_sender_healthy()

    async def start_fleet(self, sim_dir: str) -> None:
        """The reference sender's instances, on the store the scenario (or --store) names."""
        shape = self.sc.sender
        link = str(hosts.SUBNET) if self.hosts is not None else None
        pg_host = self.address("postgres") if shape.store == "postgresql" else "127.0.0.1"
        store = await store_url(
            self.procs, self.out, shape, self.opt.store, host=pg_host, clients=link
        )
        self.fleet = fleet.SenderFleet(
            self.procs, self.out, sim_dir, shape.instances, store, self.opt.startup_timeout
        )
        self.fleet.bind = {m.name: self.address(m.name) for m in self.fleet.members}
        urls = await self.fleet.start()
        self.client.sender, self.client.senders = urls[0], urls
        self.client.carried = self.fleet.carried
        self.info["sender_instances"] = urls
        self.info["store"] = fleet.redacted(store) if store else "sqlite"

    async def wait_sender_healthy(self) -> None:
        path = self.sc.target.health
        if not path:
            return
        deadline = time.monotonic() + self.opt.startup_timeout
        while time.monotonic() < deadline:
            if await self.client.try_json(self.client.sender + path, 2) is not None:
                return
            await asyncio.sleep(0.1)
        raise HarnessError(f"the sender at {self.client.sender} does not answer {path}")

    async def main(self) -> RunResult:
        sc = self.sc
        scenario_file = self.write_effective_scenario()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            self._client = client = Client(session, metrics_path=sc.target.metrics)
            self.progress.say(
                f"pushsim run {sc.name}: starting the simulator and the sender "
                f"(output in {self.out.absolute()}/)"
            )
            await self.start_parts(scenario_file)
            self.watch = Watch(
                client, sc, self.out, self.progress, self.info, self.endpoints, self.metric_samples
            )
            since = await truth.marks(client)
            self.info["deliveries_before"] = since.deliveries_before
            declared = await population.declare(client, sc)
            if declared:
                self.progress.say(
                    f"pushsim run {sc.name}: declared "
                    + ", ".join(f"{n:,} {p}" for p, n in declared.items())
                    + " devices in the simulator"
                )
            key = population.vapid_public_key(Path(self.info["simulator_dir"]))
            users = await population.mint(client, sc, key)
            await population.register(client, sc, users)
            ids = population.device_ids(users)
            self.progress.say(
                f"pushsim run {sc.name}: {len(ids)} devices for {len(users)} users registered "
                f"with {client.sender}; load {sc.load.shape} for {sc.duration:g}s"
            )
            topic_devices = await population.subscribe_topics(client, sc, users, self.progress.say)
            config = locust_config.write(
                self.out / "locust-config.json",
                sc,
                users=users,
                topic_devices=topic_devices,
                run_id=f"{sc.name}{int(time.time()) % 100000}",
                seed=self.seed,
                control=client.control,
                log_dir=self.out / "requests",
                senders=client.senders,
            )
            metrics_start = await client.sender_metrics()
            self.info.update(await faults.arm(client, sc, post=self.opt.simulator_dir is not None))
            self.cpu.start()
            try:
                load_started, load_ended = await self.drive_load(config)
                self.progress.done()
                await self.watch.drain()
                self.progress.done()
            finally:
                self.cpu.stop()
            ended = time.time()
            metrics_end = await client.sender_metrics()
            if metrics_end is not None:
                self.metric_samples.append((ended, metrics_end))
            window = truth.LoadWindow(load_started, load_ended, ended)
            gt = await truth.collect(
                client,
                sc,
                self.out,
                since,
                ids,
                window,
                (metrics_start, metrics_end),
                self.metric_samples,
            )
            windows = await faults.timeline(client)
            if self.hosts is not None:  # what crossed each host's interface
                self.info["hosts"] = {h.role: h.address for h in self.hosts.hosts}
                self.info["link_traffic"] = await asyncio.to_thread(hosts.traffic, self.hosts)
            await faults.clear_posted(client, self.info.get("faults_posted") or [])
        judged = judging.judge_run(sc, gt, self.cpu)
        self.info.update(
            sender=client.sender,
            endpoints=self.endpoints,
            devices=len(ids),
            users=len(users),
            load_started_at=load_started,
            load_ended_at=load_ended,
            ended_at=ended,
            quick=self.opt.quick,
            workers=self.opt.workers,
            seed=self.seed,
            target=self.opt.target,
        )
        return RunResult(
            sc,
            self.out,
            judged.measures,
            judged.verdicts,
            judged.series,
            faults.on_load_axis(windows + (self.fleet.windows if self.fleet else []), load_started),
            self.info,
            judged.cpu,
        )

    # -- the load ----------------------------------------------------------------------

    async def drive_load(self, config: Path) -> tuple[float, float]:
        """Run Locust to its end (bounded), showing progress; when the load started and ended."""
        main = processes.start_locust(
            self.procs,
            self.out,
            host=self.client.sender,
            config=config,
            duration=self.sc.duration,
            workers=self.opt.workers,
            bind=self.address("locust"),
        )
        started_mono = time.monotonic()
        started = time.time()
        deadline = started_mono + self.sc.duration + 30 + (30 if self.opt.workers else 0)
        crashes = self.start_crashes(started_mono)
        try:
            while self.procs.alive(main) and time.monotonic() < deadline:
                await asyncio.sleep(1.0)
                el = time.monotonic() - started_mono
                users = self.sc.load.users_at(el, self.sc.duration)
                self.progress.show(await self.watch.status_line(started_mono, users))
                death = self.fleet.death() if self.fleet is not None else None
                if death is not None:
                    raise HarnessError(death)
                if crashes is not None and crashes.done():
                    crashes.result()  # a restart that failed ends the run here
            if crashes is not None:  # an instance still down comes back before the drain
                await asyncio.wait_for(crashes, self.opt.startup_timeout + 30)
        finally:
            if crashes is not None and not crashes.done():
                crashes.cancel()
        if self.procs.alive(main):
            self.progress.say("pushsim run: Locust overran its run time; stopping it")
        self.procs.stop(main, grace=10)
        for name in list(self.procs.children):
            if name.startswith("locust-worker"):
                self.procs.stop(name)
        ended = time.time()
        rc = self.procs.children[main].returncode
        self.info["locust_exit"] = rc
        if rc not in (0, 1, -15, None) and not (self.out / "requests").exists():
            raise HarnessError(
                processes.died(f"Locust failed (exit {rc})", self.out / "locust.log")
            )
        return started, ended

    def start_crashes(self, load_started: float) -> asyncio.Task[None] | None:
        """The scenario's sender_crash faults, executed while the load runs."""
        if self.fleet is None or not self.sc.crashes:
            return None
        run = self.fleet.run_crashes(self.sc.crashes, load_started, self.client.instance_metrics)
        return asyncio.create_task(run)


def run(scenario: Scenario, options: RunOptions) -> RunResult:
    options.out.mkdir(parents=True, exist_ok=True)
    requests_dir = options.out / "requests"
    if requests_dir.exists():
        shutil.rmtree(requests_dir)
    # an out directory used before: the last run's ready file, endpoints and outbox would be
    # taken for this run's (a dead sender's URL, a dead simulator's ports, old notifications)
    for stale in ("sender.ready", "sender.db", "sender.db-wal", "sender.db-shm"):
        (options.out / stale).unlink(missing_ok=True)
    (options.out / "simulator" / "endpoints.json").unlink(missing_ok=True)
    with ProcessGroup(options.hosts.prefix if options.hosts is not None else None) as procs:
        runner = Run(scenario, options, procs)
        return asyncio.run(runner.main())


def default_out(scenario: Scenario) -> Path:
    """``out/<scenario>-<YYYYMMDD-HHMMSS>-<NNN>`` under the current directory (NNN: the last
    three digits of the process id, so two runs started in one second do not share one)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("out") / f"{scenario.name}-{stamp}-{os.getpid() % 1000:03d}"
