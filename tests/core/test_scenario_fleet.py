"""Scenario files: the ``sender:`` section, ``sender_crash`` faults and ``traffic.batch``."""

from __future__ import annotations

import pytest

from loadtests.scenario.load import ScenarioError, loads
from loadtests.scenario.model import SenderCrash, SenderShape

HEAD = "name: fleet\nduration: 20s\n"
FLEET = "sender: {instances: 3, store: postgresql}\n"
CRASHES = """\
faults:
  - id: slow
    kind: latency
    provider: apns
    start: 1s
    duration: 2s
    delay: 10ms
  - id: kill-a
    kind: sender_crash
    instance: 2
    start: 4s
    duration: 3s
  - {id: kill-b, kind: sender_crash, instance: 2, at: 10s, duration: 2s}
  - id: burst
    kind: errors
    provider: fcm
    start: 2s
    duration: 1s
    probability: 0.1
"""


def error_of(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        loads(text, "my.yaml")
    return info.value


def test_one_sqlite_instance_by_default() -> None:
    sc = loads(HEAD, "my.yaml")
    assert sc.sender == SenderShape(1, "sqlite")
    assert sc.crashes == ()
    assert sc.traffic.batch == 1


def test_crashes_are_the_harness_s_and_the_rest_the_simulator_s() -> None:
    sc = loads(HEAD + FLEET + CRASHES, "my.yaml")
    assert sc.sender == SenderShape(3, "postgresql")
    assert sc.crashes == (SenderCrash("kill-a", 2, 4.0, 3.0), SenderCrash("kill-b", 2, 10.0, 2.0))
    assert [f["id"] for f in sc.faults] == ["slow", "burst"]


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (HEAD + "sender: {instances: 3}\n", 3, "sender.instances", "set store: postgresql"),
        (HEAD + "sender:\n  store: mysql\n", 4, "sender.store", "sqlite, postgresql"),
        (HEAD + "sender:\n  instances: 99\n", 4, "sender.instances", "up to 16"),
        (HEAD + "sender:\n  replicas: 2\n", 4, "sender.replicas", "unknown field"),
        (HEAD + "traffic:\n  batch: 501\n", 4, "traffic.batch", "up to 500"),
        # the simulator's fault after a crash keeps its own position and line
        (
            HEAD + FLEET + CRASHES.replace("probability: 0.1", "probability: lots"),
            22,
            "faults[3].probability",
            "",
        ),
        (HEAD + FLEET + CRASHES.replace("instance: 2\n", "instance: 4\n"), 13, "", "up to 3"),
        (HEAD + FLEET + CRASHES.replace("at: 10s", "at: 6s"), 16, "faults[2].at", "at or after 7s"),
        (HEAD + FLEET + CRASHES.replace("start: 4s", "start: 25s"), 14, "", "before the run's"),
        (HEAD + FLEET + CRASHES.replace("id: kill-b", "id: slow"), 16, "faults[2].id", "unique"),
        (
            HEAD + FLEET + CRASHES.replace("    instance: 2\n", "    signal: 9\n", 1),
            13,
            "",
            "unknown field",
        ),
    ],
)
def test_each_bad_fleet_field_is_named(text: str, line: int, field: str, words: str) -> None:
    err = error_of(text)
    assert err.line == line, str(err)
    if field:
        assert err.field == field, str(err)
    assert words in err.message
    assert str(err).startswith(f"my.yaml:{line}: ")
