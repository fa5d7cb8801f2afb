"""What an accepted notification becomes before it is stored (pure): its targets, the
checks that refuse it with a 400, and its rows.

:func:`targets` resolves a request to (provider, token, target) triples: a user's active
registrations, a topic, or the explicit tokens (duplicates dropped); :func:`check_enabled`
refuses explicit targets of a provider this sender has no configuration for;
:func:`check_size` refuses payloads over a provider's limit here rather than at the
provider; :func:`rows` builds the outbox rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from sender.api.validate import NotificationRequest, ValidationError
from sender.providers.payload import (
    FCM_LIMIT,
    FCM_TOPIC_LIMIT,
    WEBPUSH_PLAINTEXT_LIMIT,
    apns_limit,
    apns_payload,
    fcm_size,
    webpush_plaintext,
)
from sender.storage.records import DeliveryRow, NotificationRow
from sender.storage.tokens import Registration

Target = tuple[str, str, dict[str, Any] | None]  # provider, token, what the client needs


def targets(req: NotificationRequest, registrations: Iterable[Registration]) -> list[Target]:
    """Whom a request reaches; ``registrations``: the active ones of ``req.user``."""
    if req.user is not None:
        out: list[Target] = []
        for reg in registrations:
            if reg.provider == "webpush":
                out.append(("webpush", reg.token, reg.subscription))
            elif reg.provider == "apns" and reg.environment == "sandbox":
                out.append(("apns", reg.token, {"environment": "sandbox"}))
            else:
                out.append((reg.provider, reg.token, None))
        return out
    if req.topic is not None:
        return [("fcm", "/topics/" + req.topic, {"topic": req.topic})]
    seen: set[tuple[str, str]] = set()
    found: list[Target] = []
    for t in req.tokens:
        if (t.provider, t.token) in seen:
            continue
        seen.add((t.provider, t.token))
        if t.provider == "webpush":
            found.append(("webpush", t.token, t.subscription))
        elif t.kind == "fid":
            found.append(("fcm", t.token, {"fid": True}))  # FCM's message.fid
        elif t.environment == "sandbox":
            found.append((t.provider, t.token, {"environment": "sandbox"}))
        else:
            found.append((t.provider, t.token, None))
    return found


def check_enabled(req: NotificationRequest, enabled: frozenset[str]) -> None:
    """Refuse explicit targets of a provider this sender has no configuration for."""
    if len(enabled) == 3:
        return
    if req.topic is not None and "fcm" not in enabled:
        raise ValidationError(
            "to.topic: fcm is not configured on this sender (topics are FCM's)", "to.topic"
        )
    for i, t in enumerate(req.tokens):
        if t.provider not in enabled:
            name = f"to.tokens[{i}].provider"
            raise ValidationError(f"{name}: {t.provider} is not configured on this sender", name)


def check_size(
    req: NotificationRequest, providers: set[str], cache: dict[str, Any] | None = None
) -> None:
    """Refuse payloads over a provider's limit here rather than at the provider.

    The bodies built to measure go into ``cache`` (a :class:`Prepared` cache) for the
    provider clients to reuse."""
    msg = req.message
    where = "data" if msg.data else "notification"
    cache = {} if cache is None else cache
    if "apns" in providers:
        payload = cache["apns_payload"] = apns_payload(msg)
        size, limit = len(payload), apns_limit(msg)
        if size > limit:
            raise ValidationError(
                f"APNs payload is {size} bytes, over the {limit}-byte limit", where
            )
    if "fcm" in providers:
        size = fcm_size(msg)
        limit = FCM_TOPIC_LIMIT if req.topic is not None else FCM_LIMIT
        if size > limit:
            raise ValidationError(
                f"FCM message is {size} bytes, over the {limit}-byte limit", where
            )
    if "webpush" in providers:
        plaintext = cache["webpush"] = webpush_plaintext(msg)
        size = len(plaintext)
        if size > WEBPUSH_PLAINTEXT_LIMIT:
            raise ValidationError(
                f"Web Push payload is {size} bytes, over the {WEBPUSH_PLAINTEXT_LIMIT}-byte"
                " limit (4096 with encryption)",
                where,
            )


def rows(
    req: NotificationRequest,
    found: list[Target],
    now: float,
    deadline: float,
    next_id: Callable[[], int],
) -> tuple[NotificationRow, list[DeliveryRow]]:
    """The notification's outbox rows: a new id, one delivery (with its own apns-id) per
    target."""
    nid = os.urandom(16).hex()
    deliveries = [
        DeliveryRow(next_id(), nid, provider, token, target, uuid4())
        for provider, token, target in found
    ]
    n = NotificationRow(
        nid, now, req.message.to_json(), deadline, req.idempotency_key, len(deliveries)
    )
    return n, deliveries


def uuid4() -> str:
    """A random (version 4) UUID in canonical form, as ``str(uuid.uuid4())`` (the apns-id
    each delivery keeps on every attempt), in a third of the time."""
    h = os.urandom(16).hex()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"
