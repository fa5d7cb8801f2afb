"""Scenario files: YAML in, a validated :class:`~loadtests.scenario.model.Scenario` out.

Every error names the file, the line and the field, and says what was expected::

    scenarios/spike.yaml:14: load.users: expected a positive integer, got 'many'

``quick:`` holds overrides (deep-merged over the rest) that ``pushsim run --quick`` applies
so that CI can run every scenario in well under a minute.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from loadtests.judge.objectives import CATALOG, Objective
from loadtests.scenario import fleet, live
from loadtests.scenario.check import Check, ScenarioError, show
from loadtests.scenario.model import (
    DeviceBehaviour,
    LoadShape,
    Population,
    Scenario,
    Traffic,
)
from loadtests.scenario.target import target as read_target
from pushsim import yamlfile
from scenarios import bundled, resolve

# what a caller needs; ScenarioError is defined with the field checks that raise it
__all__ = ["ScenarioError", "load", "loads", "validate"]

PROVIDERS = ("apns", "fcm", "webpush")
SHAPES = ("steady", "ramp", "spike")
UNLIMITED = ("unlimited", "max", "no-wait")  # load.rate_per_user: no waits between requests
MAX_BATCH = 500  # traffic.batch: notifications per POST /v1/notifications:batch
MAX_DECLARED = 100_000_000  # population.declared, per provider (the simulator checks free memory)
TOP_LEVEL = (
    "name",
    "description",
    "duration",
    "drain_timeout",
    "seed",
    "population",
    "load",
    "traffic",
    "devices",
    "faults",
    "objectives",
    "target",
    "sender",
    "quick",
)


def _compose(text: str, source: str) -> tuple[Any, dict[str, int]]:
    """Parse YAML and remember the line of every field, keyed by its dotted path."""
    try:
        return yamlfile.load(text)
    except yamlfile.UnbuildableValue as exc:  # seed: 2020-13-45 reads as a date
        raise ScenarioError(source, exc.lineno, exc.path, exc.problem) from exc
    except yaml.YAMLError as exc:
        line, problem = yamlfile.problem(exc)
        raise ScenarioError(source, line, "", f"not valid YAML: {problem}") from exc
    except RecursionError as exc:
        raise ScenarioError(source, None, "", "not valid YAML: nested too deeply") from exc


def _rate(check: Check, value: Any) -> float:
    """``load.rate_per_user``: notifications per second per user, or ``unlimited`` (no waits:
    each user sends its next request as soon as the last one is answered). 0.0 means unlimited."""
    if isinstance(value, str) and value.strip().lower() in UNLIMITED:
        return 0.0
    try:
        return check.number(value, "load.rate_per_user", minimum=0.01)
    except ScenarioError as exc:
        raise check.fail(
            "load.rate_per_user",
            f"expected a number at least 0.01 or 'unlimited', got {show(value)}",
        ) from exc


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def validate(
    data: Any, source: str, lines: dict[str, int] | None = None, *, quick: bool = False
) -> Scenario:
    check = Check(source, lines or {})
    if not isinstance(data, dict):
        raise check.fail("", f"expected a mapping of scenario fields, got {show(data)}")
    top = check.mapping(data, "", TOP_LEVEL)
    if quick and top.get("quick") is not None:
        overrides = check.mapping(
            top["quick"], "quick", tuple(k for k in TOP_LEVEL if k != "quick")
        )
        top = _merge(top, overrides)
        check.lines = {**lines} if lines else {}
        for k, v in (lines or {}).items():
            if k.startswith("quick."):
                check.lines[k[len("quick.") :]] = v
    name = top.get("name", Path(source).stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise check.fail(
            "name", f"expected a name of letters, digits, '-', '_' or '.', got {show(name)}"
        )
    description = top.get("description", "")
    if not isinstance(description, str):
        raise check.fail("description", f"expected text, got {show(description)}")
    duration = check.duration(top.get("duration", "20s"), "duration", minimum=1)
    drain = check.duration(top.get("drain_timeout", "20s"), "drain_timeout", minimum=0)
    seed = check.integer(top.get("seed", 1), "seed", minimum=0, maximum=2**63)

    pop = check.mapping(top.get("population"), "population", ("devices", "users", "declared"))
    devs = check.mapping(pop.get("devices", {"apns": 10}), "population.devices", PROVIDERS)
    devices = {
        p: check.integer(n, f"population.devices.{p}", minimum=0, maximum=100_000)
        for p, n in devs.items()
    }
    if sum(devices.values()) < 1:
        raise check.fail("population.devices", "expected at least one device")
    users = check.integer(
        pop.get("users", sum(devices.values())), "population.users", minimum=1, maximum=1_000_000
    )
    decl = check.mapping(pop.get("declared", {}), "population.declared", PROVIDERS)
    declared = {
        p: check.integer(n, f"population.declared.{p}", minimum=0, maximum=MAX_DECLARED)
        for p, n in decl.items()
    }
    population = Population(devices, users, declared)

    ld = check.mapping(
        top.get("load"),
        "load",
        (
            "shape",
            "users",
            "rate_per_user",
            "spawn_rate",
            "from_users",
            "spike_users",
            "spike_at",
            "spike_for",
        ),
    )
    shape = ld.get("shape", "steady")
    if shape not in SHAPES:
        raise check.fail("load.shape", f"expected one of {', '.join(SHAPES)}, got {show(shape)}")
    lusers = check.integer(ld.get("users", 4), "load.users", minimum=1, maximum=100_000)
    load = LoadShape(
        shape=shape,
        users=lusers,
        rate_per_user=_rate(check, ld.get("rate_per_user", 5)),
        spawn_rate=check.number(
            ld.get("spawn_rate", max(1, lusers)), "load.spawn_rate", minimum=0.1
        ),
        from_users=check.integer(
            ld.get("from_users", 1), "load.from_users", minimum=1, maximum=100_000
        ),
        spike_users=check.integer(
            ld.get("spike_users", lusers), "load.spike_users", minimum=1, maximum=100_000
        ),
        spike_at=check.duration(ld.get("spike_at", 0), "load.spike_at"),
        spike_for=check.duration(ld.get("spike_for", 0), "load.spike_for"),
    )
    if shape == "spike":
        if "spike_users" not in ld or "spike_at" not in ld or "spike_for" not in ld:
            raise check.fail("load", "a spike needs spike_users, spike_at and spike_for")
        if load.spike_at + load.spike_for > duration:
            raise check.fail(
                "load.spike_for", f"the spike ends after the run's duration ({duration:g}s)"
            )

    tr = check.mapping(
        top.get("traffic"),
        "traffic",
        (
            "to",
            "payload",
            "push_type",
            "high_priority",
            "ttl",
            "topics",
            "batch",
            "live_activities",
        ),
    )
    topics = tr.get("topics", ["news"])
    if not isinstance(topics, list) or not all(isinstance(t, str) and t for t in topics):
        raise check.fail("traffic.topics", f"expected a list of topic names, got {show(topics)}")
    traffic = Traffic(
        to=check.weights(
            tr.get("to"), "traffic.to", ("user", "tokens", "topic"), {"user": 0.7, "tokens": 0.3}
        ),
        payload=check.weights(
            tr.get("payload"),
            "traffic.payload",
            ("small", "medium", "large"),
            {"small": 0.7, "medium": 0.25, "large": 0.05},
        ),
        push_type=check.weights(
            tr.get("push_type"),
            "traffic.push_type",
            ("alert", "background"),
            {"alert": 0.9, "background": 0.1},
        ),
        high_priority=check.number(
            tr.get("high_priority", 0.8), "traffic.high_priority", maximum=1
        ),
        ttl=check.integer(tr.get("ttl", 3600), "traffic.ttl", maximum=2_419_200),
        topics=tuple(topics),
        batch=check.integer(tr.get("batch", 1), "traffic.batch", minimum=1, maximum=MAX_BATCH),
        live_activities=live.live_traffic(check, tr.get("live_activities")),
    )

    dv = check.mapping(
        top.get("devices"),
        "devices",
        ("reregister_rotated", "receipts", "feed_poll", *live.USER_KEYS),
    )
    rereg = dv.get("reregister_rotated", True)
    if not isinstance(rereg, bool):
        raise check.fail("devices.reregister_rotated", f"expected true or false, got {show(rereg)}")
    behaviour = DeviceBehaviour(
        reregister_rotated=rereg,
        receipts=check.number(dv.get("receipts", 0.05), "devices.receipts", maximum=1),
        feed_poll_s=check.duration(dv.get("feed_poll", "0.5s"), "devices.feed_poll", minimum=0.05),
        **live.user_behaviour(check, dv),
    )

    sender = fleet.sender_shape(check, top.get("sender"))
    faults, crashes = fleet.faults(check, top.get("faults"), sender, duration)

    obj = check.mapping(top.get("objectives"), "objectives", tuple(CATALOG))
    objectives = []
    for key, value in obj.items():
        kind = CATALOG[key]
        maximum = (
            1.0 if kind.measure == "delivered_ratio" or kind.measure.endswith("_ratio") else None
        )
        req = check.number(value, f"objectives.{key}", maximum=maximum)
        objectives.append(Objective(key, req, check.lines.get(f"objectives.{key}")))

    target = read_target(check, top.get("target"))
    return Scenario(
        name=name,
        description=description,
        source=source,
        duration=duration,
        drain_timeout=drain,
        seed=seed,
        population=population,
        load=load,
        traffic=traffic,
        devices=behaviour,
        faults=faults,
        objectives=tuple(objectives),
        target=target,
        raw=top,
        sender=sender,
        crashes=crashes,
    )


def loads(text: str, source: str = "<scenario>", *, quick: bool = False) -> Scenario:
    data, lines = _compose(text, source)
    return validate(data, source, lines, quick=quick)


def load(name_or_path: str, *, quick: bool = False) -> Scenario:
    path = resolve(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        names = ", ".join(q.stem for q in bundled())
        raise ScenarioError(
            str(name_or_path),
            None,
            "",
            f"no such scenario file or bundled scenario (bundled: {names})",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), None, "", f"cannot read: {exc}") from exc
    return loads(text, str(path), quick=quick)
