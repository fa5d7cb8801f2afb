"""The reference sender a scenario runs against: its ``sender:`` section and the
``sender_crash`` faults that the harness executes on it.

::

    sender:
      instances: 3          # sender processes behind the Locust users (1-16)
      store: postgresql     # sqlite (the default; one instance) | postgresql

    faults:
      - id: kill-2
        kind: sender_crash  # the harness SIGKILLs an instance; the simulator never sees it
        instance: 2         # which one, 1..instances
        start: 5s           # seconds into the load (or at:)
        duration: 3s        # how long it stays down before it is started again

One instance is down at a time: a crash starts after the previous one's instance is back.
The other kinds in ``faults:`` belong to the simulator and are checked by its fault-plan
parser (:func:`simulator.faults.parse.parse_faults`) with their own positions in the list,
so an error still names ``faults[3].duration`` on the line where it is written.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from loadtests.scenario.check import Check, ScenarioError, show
from loadtests.scenario.model import SenderCrash, SenderShape

STORES = ("sqlite", "postgresql")
MAX_INSTANCES = 16
CRASH_KIND = "sender_crash"
CRASH_FIELDS = ("id", "kind", "instance", "start", "at", "duration")
DEFAULT_DOWN = 2.0
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_INDEX_RE = re.compile(r"^faults\[(\d+)\]")


def sender_shape(check: Check, data: Any) -> SenderShape:
    """``sender:``: how many instances, on which store."""
    d = check.mapping(data, "sender", ("instances", "store"))
    store = d.get("store", "sqlite")
    if store not in STORES:
        raise check.fail("sender.store", f"expected one of {', '.join(STORES)}, got {show(store)}")
    instances = check.integer(
        d.get("instances", 1), "sender.instances", minimum=1, maximum=MAX_INSTANCES
    )
    if instances > 1 and store != "postgresql":
        raise check.fail(
            "sender.instances",
            f"expected 1 with store: {store} (several instances share one PostgreSQL "
            f"database: set store: postgresql), got {instances}",
        )
    return SenderShape(instances=instances, store=store)


def faults(
    check: Check, data: Any, shape: SenderShape, duration: float
) -> tuple[Any, tuple[SenderCrash, ...]]:
    """``faults:`` split in two: the simulator's (validated by its parser, returned as
    written) and the sender crashes (validated here)."""
    if data is None:
        return [], ()
    if not isinstance(data, list):
        if isinstance(data, dict) and data.get("kind") == CRASH_KIND:
            raise check.fail("faults", "expected a list of faults (sender_crash is one of them)")
        return simulator_faults(check, data, {}), ()
    crash_at = [i for i, item in enumerate(data) if _is_crash(item)]
    keep = {i: j for j, i in enumerate(k for k in range(len(data)) if k not in crash_at)}
    sim = simulator_faults(check, [data[i] for i in keep], keep)
    taken = {str(data[i].get("id")) for i in keep if isinstance(data[i], dict)}
    crashes = [_crash(check, data[i], f"faults[{i}]", shape, duration, taken) for i in crash_at]
    _one_at_a_time(check, crashes, crash_at)
    return (sim if sim else []), tuple(sorted(crashes, key=lambda c: c.start))


def _is_crash(item: Any) -> bool:
    return isinstance(item, dict) and item.get("kind") == CRASH_KIND


def simulator_faults(check: Check, data: Any, renumbered: dict[int, int]) -> Any:
    """Validate the simulator's faults with its own parser; ``renumbered`` maps each item's
    index in the scenario's list to its index in ``data`` (errors name the scenario's)."""
    try:
        from simulator.faults.parse import parse_faults
        from simulator.faults.spec import FaultSpecError
    except ImportError:  # a simulator without a fault plan: pass the section through
        if not isinstance(data, (list, dict)):
            raise check.fail("faults", f"expected a list of faults, got {show(data)}") from None
        return data
    back = {j: i for i, j in renumbered.items()}
    lines = {_renumber(k, renumbered): v for k, v in check.lines.items()} if renumbered else None
    try:
        parse_faults(data, check.source, lines=lines or check.lines, prefix="faults")
    except FaultSpecError as exc:
        field = _renumber(exc.field, back) if back else exc.field
        line = exc.line if exc.line is not None else check.lines.get(field)
        raise ScenarioError(check.source, line, field, exc.message) from exc
    return data


def _renumber(path: str, index: dict[int, int]) -> str:
    """``faults[3].start`` -> ``faults[1].start`` when ``index`` maps 3 to 1; a path under
    an item ``index`` leaves out gets a key no field has."""
    m = _INDEX_RE.match(path)
    if m is None:
        return path
    new = index.get(int(m.group(1)))
    return f"faults[{new}]{path[m.end() :]}" if new is not None else f"~{path}"


def _crash(
    check: Check,
    item: dict[str, Any],
    path: str,
    shape: SenderShape,
    duration: float,
    taken: set[str],
) -> SenderCrash:
    check.mapping(item, path, CRASH_FIELDS)
    crash_id = item.get("id", f"sender-crash-{path[len('faults[') : -1]}")
    if not isinstance(crash_id, str) or not _ID_RE.match(crash_id):
        raise check.fail(
            f"{path}.id", f"expected 1-64 letters, digits or _.:- , got {show(crash_id)}"
        )
    if crash_id in taken:
        raise check.fail(f"{path}.id", f"expected a unique id, {crash_id!r} is used twice")
    taken.add(crash_id)
    instance = check.integer(
        item.get("instance", 1), f"{path}.instance", minimum=1, maximum=shape.instances
    )
    if "start" in item and "at" in item:
        raise check.fail(f"{path}.at", "expected start or at, not both")
    key = "at" if "at" in item else "start"
    if key not in item:
        raise check.fail(path, "a sender_crash needs start (seconds into the load)")
    start = check.duration(item[key], f"{path}.{key}")
    if start >= duration:
        raise check.fail(
            f"{path}.{key}", f"expected a time before the run's end ({duration:g}s), got {start:g}s"
        )
    down = check.duration(item.get("duration", DEFAULT_DOWN), f"{path}.duration", minimum=0.1)
    return SenderCrash(crash_id, instance, start, down)


def _one_at_a_time(check: Check, crashes: list[SenderCrash], where: list[int]) -> None:
    order = sorted(range(len(crashes)), key=lambda k: crashes[k].start)
    for before, after in itertools.pairwise(order):
        a, b = crashes[before], crashes[after]
        if b.start < a.end:
            key = "at" if f"faults[{where[after]}].at" in check.lines else "start"
            raise check.fail(
                f"faults[{where[after]}].{key}",
                f"expected a start at or after {a.end:g}s: instance {a.instance} "
                f"({a.id}) is down until then, and one instance is down at a time",
            )
