"""The external contract of ``pushsim simulator`` (DESIGN.md), checked on the real CLI process:
endpoints.json and its lifetime, the credentials files, one simulator per state directory,
and a clean shutdown on SIGTERM."""

from __future__ import annotations

import base64
import json
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from simulator.testing.handle import ROOT, simulator_process

CONTRACT_KEYS = {"apns", "fcm", "oauth_token_uri", "webpush", "control", "ca_file"}
URL = re.compile(r"^https?://(127\.0\.0\.1|\[::1\]|localhost):\d{1,5}$")


def _goaway_on_sigterm(proc: subprocess.Popen[bytes], url: str, ca_file: str) -> bytes | None:
    """Open an HTTP/2 connection to ``url``, SIGTERM the simulator, return GOAWAY's debug data."""
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as sock,
    ):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        conn.receive_data(sock.recv(65535))  # the server's SETTINGS: the connection is up
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            data = sock.recv(65535)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    return event.additional_data or b""
    return None


def test_endpoints_credentials_and_a_clean_shutdown(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with simulator_process(state) as (proc, endpoints):
        extra = {"apns_sandbox", "apns_channels", "apns_channels_sandbox"}  # beside the contract
        assert CONTRACT_KEYS <= set(endpoints) <= CONTRACT_KEYS | extra
        for name, url in endpoints.items():
            if name == "ca_file":
                assert Path(url).is_absolute() and Path(url) == (state / "ca.pem").resolve()
            elif name == "oauth_token_uri":
                assert url == endpoints["fcm"] + "/token"
            else:
                assert URL.match(url), (name, url)
        assert endpoints["control"].startswith("http://")

        apns = json.loads((state / "apns" / "apns.json").read_text())
        assert set(apns) >= {"key_id", "team_id", "bundle_id"}
        assert len(apns["key_id"]) == 10 and len(apns["team_id"]) == 10
        p8 = state / "apns" / f"AuthKey_{apns['key_id']}.p8"
        assert isinstance(load_pem_private_key(p8.read_bytes(), None), ec.EllipticCurvePrivateKey)

        sa = json.loads((state / "fcm" / "service-account.json").read_text())
        assert sa["type"] == "service_account" and sa["project_id"]
        assert sa["token_uri"] == endpoints["oauth_token_uri"]

        vapid = json.loads((state / "webpush" / "vapid.json").read_text())
        key = load_pem_private_key(vapid["private_key"].encode(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        point = base64.urlsafe_b64decode(
            vapid["public_key"] + "=" * (-len(vapid["public_key"]) % 4)
        )
        assert len(point) == 65 and point[0] == 4 and "=" not in vapid["public_key"]

        # a second simulator on the same state directory is refused and leaves the file alone
        second = subprocess.run(
            [sys.executable, "-m", "pushsim", "simulator", "--state-dir", str(state)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert f"pid {proc.pid}" in second.stderr
        assert json.loads((state / "endpoints.json").read_text()) == endpoints

        debug = _goaway_on_sigterm(proc, endpoints["apns"], endpoints["ca_file"])
        assert debug is not None and json.loads(debug) == {"reason": "Shutdown"}
        assert proc.wait(timeout=15) == 0
        assert not (state / "endpoints.json").exists()


def test_an_endpoints_file_left_by_a_killed_simulator_is_not_taken_for_the_new_one(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with simulator_process(state) as (proc, first):
        proc.kill()
        proc.wait(timeout=10)
    assert json.loads((state / "endpoints.json").read_text()) == first  # what SIGKILL leaves
    # the simulator itself clears it before listening (not only the test helper)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pushsim", "simulator", "--state-dir", str(state)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        current = first
        while (not current or current == first) and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                current = json.loads((state / "endpoints.json").read_text())
            except (FileNotFoundError, ValueError):
                current = {}
        assert current and current != first
        assert (
            json.loads((state / "fcm" / "service-account.json").read_text())["token_uri"]
            == (current["oauth_token_uri"])
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
