"""Scenario files: loading, located validation errors, quick overrides, the library.

`pushsim run --check` and `pushsim scenarios` as commands: tests/e2e/test_scenario_cli.py.
"""

from __future__ import annotations

import pytest
from scenario_samples import GOOD

from loadtests.scenario.load import ScenarioError, load, loads
from scenarios import bundled

LIBRARY = (
    "smoke",
    "apns-outage",
    "fcm-quota",
    "token-churn",
    "webpush-expiry",
    "auth-expiry",
    "spike",
    "mixed-soak",
    "throughput",
)


def error_of(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        loads(text, "my.yaml")
    return info.value


def test_a_good_scenario_loads_with_defaults_filled_in() -> None:
    sc = loads(GOOD, "my.yaml")
    assert sc.name == "demo"
    assert sc.duration == 30.0
    assert sc.population.devices == {"apns": 4, "fcm": 2}
    assert sc.population.total == 6
    assert sc.load.users_at(0, 30) == 2
    assert sc.load.users_at(12, 30) == 10
    assert sc.load.users_at(16, 30) == 2
    assert [(o.name, o.required) for o in sc.objectives] == [
        ("max_lost", 0.0),
        ("min_delivered_ratio", 0.999),
    ]
    assert sc.objectives[0].line == 15
    assert sc.target.notify.path == "/v1/notifications"


def test_quick_overrides_are_merged_only_when_asked() -> None:
    assert loads(GOOD, "my.yaml").duration == 30.0
    assert loads(GOOD, "my.yaml", quick=True).duration == 20.0


def test_an_error_names_the_file_line_field_and_what_was_expected() -> None:
    err = error_of(GOOD.replace("users: 2\n", "users: many\n"))
    assert err.source == "my.yaml"
    assert err.line == 9
    assert err.field == "load.users"
    assert "expected a positive integer" in str(err)
    assert str(err).startswith("my.yaml:9: load.users:")


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (("duration: 30s", "duration: soon"), "duration", "expected a duration"),
        (("shape: spike", "shape: wave"), "load.shape", "expected one of steady, ramp, spike"),
        (("max_lost: 0", "max_lots: 0"), "objectives.max_lots", "unknown field"),
        (
            ("min_delivered_ratio: 0.999", "min_delivered_ratio: 2"),
            "objectives.min_delivered_ratio",
            "from 0 to 1",
        ),
        (("apns: 4", "apns: -1"), "population.devices.apns", "expected an integer"),
        (("apns: 4", "aps: 4"), "population.devices.aps", "unknown field"),
        (("spike_for: 5s", "spike_for: 50s"), "load.spike_for", "ends after the run's duration"),
        (("description: a small run", "descripton: x"), "descripton", "unknown field"),
    ],
)
def test_each_bad_field_is_named(change: tuple[str, str], field: str, words: str) -> None:
    err = error_of(GOOD.replace(*change))
    assert err.field == field
    assert words in err.message
    assert err.line is not None


def test_rate_per_user_unlimited_means_no_waits() -> None:
    sc = loads(GOOD.replace("rate_per_user: 3", "rate_per_user: unlimited"), "s.yaml")
    assert sc.load.rate_per_user == 0.0
    assert sc.load.rate_text() == "unlimited (no waits)"
    assert loads(GOOD, "s.yaml").load.rate_text() == "3/s"
    with pytest.raises(ScenarioError) as err:
        loads(GOOD.replace("rate_per_user: 3", "rate_per_user: 0"), "s.yaml")
    assert "load.rate_per_user: expected a number at least 0.01 or 'unlimited'" in str(err.value)


def test_bad_yaml_reports_the_line() -> None:
    err = error_of("name: x\nload: [unclosed\n")
    assert "not valid YAML" in err.message
    assert err.line is not None


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("name: x\nseed: 2020-13-45\n", 2, "seed", "month must be in 1..12"),
        ("name: x\ntraffic:\n  topics: [news, 2021-02-30]\n", 3, "traffic.topics[1]", "day"),
    ],
)
def test_an_impossible_date_names_the_file_line_and_field(
    text: str, line: int, field: str, words: str
) -> None:
    err = error_of(text)
    assert (err.source, err.line, err.field) == ("my.yaml", line, field)
    assert "reads as a date but is not one" in err.message and words in err.message
    assert str(err).startswith(f"my.yaml:{line}: {field}: ")


def test_a_bad_quick_override_names_its_line() -> None:
    with pytest.raises(ScenarioError) as info:
        loads(GOOD.replace("  duration: 20s", "  duration: never"), "my.yaml", quick=True)
    assert info.value.field == "duration"
    assert info.value.line == 18


def test_faults_are_validated_by_the_fault_plan_parser() -> None:
    text = (
        GOOD
        + "faults:\n  - kind: outage\n    provider: apns\n    start: 5s\n    duration: fortnight\n"
    )
    err = error_of(text)
    assert err.field.startswith("faults[0]")
    assert err.line == 23


def test_a_missing_scenario_lists_the_bundled_ones() -> None:
    with pytest.raises(ScenarioError) as info:
        load("no-such-scenario")
    assert "smoke" in info.value.message


def test_every_bundled_scenario_is_valid_plain_and_quick() -> None:
    paths = bundled()
    assert {p.stem for p in paths} >= set(LIBRARY)  # the library the docs promise
    for path in paths:
        sc = load(str(path))
        quick = load(str(path), quick=True)
        assert sc.name == path.stem
        assert sc.objectives, f"{path} states no objectives"
        if path.stem in LIBRARY:
            assert quick.duration <= 30, f"{path}: --quick must stay short"
