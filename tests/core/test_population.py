"""The virtual population: a million devices in compact state, tokens that map back to them."""

from __future__ import annotations

import json
import random

from pushsim.clock import FakeClock
from simulator.state.devices import DeviceRegistry, TokenState, describe
from simulator.state.export import csv_chunks, docs, docs_json, page
from simulator.state.population import Population, PopulationFull
from simulator.state.records import Inboxes
from simulator.state.tokens import TokenCodec

MILLION = 1_000_000


def registry(seed: int = 7) -> DeviceRegistry:
    return DeviceRegistry(FakeClock(1_700_000_000.0), random.Random(seed))


def forge(token: str) -> str:
    """The same shape, one character off."""
    last = token[-1]
    swap = {"0": "1", "A": "B", "a": "b"}.get(last, "0" if last.isdigit() else "A")
    return token[:-1] + swap


def test_a_million_devices_mint_and_their_tokens_round_trip() -> None:
    reg = registry()
    minted = {p: reg.mint(p, MILLION) for p in ("apns", "fcm")}
    assert len(minted["apns"]) == MILLION and len(reg.devices) == 2 * MILLION
    assert reg.counts()["apns"] == {"live": MILLION, "total": MILLION}
    rng = random.Random(3)
    for provider, run in minted.items():
        for i in rng.sample(range(MILLION), 200):
            dev = run[i]
            found = reg.lookup(provider, dev.token)
            assert found.state is TokenState.VALID and found.device is not None
            assert found.device.id == dev.id and reg.devices[dev.id] == dev
            assert reg.lookup(provider, forge(dev.token)).state is TokenState.UNKNOWN
    apns = minted["apns"]
    assert len({d.token for d in apns[:5000]}) == 5000  # distinct devices, distinct tokens
    # the right shape, never issued: a number past the population, another seed's key
    beyond = reg.codec.encode("apns", 2 * MILLION + 1)
    other = registry(seed=8).mint("apns", 1)[0].token
    for token in (beyond, other, "0" * 64):
        assert reg.lookup("apns", token).state is TokenState.UNKNOWN
    # a token decodes only under its own provider
    assert reg.lookup("fcm", apns[0].token).state is TokenState.UNKNOWN


def test_one_seed_mints_the_same_tokens() -> None:
    a, b = registry(seed=5), registry(seed=5)
    assert [d.token for d in a.mint("fcm", 3)] == [d.token for d in b.mint("fcm", 3)]


def test_uninstall_and_reinstall_kill_only_the_old_token() -> None:
    reg = registry()
    dev = reg.mint("apns", 10)[4]
    old = dev.token
    reg.rotate(dev.id)
    assert dev.token != old and dev.generation == 1
    dead = reg.lookup("apns", old)
    assert dead.state is TokenState.DEAD and dead.reason == "rotated"
    assert dead.died_at_ms == 1_700_000_000_000 and dead.device == dev
    assert reg.lookup("apns", dev.token).state is TokenState.VALID
    # the next generation's token is not valid before it is issued
    assert reg.lookup("apns", reg.codec.encode("apns", dev.number, 2)).state is TokenState.UNKNOWN
    reg.uninstall(dev.id)
    gone = reg.lookup("apns", dev.token)
    assert gone.state is TokenState.DEAD and gone.reason == "uninstalled"
    assert reg.counts()["apns"] == {"live": 9, "total": 10}
    events = reg.feed_since(0)
    assert [e["event"] for e in events] == ["rotated", "uninstalled"]
    assert events[0]["old_token"] == old and events[0]["new_token"] == events[1]["old_token"]


def test_fcm_installation_ids_decode_to_their_device() -> None:
    reg = registry()
    dev = reg.mint("fcm", 3)[1]
    fid = dev.token.partition(":")[0]
    assert len(fid) == 22 and reg.lookup_fid(fid).state is TokenState.VALID
    reg.rotate(dev.id)
    assert reg.lookup_fid(fid).state is TokenState.DEAD
    assert reg.lookup_fid(forge(fid)).state is TokenState.UNKNOWN


def test_webpush_keys_are_derived_the_same_each_time() -> None:
    reg = registry()
    dev = reg.mint("webpush", 2, application_server_key="BKey")[0]
    keys = dev.webpush
    assert keys is not None and keys.application_server_key == "BKey"
    fresh = registry().mint("webpush", 2, application_server_key="BKey")[0].webpush
    assert fresh is not None and (fresh.p256dh, fresh.auth) == (keys.p256dh, keys.auth)
    reg.rotate(dev.id)
    assert dev.webpush is not None and dev.webpush.p256dh != keys.p256dh


def test_reading_a_device_stores_nothing_writing_does() -> None:
    reg = registry()
    devs = reg.mint("fcm", 1000)
    for d in devs:
        assert not d.pending and not d.topics and d.meta.get("platform") is None
    assert not reg.extras.pending and not reg.extras.topics and not reg.extras.meta
    devs[3].topics.add("news")
    devs[3].meta["platform"] = "web"
    devs[3].online = False
    devs[3].pending.append({"n": 1})
    again = reg.devices[devs[3].id]
    assert again.topics == {"news"} and again.meta == {"platform": "web"}
    assert not again.online and again.pending == [{"n": 1}]
    reg.rotate(again.id)  # a reinstall forgets what was pending and the topics
    assert not devs[3].pending and not devs[3].topics


def test_inboxes_are_bounded_per_device_and_in_all() -> None:
    boxes = Inboxes(per_device=3, total=10)
    for n in range(1, 6):
        for k in range(4):
            boxes.add(n, {"k": k})
    assert [e["k"] for e in boxes.of(5)] == [1, 2, 3]
    assert boxes.entries <= 10 and not boxes.of(1)  # the least recently fed went first


def test_delivery_log_reads_back_as_before() -> None:
    reg = registry()
    dev = reg.mint("apns", 2)[1]
    reg.deliver(dev, {"message_id": "m-1", "correlation_id": "c-1"})
    reg.deliver(dev, {"message_id": "m-2", "token": "elsewhere"})
    first, second = reg.deliveries_since(0)
    assert first["seq"] == 1 and first["device_id"] == dev.id and first["token"] == dev.token
    assert first["correlation_id"] == "c-1" and second["token"] == "elsewhere"
    assert reg.deliveries[-1]["message_id"] == "m-2" and reg.delivery_seq == 2
    assert [m["message_id"] for m in dev.inbox] == ["m-1", "m-2"]


def test_pages_and_csv_walk_the_cohorts() -> None:
    reg = registry()
    reg.mint("apns", 5)
    reg.mint("fcm", 2)
    reg.mint("apns", 5)
    reg.uninstall("apns-2")
    first, more = page(reg, "apns", 0, reg.population.size, 4)
    assert [d["id"] for d in first] == ["apns-1", "apns-2", "apns-3", "apns-4"] and more == 4
    assert first[1] == describe(reg.devices["apns-2"], "") and not first[1]["installed"]
    rest, done = page(reg, "apns", 4, reg.population.size, 100)
    assert [d["id"] for d in rest] == [f"apns-{n}" for n in (5, 8, 9, 10, 11, 12)]
    assert done is None
    lines = "".join(csv_chunks(reg, "apns", "")).splitlines()
    assert lines[0] == "id,token,bundle_id,environment" and len(lines) == 1 + 9
    assert lines[1].split(",")[1] == reg.devices["apns-1"].token


def test_more_than_free_memory_is_refused_naming_the_limit() -> None:
    pop = Population()
    room = pop.capacity()
    try:
        pop.add("apns", room + 1, "app")
    except PopulationFull as exc:
        assert f"at most {room} more devices" in str(exc)
    else:
        raise AssertionError("a mint past free memory was accepted")


def test_a_replica_follows_the_population_through_deltas() -> None:
    main = registry()
    run = main.mint("apns", 100)
    mark = (0, 0)
    copy = DeviceRegistry(FakeClock(0.0), random.Random(0), key=main.codec.key)
    mark, delta = main.population.changes_since(mark)
    copy.population.apply(delta)
    assert copy.lookup("apns", run[50].token).state is TokenState.VALID
    old = run[50].token
    main.rotate(run[50].id)
    main.uninstall(run[7].id)
    more = main.mint("apns", 5)
    mark, delta = main.population.changes_since(mark)
    assert len(delta.devices) == 2 and len(delta.cohorts) == 1
    copy.population.apply(delta)
    assert copy.lookup("apns", old).state is TokenState.DEAD
    assert copy.lookup("apns", run[50].token).state is TokenState.VALID
    assert copy.lookup("apns", run[7].token).state is TokenState.DEAD
    assert copy.lookup("apns", more[4].token).state is TokenState.VALID
    assert copy.counts() == main.counts()


def test_codec_rejects_tokens_of_the_wrong_shape() -> None:
    codec = TokenCodec(bytes(32))
    for provider, token in [
        ("apns", "g" * 64),
        ("apns", "ab" * 31),
        ("fcm", "x:APA91b" + "a" * 134),
        ("fcm", "a" * 163),
        ("webpush", "!" * 32),
        ("webpush", "a" * 31),
        ("mqtt", "a" * 32),
    ]:
        assert codec.decode(provider, token) is None


def test_a_page_that_ends_inside_the_last_run_says_there_is_more() -> None:
    reg = registry()
    reg.mint("fcm", 10)
    first, more = page(reg, "fcm", 0, 10, 4)
    assert len(first) == 4 and more == 4
    last, done = page(reg, "fcm", 8, 10, 4)
    assert [d["id"] for d in last] == ["fcm-9", "fcm-10"] and done is None


def test_pages_written_as_json_read_back_as_the_devices_shown() -> None:
    reg = registry()
    reg.mint("apns", 4, app='odd "app" 100%', environment="sandbox")
    reg.mint("fcm", 3)
    reg.mint("webpush", 2)
    reg.uninstall("apns-2")
    reg.devices["apns-3"].online = False
    reg.rotate("fcm-6")
    for cohort, numbers in reg.population.numbers():
        text = docs_json(reg, cohort, numbers, "https://wp.example")
        assert json.loads(f"[{text}]") == docs(reg, cohort, numbers, "https://wp.example")
