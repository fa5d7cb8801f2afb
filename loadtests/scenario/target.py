"""The ``target:`` section: the shape of the sender's API, as request templates.

Each part defaults to the reference sender's (:data:`DEFAULT_TARGET`), so a scenario for
someone else's sender writes only what differs. Templates are filled per request by
:func:`loadtests.scenario.template.render`.
"""

from __future__ import annotations

from typing import Any

from loadtests.scenario.check import Check, show
from loadtests.scenario.model import RequestTemplate, TargetShape

DEFAULT_TARGET: dict[str, Any] = {
    "register": {
        "method": "POST",
        "path": "/v1/devices",
        "body": {
            "user_id": "{user_id}",
            "provider": "{provider}",
            "token": "{token}",
            "subscription": "{subscription}",
            "device_id": "{device_id}",
        },
    },
    "notify": {
        "method": "POST",
        "path": "/v1/notifications",
        "body": {
            "to": "{to}",
            "notification": {"title": "{title}", "body": "{body}"},
            "data": {"correlation_id": "{correlation_id}", "pad": "{pad}"},
            "priority": "{priority}",
            "ttl": "{ttl}",
            "apns": "{apns}",
            "idempotency_key": "{idempotency_key}",  # set only when a request is retried
        },
    },
    # traffic.batch above 1: one call carries that many notify bodies
    "notify_batch": {
        "method": "POST",
        "path": "/v1/notifications:batch",
        "body": {"notifications": "{notifications}"},
    },
    "batch_results": "results",  # the answer's list, one entry per notification, in order
    "accepted_status": [200, 201, 202],
    "id_field": "id",
    "devices_dead": "/v1/devices?status=dead",
    "devices_active": "/v1/devices?status=active",
    "metrics": "/metrics",
    "health": "/v1/health",
}


def _template(check: Check, data: Any, path: str, default: dict[str, Any]) -> RequestTemplate:
    d = check.mapping(data, path, ("method", "path", "body"))
    merged = {**default, **d}
    method = merged["method"]
    if method not in ("POST", "PUT", "PATCH"):
        raise check.fail(f"{path}.method", f"expected POST, PUT or PATCH, got {show(method)}")
    p = merged["path"]
    if not isinstance(p, str) or not p.startswith("/"):
        raise check.fail(f"{path}.path", f"expected a path starting with /, got {show(p)}")
    return RequestTemplate(method, p, merged["body"])


def target(check: Check, data: Any) -> TargetShape:
    """``target:``: the sender API's shape, each part defaulting to the reference sender's."""
    d = check.mapping(data, "target", tuple(DEFAULT_TARGET))
    reg = _template(check, d.get("register"), "target.register", DEFAULT_TARGET["register"])
    notify = _template(check, d.get("notify"), "target.notify", DEFAULT_TARGET["notify"])
    batch = _template(
        check, d.get("notify_batch"), "target.notify_batch", DEFAULT_TARGET["notify_batch"]
    )
    accepted = d.get("accepted_status", DEFAULT_TARGET["accepted_status"])
    if (
        not isinstance(accepted, list)
        or not accepted
        or not all(isinstance(s, int) and 200 <= s < 300 for s in accepted)
    ):
        raise check.fail(
            "target.accepted_status", f"expected a list of 2xx status codes, got {show(accepted)}"
        )
    opt: dict[str, str | None] = {}
    for key in ("devices_dead", "devices_active", "metrics", "health"):
        v = d.get(key, DEFAULT_TARGET[key])
        if v is not None and (not isinstance(v, str) or not v.startswith("/")):
            raise check.fail(
                f"target.{key}", f"expected a path starting with / or null, got {show(v)}"
            )
        opt[key] = v
    names = {}
    for key in ("id_field", "batch_results"):
        v = d.get(key, DEFAULT_TARGET[key])
        if not isinstance(v, str) or not v:
            raise check.fail(f"target.{key}", f"expected a field name, got {show(v)}")
        names[key] = v
    return TargetShape(
        reg,
        notify,
        tuple(accepted),
        names["id_field"],
        opt["devices_dead"],
        opt["devices_active"],
        opt["metrics"],
        opt["health"],
        batch,
        names["batch_results"],
    )
