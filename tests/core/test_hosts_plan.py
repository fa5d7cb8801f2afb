"""``pushsim run --hosts`` planned without making anything: the hosts, their addresses, the
``ip`` commands, and the harness's own command line inside."""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

from loadtests.run import hosts, onhosts


def test_each_part_has_a_host_and_an_address_on_the_link() -> None:
    parts = hosts.roles(instances=3, postgres=True, workers=2)
    assert parts == [
        "harness", "simulator", "postgres", "sender-1", "sender-2", "sender-3",
        "locust", "locust-worker-1", "locust-worker-2",
    ]  # fmt: skip
    plan = hosts.plan("42", parts)
    assert plan.link == "pushsim-42-link"
    assert plan.address("sender-2") == "10.77.0.11"
    assert plan.address("locust-master") == plan.address("locust") == "10.77.0.50"
    assert plan.address("locust-worker-2") == "10.77.0.52"
    assert plan.prefix("postgres") == ["ip", "netns", "exec", "pushsim-42-postgres"]
    addresses = [ipaddress.ip_address(h.address) for h in plan.hosts]
    assert len(set(addresses)) == len(addresses) and all(a in hosts.SUBNET for a in addresses)
    assert hosts.roles(1, False, 0) == ["harness", "simulator", "sender", "locust"]


def test_the_link_has_no_way_off_it_and_everything_is_deleted() -> None:
    plan = hosts.plan("7", hosts.roles(1, False, 0))
    setup = hosts.setup_commands(plan)
    flat = [" ".join(c) for c in setup]
    assert not any(" route " in c or "default" in c for c in flat)  # only the link's /24
    assert not any(c[:3] == ["ip", "link", "add"] for c in setup)  # nothing in our namespace
    assert "ip -n pushsim-7-sender addr add 10.77.0.10/24 dev eth0" in flat
    deleted = {c[-1] for c in hosts.teardown_commands(plan)}
    made = {c[-1] for c in setup if c[:3] == ["ip", "netns", "add"]}
    assert deleted == made == {plan.link, *(h.netns for h in plan.hosts)}


def test_the_plan_reads_back_and_the_inner_harness_gets_the_flags(tmp_path: Path) -> None:
    plan = hosts.plan("9", hosts.roles(2, True, 1))
    assert hosts.Plan.read(plan.write(tmp_path / "hosts.json")) == plan
    args = argparse.Namespace(
        scenario="smoke", workers=1, seed=None, quick=True, no_progress=False, hosts=True
    )
    argv = onhosts.inner_argv(args, tmp_path, tmp_path / "hosts.json")
    assert argv[1:] == [
        "-m", "pushsim", "run", "smoke", "--out", str(tmp_path), "--workers", "1", "--quick",
        "--hosts-plan", str(tmp_path / "hosts.json"),
    ]  # fmt: skip
