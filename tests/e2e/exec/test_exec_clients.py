"""``pushsim exec``: real clients, unchanged, reach the simulator under the real hostnames.

Each client runs inside ``pushsim exec`` exactly as in production (no base URL, no CA
argument, no attribute set): firebase-admin for Python, aioapns' stock production client,
pywebpush, node web-push and curl. What reached each device is read from outside, through
the control API of the simulator the test started. Namespaces are needed: the module skips,
saying why, where ``unshare`` cannot make one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from nodejs import NODE_DIR, require_node

from simulator.netns.namespace import unavailable
from simulator.testing.handle import SimulatorHandle, apns_provider_token, running_simulator

WHY = unavailable()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"pushsim exec: {WHY}")

ROOT = Path(__file__).resolve().parents[3]
EXEC_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path_factory.mktemp("exec") / "state", real_hosts=True) as h:
        yield h


def pushsim_exec(state_dir: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pushsim", "exec", "--state-dir", str(state_dir), "--", *command],
        capture_output=True,
        text=True,
        timeout=EXEC_TIMEOUT,
        cwd=ROOT,
    )


def python_inside(sim: SimulatorHandle, tmp: Path, source: str, *args: str) -> str:
    tmp.mkdir(parents=True, exist_ok=True)
    script = tmp / "client.py"
    script.write_text(textwrap.dedent(source))
    done = pushsim_exec(sim.state_dir, sys.executable, str(script), *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def inbox(sim: SimulatorHandle, dev: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")[
        "messages"
    ]
    return messages


def test_firebase_admin_unchanged(sim: SimulatorHandle, tmp_path: Path) -> None:
    dev = sim.mint("fcm")[0]
    out = python_inside(
        sim,
        tmp_path,
        """
        import sys
        import firebase_admin
        from firebase_admin import credentials, messaging

        firebase_admin.initialize_app(credentials.Certificate(sys.argv[1]))
        message = messaging.Message(
            token=sys.argv[2],
            notification=messaging.Notification(title="Hello", body="from firebase-admin"),
            data={"correlation_id": "fa-1"},
        )
        print(messaging.send(message))
        """,
        str(sim.state_dir / "fcm" / "service-account.json"),
        dev["token"],
    )
    assert out.strip().startswith("projects/")
    (msg,) = inbox(sim, dev)
    assert msg["correlation_id"] == "fa-1"


def test_aioapns_stock_production_client(sim: SimulatorHandle, tmp_path: Path) -> None:
    dev = sim.mint("apns")[0]
    out = python_inside(
        sim,
        tmp_path,
        """
        import asyncio, json, sys
        from pathlib import Path
        from aioapns import APNs, NotificationRequest

        async def main() -> None:
            meta = json.loads(Path(sys.argv[1], "apns.json").read_text())
            key = Path(sys.argv[1], f"AuthKey_{meta['key_id']}.p8").read_text()
            apns = APNs(key=key, key_id=meta["key_id"], team_id=meta["team_id"],
                        topic=meta["bundle_id"], use_sandbox=False)
            request = NotificationRequest(
                device_token=sys.argv[2],
                message={"aps": {"alert": "Hello"}, "correlation_id": "aio-1"},
            )
            result = await apns.send_notification(request)
            print(result.is_successful, result.status, result.description)

        asyncio.run(main())
        """,
        str(sim.state_dir / "apns"),
        dev["token"],
    )
    assert out.split()[:2] == ["True", "200"], out
    (msg,) = inbox(sim, dev)
    assert msg["correlation_id"] == "aio-1"


def test_pywebpush_to_a_real_looking_endpoint(sim: SimulatorHandle, tmp_path: Path) -> None:
    dev = sim.mint("webpush")[0]
    endpoint = dev["subscription"]["endpoint"]
    assert endpoint.startswith("https://updates.push.services.mozilla.com/wpush/v2/")
    (tmp_path / "sub.json").write_text(json.dumps(dev["subscription"]))
    out = python_inside(
        sim,
        tmp_path,
        """
        import json, sys
        from pywebpush import webpush

        vapid = json.load(open(sys.argv[2]))
        key_file = sys.argv[3]
        open(key_file, "w").write(vapid["private_key"])
        response = webpush(
            json.load(open(sys.argv[1])),
            json.dumps({"title": "Hello", "correlation_id": "pwp-1"}),
            vapid_private_key=key_file,
            vapid_claims={"sub": vapid["subject"]},
            ttl=60,
        )
        print(response.status_code)
        """,
        str(tmp_path / "sub.json"),
        str(sim.state_dir / "webpush" / "vapid.json"),
        str(tmp_path / "vapid.pem"),
    )
    assert out.strip() == "201"
    (msg,) = inbox(sim, dev)
    assert msg["correlation_id"] == "pwp-1"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_node_web_push(sim: SimulatorHandle, web_push_installed: None, tmp_path: Path) -> None:
    node = require_node()
    meta = json.loads((sim.state_dir / "webpush" / "vapid.json").read_text())
    key = serialization.load_pem_private_key(meta["private_key"].encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    sim.call(lambda: setattr(sim.sim.webpush_config, "flavour", "google"))
    try:
        dev = sim.mint("webpush")[0]
    finally:
        sim.call(lambda: setattr(sim.sim.webpush_config, "flavour", "mozilla"))
    assert dev["subscription"]["endpoint"].startswith("https://fcm.googleapis.com/fcm/send/")
    request = {
        "subscription": dev["subscription"],
        "payload": json.dumps({"title": "Hello from node", "correlation_id": "node-1"}),
        "vapid": {
            "subject": meta["subject"],
            "publicKey": meta["public_key"],
            "privateKey": _b64url(key.private_numbers().private_value.to_bytes(32, "big")),
        },
        "options": {"TTL": 60},
    }
    req_file = tmp_path / "request.json"
    req_file.write_text(json.dumps(request))
    done = pushsim_exec(sim.state_dir, node, str(NODE_DIR / "send.js"), str(req_file))
    assert done.returncode == 0, done.stderr
    res = json.loads(done.stdout.strip().splitlines()[-1])
    assert res["ok"] and res["statusCode"] == 201, res
    (msg,) = inbox(sim, dev)
    assert msg["correlation_id"] == "node-1"


def test_curl_to_apns_over_http2(sim: SimulatorHandle) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not on PATH")
    dev = sim.mint("apns")[0]
    meta = json.loads((sim.state_dir / "apns" / "apns.json").read_text())
    done = pushsim_exec(
        sim.state_dir,
        "curl", "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
        "-H", f"authorization: bearer {apns_provider_token(sim.state_dir)}",
        "-H", f"apns-topic: {meta['bundle_id']}",
        "-d", json.dumps({"aps": {"alert": "Hello"}, "correlation_id": "curl-1"}),
        f"https://api.push.apple.com/3/device/{dev['token']}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "200 2"
    (msg,) = inbox(sim, dev)
    assert msg["correlation_id"] == "curl-1"


def test_names_not_mapped_do_not_resolve_and_nothing_routes_out(sim: SimulatorHandle) -> None:
    out = python_inside(
        sim,
        sim.state_dir / "exec",
        """
        import socket
        for name in ("example.com", "push.example.org"):
            try:
                socket.getaddrinfo(name, 443)
                print(name, "resolved")
            except socket.gaierror:
                print(name, "unresolved")
        # no route off the machine, read from the kernel (nothing is sent to find out)
        print([name for _, name in socket.if_nameindex()])
        with open("/proc/net/route") as f:
            print(len(f.read().splitlines()) - 1, "ipv4 routes")
        print(socket.gethostbyname("api.push.apple.com"))
        """,
    )
    lines = out.splitlines()
    assert lines[:2] == ["example.com unresolved", "push.example.org unresolved"], out
    assert lines[2] == "['lo']", out  # loopback is the only interface
    assert lines[3] == "0 ipv4 routes", out  # and the IPv4 table is empty (lo's are in 'local')
    assert lines[4] == "127.0.0.1"


def test_exec_starts_a_simulator_for_the_command_and_returns_its_exit_code(
    tmp_path: Path,
) -> None:
    state = tmp_path / "own"
    script = textwrap.dedent(
        """
        import json, os, sys, urllib.request
        state = os.environ["PUSHSIM_STATE_DIR"]
        control = json.load(open(os.path.join(state, "endpoints.json")))["control"]
        req = urllib.request.Request(control + "/_sim/devices", method="POST",
                                     data=b'{"provider": "webpush", "count": 1}',
                                     headers={"content-type": "application/json"})
        dev = json.load(urllib.request.urlopen(req, timeout=10))["devices"][0]
        print(dev["subscription"]["endpoint"])
        sys.exit(7)
        """
    )
    done = pushsim_exec(state, sys.executable, "-c", script)
    assert done.returncode == 7, done.stderr
    assert done.stdout.startswith("https://updates.push.services.mozilla.com/wpush/v2/")
    assert not (state / "endpoints.json").exists()  # stopped with the command


def test_hosts_prints_the_mapping_and_the_environment(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pushsim", "hosts", "--state-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HTTPS_PROXY": ""},
    )
    assert done.returncode == 0, done.stderr
    assert "127.0.0.1\tapi.push.apple.com" in done.stdout
    assert "127.0.0.1\tfcm.googleapis.com" in done.stdout
    assert "export SSL_CERT_FILE=" in done.stdout
    bundle = tmp_path / "s" / "exec" / "ca-bundle.pem"
    assert (tmp_path / "s" / "ca.pem").read_text().strip() in bundle.read_text()


def test_a_jvm_trusts_the_ca_through_java_tool_options(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    java = shutil.which("java")
    if java is None:
        pytest.skip("no java on PATH")
    probe = tmp_path / "Probe.java"
    probe.write_text(
        textwrap.dedent(
            """
            import java.net.URI;
            import java.net.http.HttpClient;
            import java.net.http.HttpRequest;
            import java.net.http.HttpResponse;

            public class Probe {
                public static void main(String[] args) throws Exception {
                    HttpRequest req = HttpRequest.newBuilder(URI.create(args[0]))
                        .POST(HttpRequest.BodyPublishers.ofString("{}")).build();
                    HttpResponse<String> res = HttpClient.newHttpClient()
                        .send(req, HttpResponse.BodyHandlers.ofString());
                    System.out.println(res.statusCode() + " " + res.version());
                }
            }
            """
        )
    )
    url = "https://fcm.googleapis.com/v1/projects/pushsim-project/messages:send"
    done = pushsim_exec(sim.state_dir, java, str(probe), url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "401 HTTP_2"  # TLS verified against the truststore; no token


def test_a_state_dir_too_long_for_a_socket_address_still_works(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "state"
    assert len(str(deep / "frontdoor.sock")) > 108
    with running_simulator(deep) as h:
        done = pushsim_exec(
            deep, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
            "https://updates.push.services.mozilla.com/wpush/v2/unknown", "-H", "TTL: 60",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == "404"
        assert h.sim.stats.snapshot()["providers"]["webpush"]["total"] == 1


def test_a_listener_refusing_connections_drops_them_at_the_front_door_too(
    sim: SimulatorHandle,
) -> None:
    apns = sim.sim.listeners["apns"]
    sim.call(lambda: asyncio.ensure_future(apns.refuse()))
    try:
        done = pushsim_exec(
            sim.state_dir, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
            "-d", "{}", "https://api.push.apple.com/3/device/00",
        )  # fmt: skip
    finally:
        sim.call(lambda: asyncio.ensure_future(apns.accept()))
    assert done.returncode != 0 and done.stdout == "000", done.stdout + done.stderr
