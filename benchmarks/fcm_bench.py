"""The FCM path for ``benchmarks/simulator_bench.py``: authorised ``messages:send``, success.

    .venv/bin/python benchmarks/simulator_bench.py --plugin fcm_bench --paths fcm

Each request carries an OAuth access token (minted beforehand at the simulator's ``/token``
with the service-account key) and a message with data, a notification and an android
override; the simulator checks the token, validates the whole message, looks the device
up, applies the quotas and delivers to the inbox.

h2load replays one body for every request, and an FCM message names its device in the
body, so every request goes to one device. The per-device quotas (240/min, 5,000/h) are
raised for the run so the success path is what is measured; the quota code still runs.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import Any


def _bench_module() -> Any:
    """simulator_bench as it is running (usually ``__main__``), to register into."""
    main = sys.modules.get("__main__")
    if main is not None and hasattr(main, "register_path"):
        return main
    import simulator_bench

    return simulator_bench


def access_token(token_uri: str, sa: dict[str, Any]) -> str:
    from simulator.testing.fcm import signed_assertion

    assertion = signed_assertion(sa)
    form = f"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    req = urllib.request.Request(token_uri, data=form.encode(), method="POST")
    req.add_header("content-type", "application/x-www-form-urlencoded")
    import ssl

    ctx = ssl.create_default_context(cafile=None)
    if token_uri.startswith("https"):
        ctx = ssl.create_default_context(cafile=sa["_ca_file"])
    with urllib.request.urlopen(
        req, timeout=30, context=ctx if token_uri.startswith("https") else None
    ) as resp:
        token: str = json.loads(resp.read())["access_token"]
    return token


def fcm_path(ctx: Any) -> Any:
    bench = _bench_module()
    sa = json.loads((ctx.state_dir / "fcm" / "service-account.json").read_text())
    sa["_ca_file"] = ctx.endpoints["ca_file"]
    token = access_token(ctx.endpoints["oauth_token_uri"], sa)
    device = ctx.mint("fcm", 1)[0]
    big = 1_000_000_000
    ctx.control(
        "POST", "/_sim/fcm/config", {"quota": {"device_per_minute": big, "device_per_hour": big}}
    )
    message = {
        "message": {
            "token": device["token"],
            "notification": {"title": "Hello", "body": "pushsim benchmark"},
            "data": {"correlation_id": "bench", "kind": "greeting"},
            "android": {"priority": "HIGH", "ttl": "3600s"},
        }
    }
    return bench.BenchTarget(
        listener="fcm",
        paths=[f"/v1/projects/{sa['project_id']}/messages:send"],
        headers=[f"authorization: Bearer {token}", "content-type: application/json"],
        body=json.dumps(message).encode(),
    )


if __name__ != "__main__":
    try:
        _bench_module().register_path("fcm")(fcm_path)
    except ImportError:  # imported outside the benchmark
        pass
