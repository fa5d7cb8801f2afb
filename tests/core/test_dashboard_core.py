"""The dashboard's pure parts: the tap's outcome reading, rates and percentiles from counters
(injected clock), the board's snapshot and per-tick differences, the guard, presets, progress."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pushsim.clock import FakeClock
from simulator.dashboard import presets
from simulator.dashboard.board import Board, Sample, apply_update, changed
from simulator.dashboard.guard import allowed_hosts, check, sse_event
from simulator.dashboard.meter import LATENCY_BOUNDS, Meter, ResponseTap, bucket_of, outcome_of
from simulator.dashboard.progress import (
    Objective,
    ProgressError,
    RunProgress,
    progress_document,
    running_measures,
    validate,
    valued,
)
from simulator.dashboard.rates import Reading, percentiles, rates, read, status_class
from simulator.faults import parse
from simulator.faults.parse import parse_faults
from simulator.wire import (
    Action,
    ConnectionInfo,
    Delay,
    GoAway,
    Hang,
    Request,
    ResetStream,
    Respond,
)

APNS_PATH = "/3/device/" + "ab" * 32


def _request(path: str) -> Request:
    conn = ConnectionInfo(1, "apns", "2", True, None, 0.0)
    return Request("POST", path, [], b"", conn, 1)


class _Fixed:
    """A handler answering every request with one action (a stand-in core, no sockets)."""

    def __init__(self, action: Action, clock: FakeClock, takes: float = 0.0) -> None:
        self.action = action
        self.clock = clock
        self.takes = takes

    def handle(self, request: Request) -> Action:
        self.clock.advance(self.takes)
        return self.action


# -- the tap ------------------------------------------------------------------------------


def test_outcome_reads_status_reason_and_delay_per_provider() -> None:
    apns = Respond(410, (), b'{"reason":"Unregistered","timestamp":1}')
    out = outcome_of("apns", Delay(0.2, Delay(0.05, apns)))
    assert (out.status, out.reason, out.delay) == ("410", "Unregistered", pytest.approx(0.25))
    fcm = Respond(
        404,
        (),
        json.dumps(
            {"error": {"status": "NOT_FOUND", "details": [{"errorCode": "UNREGISTERED"}]}}
        ).encode(),
    )
    assert outcome_of("fcm", fcm).reason == "UNREGISTERED"
    assert outcome_of("fcm", Respond(503, (), b'{"error":{"status":"UNAVAILABLE"}}')).reason == (
        "UNAVAILABLE"
    )
    assert outcome_of("webpush", Respond(503, (), b"Service Unavailable")).reason == ""
    assert outcome_of("apns", Respond(200)).status == "200"
    assert outcome_of("apns", Respond(400, (), b"not json")).reason == ""


def test_outcome_of_answers_without_a_status() -> None:
    assert outcome_of("apns", ResetStream()).status == "reset"
    assert outcome_of("apns", Hang()).status == "hang"
    assert outcome_of("apns", GoAway()).status == "goaway"
    answered = GoAway(response=Respond(503, (), b'{"reason":"Shutdown"}'))
    assert (outcome_of("apns", answered).status, outcome_of("apns", answered).reason) == (
        "503",
        "Shutdown",
    )


def test_tap_counts_sends_only_and_changes_nothing() -> None:
    clock = FakeClock()
    meter = Meter()
    answer = Delay(0.3, Respond(503, (), b'{"reason":"ServiceUnavailable"}'))
    tap = ResponseTap("apns_sandbox", _Fixed(answer, clock, takes=0.002), meter, clock)
    assert tap.handle(_request(APNS_PATH)) is answer
    tap.handle(_request("/health"))  # not a push send: not counted
    m = meter.providers["apns"]
    assert m.counts == {("503", "ServiceUnavailable"): 1}
    assert m.latency[bucket_of(0.302)] == 1 and sum(m.latency) == 1


def test_tap_gives_a_hang_no_latency() -> None:
    clock = FakeClock()
    meter = Meter()
    ResponseTap("apns", _Fixed(Hang(), clock), meter, clock).handle(_request(APNS_PATH))
    assert meter.providers["apns"].counts == {("hang", ""): 1}
    assert sum(meter.providers["apns"].latency) == 0


def test_latency_buckets() -> None:
    assert bucket_of(0.0) == 0
    assert bucket_of(LATENCY_BOUNDS[3]) == 3
    assert bucket_of(1e9) == len(LATENCY_BOUNDS)


# -- rates and percentiles ---------------------------------------------------------------------


def test_rates_from_two_readings() -> None:
    r0 = Reading(10.0, {"apns": {("200", ""): 100, ("503", "ServiceUnavailable"): 5}})
    r1 = Reading(12.0, {"apns": {("200", ""): 300, ("503", "ServiceUnavailable"): 25}})
    got = rates(r0, r1)["apns"]
    assert got["total"] == 110.0
    assert got["status"] == {"200": 100.0, "503": 10.0}
    assert got["reason"] == {"200": 100.0, "503 ServiceUnavailable": 10.0}


def test_rates_without_an_earlier_reading_are_zero() -> None:
    r1 = Reading(12.0, {"fcm": {("200", ""): 300}})
    assert rates(None, r1)["fcm"] == {"total": 0.0, "status": {}, "reason": {}}
    assert rates(r1, r1)["fcm"]["total"] == 0.0  # no time between


def test_a_counter_new_since_the_last_reading_counts_from_zero() -> None:
    r0 = Reading(0.0, {})
    r1 = Reading(1.0, {"webpush": {("201", ""): 7}})
    assert rates(r0, r1)["webpush"]["status"] == {"201": 7.0}


def test_percentiles_interpolate_inside_buckets_and_use_differences() -> None:
    n = len(LATENCY_BOUNDS) + 1
    cur = [0] * n
    cur[bucket_of(0.004)] = 100  # the (2 ms, 5 ms] bucket
    got = percentiles(cur)
    assert got is not None
    assert 2.0 < got["p50"] <= 5.0 and got["p50"] < got["p99"] <= 5.0
    assert percentiles(cur, cur) is None  # nothing new since the earlier reading
    later = list(cur)
    later[bucket_of(0.8)] += 100  # (500 ms, 1 s]
    since = percentiles(later, cur)
    assert since is not None and since["p50"] > 500.0


def test_read_copies_the_counters() -> None:
    meter = Meter()
    meter.of("apns").add("200", "", 0.001)
    reading = read(meter, 5.0)
    meter.of("apns").add("200", "", 0.001)
    assert reading.counts["apns"][("200", "")] == 1 and reading.at == 5.0


def test_status_class() -> None:
    assert [status_class(s) for s in ("200", "429", "reset")] == ["2xx", "4xx", "reset"]


# -- the board --------------------------------------------------------------------------------


def _sample(at: float, ok: int, unavailable: int = 0, **extra: Any) -> Sample:
    counts = {("200", ""): ok}
    if unavailable:
        counts[("503", "ServiceUnavailable")] = unavailable
    lat = [0] * (len(LATENCY_BOUNDS) + 1)
    lat[bucket_of(0.001)] = ok + unavailable
    return Sample(
        reading=Reading(at, {"apns": counts}, {"apns": tuple(lat)}),
        run_time=at,
        wall=1_700_000_000.0 + at,
        connections={"apns": {"connections": 2, "h2": 2, "h11": 0, "streams": 3}},
        **extra,
    )


def test_board_update_carries_the_point_and_only_changed_sections() -> None:
    board = Board()
    first = board.step(_sample(0.0, 0, faults=[]))
    assert "connections" in first and "faults" in first and first["point"]["t"] == 0.0
    second = board.step(_sample(1.0, 50, faults=[]))
    assert "faults" not in second and "connections" not in second
    assert second["totals"] == {"apns": {"200": 50, "total": 50}}
    apns = second["point"]["providers"]["apns"]
    assert apns["total"] == 50.0 and apns["streams"] == 3 and apns["latency_ms"]["p50"] > 0
    third = board.step(_sample(2.0, 90, 20, faults=[{"id": "f1", "state": "active"}]))
    assert third["faults"] == [{"id": "f1", "state": "active"}]
    assert third["point"]["providers"]["apns"]["status"] == {"200": 40.0, "503": 20.0}


def test_a_page_that_applies_updates_ends_with_the_boards_snapshot() -> None:
    board = Board(history=3)
    board.step(_sample(0.0, 0))
    page: dict[str, Any] = json.loads(json.dumps(board.snapshot()))
    for i in range(1, 6):
        apply_update(page, json.loads(json.dumps(board.step(_sample(float(i), 10 * i)))), 3)
    assert page == json.loads(json.dumps(board.snapshot()))
    assert len(page["series"]) == 3


def test_latency_window_drops_old_readings() -> None:
    board = Board(latency_window=2.0)
    for i in range(6):
        board.step(_sample(float(i), 10 * i))
    assert board.readings[0].at >= 2.0


def test_changed() -> None:
    assert changed({"a": 1, "b": [1]}, {"a": 1, "b": [2], "c": None}) == {"b": [2], "c": None}


# -- the guard --------------------------------------------------------------------------------

HOSTS = allowed_hosts("127.0.0.1", 8443)
TOKEN = "s3cret"
JSON = {"host": "127.0.0.1:8443", "content-type": "application/json"}


def test_guard_host_header() -> None:
    assert check("GET", "/", {"host": "127.0.0.1:8443"}, {}, hosts=HOSTS, token=TOKEN) is None
    assert check("GET", "/", {"host": "localhost:8443"}, {}, hosts=HOSTS, token=TOKEN) is None
    for bad in ("evil.example:8443", "127.0.0.1:9999", ""):
        refusal = check("GET", "/", {"host": bad}, {}, hosts=HOSTS, token=TOKEN)
        assert refusal is not None and refusal.status == 403 and "Host" in refusal.message
    assert "[::1]:80" in allowed_hosts("::1", 80)


def test_guard_token_on_api_calls() -> None:
    ok = {**JSON, "x-pushsim-token": TOKEN}
    assert check("POST", "/api/faults", ok, {}, hosts=HOSTS, token=TOKEN) is None
    assert check("GET", "/api/events", JSON, {"token": TOKEN}, hosts=HOSTS, token=TOKEN) is None
    for headers, query in ((JSON, {}), ({**JSON, "x-pushsim-token": "nope"}, {})):
        refusal = check("POST", "/api/faults", headers, query, hosts=HOSTS, token=TOKEN)
        assert refusal is not None and refusal.status == 403 and "token" in refusal.message


def test_guard_wants_json_on_changing_calls() -> None:
    form = {"host": "127.0.0.1:8443", "x-pushsim-token": TOKEN, "content-type": "text/plain"}
    refusal = check("POST", "/api/faults", form, {}, hosts=HOSTS, token=TOKEN)
    assert refusal is not None and refusal.status == 415
    assert check("GET", "/api/vocabulary", form, {}, hosts=HOSTS, token=TOKEN) is None
    charset = {**JSON, "content-type": "application/json; charset=utf-8", "x-pushsim-token": TOKEN}
    assert check("DELETE", "/api/faults", charset, {}, hosts=HOSTS, token=TOKEN) is None


def test_sse_event() -> None:
    assert sse_event("update", '{"a":1}', 7) == b'event: update\nid: 7\ndata: {"a":1}\n\n'


# -- presets and the form ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
@pytest.mark.parametrize("provider", ["apns", "fcm", "webpush"])
def test_every_preset_is_a_valid_fault(name: str, provider: str) -> None:
    (spec,) = parse_faults([presets.preset(name, provider, 10)], "test", anchor="now")
    assert spec.provider == provider and spec.end == 10.0


def test_the_form_offers_exactly_the_vocabularys_fields() -> None:
    common = {name for name, _t, _o in presets.COMMON_FIELDS}
    # the parser's own tables (the one home of the vocabulary)
    assert common <= parse._COMMON
    for kind, own in parse._OWN.items():
        assert {name for name, _t, _o in presets.KIND_FIELDS[kind]} == own
    vocab = presets.vocabulary()
    assert vocab["kinds"] == list(parse._OWN) and set(vocab["presets"]) == set(presets.PRESETS)


# -- progress ----------------------------------------------------------------------------------


def test_progress_document_round_trip() -> None:
    doc = progress_document(
        "smoke",
        "load",
        12.0,
        30.0,
        [
            Objective("min_throughput_per_s", ">=", 5, 20.0, "/s"),
            Objective("max_lost", "<=", 0, None),
        ],
        sent=240,
        delivered=236,
    )
    board = RunProgress(FakeClock(100.0))
    kept = board.post(doc)
    assert kept["received_at"] == 100.0 and kept["sent"] == 240
    assert [o["ok"] for o in kept["objectives"]] == [True, None]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "progress"),
        ({}, "scenario"),
        ({"scenario": "s", "phase": "lunch"}, "phase"),
        ({"scenario": "s", "sent": "many"}, "sent"),
        (
            {"scenario": "s", "objectives": [{"name": "x", "op": "==", "bound": 1}]},
            "objectives[0].op",
        ),
        (
            {"scenario": "s", "objectives": [{"name": "x", "op": ">=", "bound": "1"}]},
            "objectives[0].bound",
        ),
    ],
)
def test_progress_errors_name_the_field(doc: Any, field: str) -> None:
    with pytest.raises(ProgressError) as info:
        validate(doc, 0.0)
    assert info.value.field == field


def test_running_measures() -> None:
    assert running_measures(10.0, 200, 190) == {"throughput_per_s": 20.0, "delivered_ratio": 0.95}
    assert running_measures(0.0, 0, 0) == {}


def test_valued_objectives_take_what_is_known() -> None:
    got = valued(
        [
            ("min_throughput_per_s", ">=", 5.0, "/s", "throughput_per_s"),
            ("max_lost", "<=", 0, "", "lost"),
        ],
        {"throughput_per_s": 20.0},
    )
    assert [(o.name, o.value) for o in got] == [("min_throughput_per_s", 20.0), ("max_lost", None)]
