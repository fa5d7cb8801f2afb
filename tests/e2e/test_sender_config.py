"""``pushsim sender --config FILE``: an explicit config (YAML or JSON) that mirrors a running
simulator delivers end to end; a provider left out is refused at the API with a 400; bad
configs and damaged simulator state directories get one clear line (file, field, what was
expected) and exit 2, never a traceback."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sender.api.app import make_app
from sender.config.checks import ConfigError
from sender.config.file import from_config_file
from sender.config.simulator_dir import from_simulator_dir
from sender.service import Sender
from simulator.testing.handle import SimulatorHandle, running_simulator

pytestmark = pytest.mark.timeout(90)

PUSHSIM = str(Path(sys.executable).with_name("pushsim"))


@pytest.fixture(scope="module")
def msim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    """One TLS simulator for the module; its state dir sits in ``<tmp>/state``."""
    with running_simulator(tmp_path_factory.mktemp("sender-config") / "state") as handle:
        yield handle


def mirror_config(sim: SimulatorHandle, *, relative_to: Path | None = None) -> dict[str, Any]:
    """A config naming the simulator's endpoints and credential files (relative to
    ``relative_to`` when given, to exercise path resolution from the file's directory)."""
    state = sim.state_dir

    def p(path: Path) -> str:
        return os.path.relpath(path, relative_to) if relative_to is not None else str(path)

    meta = json.loads((state / "apns" / "apns.json").read_text())
    ep = sim.endpoints
    return {
        "apns": {
            "url": ep["apns"],
            "sandbox_url": ep.get("apns_sandbox"),
            "key_file": p(state / "apns" / f"AuthKey_{meta['key_id']}.p8"),
            "key_id": meta["key_id"],
            "team_id": meta["team_id"],
            "topic": meta["bundle_id"],
            "ca_file": p(state / "ca.pem"),
        },
        "fcm": {
            "url": ep["fcm"],
            "service_account_file": p(state / "fcm" / "service-account.json"),
            "ca_file": p(state / "ca.pem"),
        },
        "webpush": {
            "vapid_file": p(state / "webpush" / "vapid.json"),
            "ca_file": p(state / "ca.pem"),
            "allowed_origins": [ep["webpush"]],  # the simulator's push service
        },
    }


def to_yaml(doc: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False)


def target(dev: dict[str, Any]) -> dict[str, Any]:
    if dev["provider"] == "webpush":
        return {"provider": "webpush", "subscription": dev["subscription"]}
    return {"provider": dev["provider"], "token": dev["token"]}


def wait_inboxes(sim: SimulatorHandle, devs: list[dict[str, Any]], corr: str) -> list[str]:
    """Providers whose device has not received ``corr`` within 20 s."""
    deadline = time.monotonic() + 20
    missing = [d["provider"] for d in devs]
    while missing and time.monotonic() < deadline:
        missing = [
            d["provider"]
            for d in devs
            if corr
            not in [
                m.get("correlation_id")
                for m in sim.control("GET", f"/_sim/devices/{d['id']}/inbox")["messages"]
            ]
        ]
        if missing:
            time.sleep(0.05)
    return missing


def post_json(url: str, body: Any) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_config_file_mirroring_a_simulator_delivers_to_every_provider(
    msim: SimulatorHandle, tmp_path: Path
) -> None:
    confdir = msim.state_dir.parent / "conf"
    confdir.mkdir(exist_ok=True)
    doc = mirror_config(msim, relative_to=confdir)
    doc["sender"] = {"db": "run/sender.db", "deadline": 30, "durability": "process"}
    (confdir / "run").mkdir(exist_ok=True)
    conf = confdir / "sender.yaml"
    conf.write_text(to_yaml(doc))
    ready = tmp_path / "ready.json"
    log = (tmp_path / "sender.log").open("w")
    proc = subprocess.Popen(
        [PUSHSIM, "sender", "--config", str(conf), "--ready-file", str(ready)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), (tmp_path / "sender.log").read_text()
        url = json.loads(ready.read_text())["url"]
        devs = [msim.mint(p)[0] for p in ("apns", "fcm", "webpush")]
        status, acc = post_json(
            url + "/v1/notifications",
            {
                "to": {"tokens": [target(d) for d in devs]},
                "notification": {"title": "Hi", "body": "from a config file"},
                "data": {"correlation_id": "conf-1"},
            },
        )
        assert status == 202 and acc["targets"] == 3, acc
        assert wait_inboxes(msim, devs, "conf-1") == []
        assert (confdir / "run" / "sender.db").exists()  # sender.db, relative to the file
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
    assert proc.returncode == 0


async def test_a_provider_left_out_is_refused_with_a_400(
    msim: SimulatorHandle, tmp_path: Path
) -> None:
    doc = mirror_config(msim)
    del doc["fcm"], doc["webpush"]
    conf = tmp_path / "apns-only.json"
    conf.write_text(json.dumps(doc))
    config = from_config_file(conf, db_path=tmp_path / "s.db")
    assert config.enabled == {"apns"}
    apns_dev, fcm_dev, web_dev = (msim.mint(p)[0] for p in ("apns", "fcm", "webpush"))
    sender = Sender(config)
    runner = web.AppRunner(make_app(sender), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1/notifications"
    note = {"notification": {"title": "t", "body": "b"}, "data": {"correlation_id": "only-apns"}}
    try:
        async with aiohttp.ClientSession() as http:
            for to, field, provider in (
                ({"tokens": [target(apns_dev), target(fcm_dev)]}, "to.tokens[1].provider", "fcm"),
                ({"tokens": [target(web_dev)]}, "to.tokens[0].provider", "webpush"),
                ({"topic": "news"}, "to.topic", "fcm"),
            ):
                async with http.post(url, json={"to": to, **note}) as resp:
                    body = await resp.json()
                    assert resp.status == 400, body
                    assert body["field"] == field and provider in body["error"], body
            async with http.post(url, json={"to": {"tokens": [target(apns_dev)]}, **note}) as resp:
                assert resp.status == 202
            assert await asyncio.to_thread(wait_inboxes, msim, [apns_dev], "only-apns") == []
    finally:
        await runner.cleanup()


def test_file_settings_defaults_and_flags(msim: SimulatorHandle, tmp_path: Path) -> None:
    doc = mirror_config(msim)
    del doc["apns"], doc["fcm"]
    # A bare VAPID private key (raw base64url, as web-push libraries print it) and a subject.
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    (tmp_path / "vapid.key").write_text(base64.urlsafe_b64encode(raw).rstrip(b"=").decode())
    doc["webpush"] = {
        "vapid_private_key_file": "vapid.key",
        "subject": "https://example.com/ops",
        "concurrency": 7,
        "rate": 50,
    }
    doc["sender"] = {"deadline": 12.5, "durability": "power", "max_attempts": 3}
    conf = tmp_path / "sender.yaml"
    conf.write_text(to_yaml(doc))
    config = from_config_file(conf)
    assert config.db_path == tmp_path / "sender.db"  # default: beside the file
    assert (config.deadline, config.synchronous, config.max_attempts) == (12.5, "FULL", 3)
    assert config.enabled == {"webpush"} and config.ca_for("webpush") is None  # system trust
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert config.vapid is not None
    assert config.vapid["public_key"] == base64.urlsafe_b64encode(point).rstrip(b"=").decode()
    assert config.vapid["subject"] == "https://example.com/ops"
    lim = config.limits["webpush"]
    assert (lim.concurrency, lim.rate, lim.burst) == (7, 50.0, None)
    flagged = from_config_file(conf, deadline=99.0, synchronous="NORMAL")  # flags win
    assert (flagged.deadline, flagged.synchronous) == (99.0, "NORMAL")
    # The simulator dir and a file that mirrors it build the same provider settings.
    mirrored = from_config_file(_write(tmp_path / "m.yaml", to_yaml(mirror_config(msim))))
    direct = from_simulator_dir(msim.state_dir, tmp_path / "d.db")
    assert mirrored.apns == direct.apns and mirrored.vapid == direct.vapid
    assert mirrored.fcm_service_account == direct.fcm_service_account
    assert mirrored.ca_for("fcm") == str(Path(direct.ca_for("fcm") or "").resolve())
    with pytest.raises(ConfigError, match=r"m\.yaml: apns\.url: required"):
        doc = mirror_config(msim)
        del doc["apns"]["url"]
        from_config_file(_write(tmp_path / "m.yaml", to_yaml(doc)))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@dataclass
class Case:
    name: str
    args: list[str]
    mentions: list[str]  # each must appear in the error line


def bad_config_cases(sim: SimulatorHandle, tmp: Path) -> list[Case]:
    good = mirror_config(sim)
    state = sim.state_dir
    p8 = f"apns/AuthKey_{json.loads((state / 'apns' / 'apns.json').read_text())['key_id']}.p8"

    def conf(name: str, edit: Any) -> list[str]:
        doc = json.loads(json.dumps(good))
        edit(doc)
        path = tmp / name
        path.write_text(json.dumps(doc) if name.endswith(".json") else to_yaml(doc))
        return ["sender", "--config", str(path)]

    def raw(name: str, text: str) -> list[str]:
        (tmp / name).write_text(text)
        return ["sender", "--config", str(tmp / name)]

    garbage = tmp / "garbage.p8"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    rsa_sa = json.loads((state / "fcm" / "service-account.json").read_text())
    del rsa_sa["client_email"]
    (tmp / "sa-no-email.json").write_text(json.dumps(rsa_sa))
    vapid = json.loads((state / "webpush" / "vapid.json").read_text())
    pk = vapid["public_key"]
    vapid["public_key"] = pk[:10] + ("A" if pk[10] != "A" else "B") + pk[11:]
    (tmp / "vapid-mismatch.json").write_text(json.dumps(vapid))

    def put(section: str, key: str, value: Any) -> Any:
        return lambda d: d[section].__setitem__(key, value)

    def drop(section: str, key: str) -> Any:
        return lambda d: d[section].pop(key)

    return [
        Case(
            "missing key file",
            conf("k.yaml", put("apns", "key_file", "x.p8")),
            ["k.yaml: apns.key_file: no such file 'x.p8'"],
        ),
        Case(
            "damaged key file",
            conf("k2.yaml", put("apns", "key_file", str(garbage))),
            ["k2.yaml: apns.key_file:", "garbage.p8", "P-256"],
        ),
        Case(
            "bad team id",
            conf("t.yaml", put("apns", "team_id", "TEAM")),
            ["t.yaml: apns.team_id:", "10-character"],
        ),
        Case("no topic", conf("tp.yaml", drop("apns", "topic")), ["tp.yaml: apns.topic: required"]),
        Case(
            "bad url",
            conf("u.yaml", put("apns", "url", "ftp://x")),
            ["u.yaml: apns.url:", "https://"],
        ),
        Case(
            "url with a path",
            conf("u2.json", put("fcm", "url", "https://fcm.example/v1")),
            ["u2.json: fcm.url:", "no path"],
        ),
        Case(
            "typo in a field",
            conf("ty.yaml", put("apns", "kye_file", "x")),
            ["ty.yaml: apns.kye_file: unknown field"],
        ),
        Case(
            "service account without client_email",
            conf("sa.yaml", put("fcm", "service_account_file", str(tmp / "sa-no-email.json"))),
            ["sa.yaml: fcm.service_account_file:", "client_email"],
        ),
        Case(
            "vapid keys that do not match",
            conf("v.yaml", put("webpush", "vapid_file", str(tmp / "vapid-mismatch.json"))),
            ["v.yaml: webpush.vapid_file:", "public_key", "does not match"],
        ),
        Case(
            "vapid private key file that is not a key",
            conf(
                "v2.yaml",
                lambda d: d.__setitem__(
                    "webpush", {"vapid_private_key_file": str(state / "apns" / "apns.json")}
                ),
            ),
            ["v2.yaml: webpush.vapid_private_key_file:", "P-256"],
        ),
        Case(
            "vapid key without a subject",
            conf(
                "v4.yaml",
                lambda d: d.__setitem__("webpush", {"vapid_private_key_file": str(state / p8)}),
            ),
            ["v4.yaml: webpush.subject: required"],
        ),
        Case(
            "both vapid sources",
            conf("v3.yaml", put("webpush", "vapid_private_key_file", "k.pem")),
            ["v3.yaml: webpush.vapid_file: expected exactly one"],
        ),
        Case(
            "ca file that is not PEM",
            conf("ca.yaml", put("fcm", "ca_file", str(state / "apns" / "apns.json"))),
            ["ca.yaml: fcm.ca_file:", "PEM"],
        ),
        Case(
            "negative deadline",
            conf("dl.yaml", lambda d: d.__setitem__("sender", {"deadline": -1})),
            ["dl.yaml: sender.deadline:"],
        ),
        Case(
            "bad durability",
            conf("du.yaml", lambda d: d.__setitem__("sender", {"durability": "disk"})),
            ["du.yaml: sender.durability:", "process, power"],
        ),
        Case(
            "concurrency not a whole number",
            conf("cc.yaml", put("apns", "concurrency", 2.5)),
            ["cc.yaml: apns.concurrency:", "whole number"],
        ),
        Case(
            "unknown section",
            conf("us.yaml", lambda d: d.__setitem__("apn", {})),
            ["us.yaml: apn: unknown section"],
        ),
        Case(
            "no providers",
            raw("np.yaml", "sender: {deadline: 5}\n"),
            ["np.yaml:", "at least one"],
        ),
        Case("yaml syntax", raw("ys.yaml", "apns: [unclosed\n"), ["ys.yaml:", "line"]),
        Case("json syntax", raw("js.json", "{not json"), ["js.json:", "invalid JSON"]),
        Case("a list", raw("ls.yaml", "- 1\n"), ["ls.yaml:", "expected a mapping"]),
        Case("missing file", ["sender", "--config", str(tmp / "nope.yaml")], ["nope.yaml"]),
        Case(
            "both sources",
            ["sender", "--config", str(tmp / "k.yaml"), "--simulator", str(state)],
            ["--simulator", "--config"],
        ),
    ]


def damaged_simulator_cases(sim: SimulatorHandle, tmp: Path) -> list[Case]:
    meta = json.loads((sim.state_dir / "apns" / "apns.json").read_text())
    p8 = f"apns/AuthKey_{meta['key_id']}.p8"

    def copy(name: str, rel: str, text: str | None) -> list[str]:
        d = tmp / name
        shutil.copytree(sim.state_dir, d, ignore=shutil.ignore_patterns("*.db*", "*.lock"))
        endpoints = json.loads((d / "endpoints.json").read_text())
        endpoints["ca_file"] = str(d / "ca.pem")  # the copy's own files
        (d / "endpoints.json").write_text(json.dumps(endpoints))
        if text is None:
            (d / rel).unlink()
        else:
            (d / rel).write_text(text)
        return ["sender", "--simulator", str(d)]

    return [
        Case("sim p8 missing", copy("s1", p8, None), ["--simulator", "no such file", p8]),
        Case("sim p8 damaged", copy("s2", p8, "garbage"), ["--simulator", p8, "P-256"]),
        Case(
            "sim apns.json damaged",
            copy("s3", "apns/apns.json", "{"),
            ["--simulator", "apns.json", "JSON"],
        ),
        Case(
            "sim apns.json without key_id",
            copy("s4", "apns/apns.json", '{"team_id": "T", "bundle_id": "b"}'),
            ["--simulator", "apns.json", "key_id"],
        ),
        Case(
            "sim service account damaged",
            copy("s5", "fcm/service-account.json", '{"type": "service_account"}'),
            ["--simulator", "service-account.json", "project_id"],
        ),
        Case(
            "sim vapid damaged",
            copy("s6", "webpush/vapid.json", "[]"),
            ["--simulator", "vapid.json", "JSON object"],
        ),
        Case(
            "sim ca missing",
            copy("s7", "ca.pem", None),
            ["--simulator", "ca.pem"],
        ),
    ]


def test_bad_configs_and_damaged_state_dirs_get_one_clear_line(
    msim: SimulatorHandle, tmp_path: Path
) -> None:
    todo = bad_config_cases(msim, tmp_path) + damaged_simulator_cases(msim, tmp_path)
    failures: list[str] = []
    for i in range(0, len(todo), 8):  # eight at a time: bounded load on a small machine
        batch = [
            (
                c,
                subprocess.Popen(
                    [PUSHSIM, *c.args, "--db", str(tmp_path / f"db{i}-{j}")],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    errors="replace",
                ),
            )
            for j, c in enumerate(todo[i : i + 8])
        ]
        for case, proc in batch:
            try:
                _out, err = proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                _out, err = proc.communicate()
                failures.append(f"{case.name}: still running after 15 s (accepted the input)")
                continue
            lines = [ln for ln in err.strip().splitlines() if ln.strip()]
            problem = None
            if proc.returncode != 2:
                problem = f"exit {proc.returncode}"
            elif "Traceback" in err:
                problem = "traceback"
            elif len(lines) != 1 and not (len(lines) >= 2 and lines[0].startswith("usage:")):
                problem = f"{len(lines)} lines"
            elif any(m not in lines[-1] for m in case.mentions):
                problem = f"does not mention {case.mentions}"
            if problem:
                failures.append(f"{case.name}: {problem}: {err[-600:]!r}")
    assert not failures, "\n".join(failures)
