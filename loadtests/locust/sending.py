"""What an app-server user sends, and how it reaches the sender. Runs in Locust's process
(imported by the locustfile; nothing here imports locust or asyncio).

- :func:`compose`: one notification's template values and log fields, from the scenario's
  traffic mix and the population (pure, given the RNG);
- :class:`Instances`: the sender's instances when several share the work. Requests go to
  them in turn; one whose connection failed (status 0: the instance is down, refused or
  reset) goes to the next instance with the same idempotency key, as a load balancer in
  front of them would do;
- :func:`send`: one notification per call, or ``traffic.batch`` of them in one
  ``POST /v1/notifications:batch``, answered entry by entry (:func:`batch_outcomes`, pure).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loadtests.scenario.template import render

PADDING = {"small": 0, "medium": 400, "large": 1500}
BATCH_PARTIAL = 207  # a batch answer some of whose entries were refused


@dataclass
class Audience:
    """The population as one Locust process sees it (shared with its feed watcher)."""

    users: list[tuple[str, list[str]]]  # user id -> device ids
    devices: dict[str, dict[str, Any]]  # device id -> its current record
    device_ids: list[str]
    topic_devices: dict[str, list[str]]  # topic -> devices subscribed to it


@dataclass
class Composed:
    values: dict[str, Any]  # what the notify template is filled with
    record: dict[str, Any]  # the request log's fields known before sending


@dataclass
class Answer:
    status: int
    ok: bool
    doc: Any  # the JSON body of an accepted answer, else None
    ms: float
    failovers: int  # connections that failed before this answer, each on another instance


def pick(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, [float(weights[k]) for k in keys])[0]


def device_target(dev: dict[str, Any]) -> dict[str, Any]:
    if dev["provider"] == "webpush":
        return {"provider": "webpush", "subscription": dev["subscription"]}
    return {"provider": dev["provider"], "token": dev["token"]}


def _addressee(
    rng: random.Random, traffic: dict[str, Any], pop: Audience
) -> tuple[str, dict[str, Any], list[str]]:
    """To whom: (kind, the ``to`` value, the device ids it should reach)."""
    kind = pick(rng, traffic.get("to", {"user": 1.0}))
    if kind == "user":
        user_id, dev_ids = rng.choice(pop.users)
        return kind, {"user": user_id}, dev_ids
    if kind == "tokens":
        sample = rng.sample(pop.device_ids, min(len(pop.device_ids), 6))
        live = [d for d in sample if pop.devices[d].get("installed", True)]
        chosen = live[: rng.randint(1, 3)] or pop.device_ids[:1]
        return kind, {"tokens": [device_target(pop.devices[d]) for d in chosen]}, list(chosen)
    topic = rng.choice(traffic.get("topics", ["news"]))
    return kind, {"topic": topic}, list(pop.topic_devices.get(topic, ()))


def compose(
    rng: random.Random, traffic: dict[str, Any], pop: Audience, corr: str, *, idempotent: bool
) -> Composed:
    """One notification: to a user, tokens or a topic, of a drawn size and push type, with
    ``corr`` as its correlation id (and idempotency key, when ``idempotent``)."""
    kind, to, dev_ids = _addressee(rng, traffic, pop)
    size = pick(rng, traffic.get("payload", {"small": 1.0}))
    push_type = pick(rng, traffic.get("push_type", {"alert": 1.0}))
    high = rng.random() < float(traffic.get("high_priority", 0.8)) and push_type == "alert"
    pad = PADDING.get(size, 0)
    values: dict[str, Any] = {
        "to": to,
        "title": "pushsim",
        "body": f"{kind} {size} {push_type}",
        "correlation_id": corr,
        "pad": ("x" * pad) if pad else None,
        "priority": "high" if high else "normal",
        "ttl": int(traffic.get("ttl", 3600)),
        "apns": {"push_type": "background", "priority": 5} if push_type == "background" else None,
        "push_type": push_type,
        "size": size,
        "idempotency_key": corr if idempotent else None,
    }
    record = {"c": corr, "kind": kind, "dev": dev_ids, "size": size, "push": push_type}
    return Composed(values, record)


class Instances:
    """The sender's instances in turn, each request starting at the next one; with one
    instance (or none listed) requests go to Locust's ``--host`` as relative paths."""

    def __init__(self, urls: list[str], first: int = 0) -> None:
        self.urls = [u.rstrip("/") for u in urls] if len(urls) > 1 else []
        self.turn = first

    def order(self) -> list[str]:
        if not self.urls:
            return [""]
        i = self.turn % len(self.urls)
        self.turn += 1
        return self.urls[i:] + self.urls[:i]


def call(
    client: Any,
    instances: Instances,
    template: dict[str, Any],
    body: Any,
    name: str,
    accepted: set[int],
) -> Answer:
    """One API call through Locust's client (``catch_response``), on the next instance and,
    when its connection fails, on the ones after it."""
    t0 = time.perf_counter()
    bases = instances.order()
    for failovers, base in enumerate(bases):
        with client.request(
            template.get("method", "POST"),
            base + template.get("path", "/v1/notifications"),
            json=body,
            name=name,
            catch_response=True,
        ) as resp:
            status = int(resp.status_code or 0)
            if status == 0 and failovers + 1 < len(bases):
                resp.failure("connection failed; the request goes to the next instance")
                continue
            ok = status in accepted
            doc = None
            if ok:
                resp.success()
                try:
                    doc = resp.json()
                except ValueError:
                    doc = None
            else:
                resp.failure(f"{status}: {(resp.text or '')[:200]}")
            return Answer(status, ok, doc, (time.perf_counter() - t0) * 1000, failovers)
    raise AssertionError("unreachable: order() lists at least one base")


def batch_outcomes(
    answer: Answer, n: int, id_field: str, results_field: str
) -> list[tuple[bool, str | None, int]]:
    """Each of a batch's ``n`` notifications: (accepted, its id, its status). An entry is
    accepted when it has an id and no ``error``; the call's status stands in for an entry
    without its own."""
    results = answer.doc.get(results_field) if isinstance(answer.doc, dict) else None
    if not answer.ok or not isinstance(results, list):
        return [(False, None, answer.status)] * n
    out: list[tuple[bool, str | None, int]] = []
    for i in range(n):
        entry = results[i] if i < len(results) else None
        if not isinstance(entry, dict):
            out.append((False, None, answer.status))
            continue
        status = entry.get("status")
        status = status if isinstance(status, int) else answer.status
        nid = entry.get(id_field)
        ok = nid is not None and "error" not in entry and 200 <= status < 300
        out.append((ok, str(nid) if ok else None, status))
    return out


def send(
    client: Any,
    instances: Instances,
    target: dict[str, Any],
    items: list[Composed],
    log: Callable[[dict[str, Any]], None],
) -> list[tuple[str, str]]:
    """Send ``items`` (one: the notify call; more: one batch call), log one record per
    notification; (correlation id, notification id) of those accepted."""
    accepted = set(target.get("accepted_status", [200, 201, 202]))
    notify_t: dict[str, Any] = target.get("notify", {})
    id_field = str(target.get("id_field", "id"))
    started = time.time()
    bodies = [render(notify_t.get("body", {}), it.values) for it in items]
    if len(items) == 1:
        name = f"notify to {items[0].record['kind']}"
        answer = call(client, instances, notify_t, bodies[0], name, accepted)
        nid = answer.doc.get(id_field) if isinstance(answer.doc, dict) else None
        outcomes = [(answer.ok, None if nid is None else str(nid), answer.status)]
    else:
        batch_t: dict[str, Any] = target.get("notify_batch") or {}
        body = render(batch_t.get("body", {"notifications": "{notifications}"}), {
            "notifications": bodies
        })  # fmt: skip
        name = f"notify batch of {len(items)}"
        answer = call(client, instances, batch_t, body, name, accepted | {BATCH_PARTIAL})
        results = str(target.get("batch_results", "results"))
        outcomes = batch_outcomes(answer, len(items), id_field, results)
    ids: list[tuple[str, str]] = []
    for it, (ok, nid, status) in zip(items, outcomes, strict=True):
        record = {"t": started, "ms": round(answer.ms, 3), "st": status, "ok": ok, "nid": nid}
        if len(items) > 1:
            record["b"] = len(items)
        if answer.failovers:
            record["fo"] = answer.failovers
        log({**it.record, **record})
        if nid is not None:
            ids.append((str(it.record["c"]), nid))
    return ids
