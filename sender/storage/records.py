"""The outbox's rows as values, and the notification document the API answers with, for
every store (SQLite and PostgreSQL build the same document from the same rows)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

OPEN_STATUSES = ("pending", "retrying")
TERMINAL_STATUSES = ("delivered", "dead_token", "failed", "dead_lettered")


@dataclass(slots=True)
class DeliveryRow:
    id: int
    notification_id: str
    provider: str
    token: str
    target: dict[str, Any] | None
    message_id: str
    status: str = "pending"
    attempts: int = 0
    next_at: float = 0.0
    last_error: str | None = None


@dataclass(slots=True)
class NotificationRow:
    id: str
    created_at: float
    message: dict[str, Any]
    deadline: float
    idempotency_key: str | None
    targets: int


def notification_doc(
    notification: Sequence[Any],
    deliveries: Sequence[Sequence[Any]],
    attempts: Iterable[Sequence[Any]],
    receipts: Iterable[Sequence[Any]],
) -> dict[str, Any]:
    """``GET /v1/notifications/{id}``'s answer from the rows, in order:
    ``notification`` (id, created_at, targets); ``deliveries`` (id, provider, token,
    status, message_id, provider_message_id, last_error, attempts); ``attempts``
    (delivery_id, at, status_code, reason, latency_ms); ``receipts`` (token, event, at)."""
    tries: dict[int, list[dict[str, Any]]] = {int(d[0]): [] for d in deliveries}
    for a in attempts:
        tries[int(a[0])].append(
            {"at": a[1], "status_code": a[2], "reason": a[3], "latency_ms": a[4]}
        )
    seen: dict[str, dict[str, float]] = {}
    for r in receipts:
        seen.setdefault(r[0], {}).setdefault(r[1], r[2])
    out_deliveries = [
        {
            "provider": d[1],
            "token": d[2],
            "status": d[3],
            "message_id": d[4],
            "provider_message_id": d[5],
            "last_error": d[6],
            "attempts": tries[int(d[0])],
            "receipts": seen.get(d[2], {}),
        }
        for d in deliveries
    ]
    return {
        "id": notification[0],
        "status": overall_status([d[3] for d in deliveries], any(tries.values())),
        "created_at": notification[1],
        "targets": notification[2],
        "deliveries": out_deliveries,
    }


def overall_status(statuses: list[str], attempted: bool) -> str:
    if not statuses:
        return "failed"
    if any(s in OPEN_STATUSES for s in statuses):
        return (
            "in_progress"
            if attempted or any(s not in OPEN_STATUSES for s in statuses)
            else "accepted"
        )
    delivered = sum(1 for s in statuses if s == "delivered")
    if delivered == len(statuses):
        return "delivered"
    return "partially_delivered" if delivered else "failed"
