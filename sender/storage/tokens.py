"""Device registrations: the :class:`TokenStore` interface and its SQLite implementation.

A registration is one token (or Web Push subscription) of one user's app install. A token
reported dead by its provider is marked dead at once (with when and why) and never sent to
again; a new token registered with the same ``device_id`` replaces its predecessor.

The SQLite store keeps an in-memory index (token -> registration, user -> registrations) so
the send path never queries the database; writes go through at once, except
``last_success_at`` which is batched (:meth:`SqliteTokenStore.flush`).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from pushsim.clock import Clock

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    token TEXT NOT NULL,
    device_id TEXT,
    app TEXT,
    environment TEXT,
    subscription TEXT,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_success_at REAL,
    died_at REAL,
    death_reason TEXT,
    UNIQUE (provider, token)
);
CREATE INDEX IF NOT EXISTS devices_user ON devices (user_id);
"""


@dataclass(slots=True)
class Registration:
    id: str
    user_id: str
    provider: str
    token: str
    device_id: str | None = None
    app: str | None = None
    environment: str | None = None
    subscription: dict[str, Any] | None = None
    status: str = "active"
    created_at: float = 0.0
    last_success_at: float | None = None
    died_at: float | None = None
    death_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "provider": self.provider,
            "token": self.token,
            "device_id": self.device_id,
            "app": self.app,
            "environment": self.environment,
            "status": self.status,
            "created_at": self.created_at,
            "last_success_at": self.last_success_at,
            "died_at": self.died_at,
            "death_reason": self.death_reason,
        }


class TokenStore(Protocol):
    """What dispatch needs of the registrations, answered at once (no waiting on I/O): is a
    token dead, prune one, note a success. The API's side is async, on
    :class:`sender.storage.backend.Storage`."""

    def is_dead(self, provider: str, token: str) -> bool: ...

    def mark_dead(self, provider: str, token: str, reason: str) -> bool: ...

    def mark_success(self, provider: str, token: str) -> None: ...


_COLUMNS = (
    "id, user_id, provider, token, device_id, app, environment, subscription, status,"
    " created_at, last_success_at, died_at, death_reason"
)


class SqliteTokenStore:
    def __init__(self, conn: sqlite3.Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock
        conn.executescript(SCHEMA)
        self.by_id: dict[str, Registration] = {}
        self.by_token: dict[tuple[str, str], Registration] = {}
        self.by_user: dict[str, dict[str, Registration]] = {}
        self._success: dict[str, float] = {}
        for row in conn.execute(f"SELECT {_COLUMNS} FROM devices"):
            reg = Registration(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                json.loads(row[7]) if row[7] else None,
                row[8],
                row[9],
                row[10],
                row[11],
                row[12],
            )
            self._index(reg)

    def _index(self, reg: Registration) -> None:
        self.by_id[reg.id] = reg
        self.by_token[(reg.provider, reg.token)] = reg
        self.by_user.setdefault(reg.user_id, {})[reg.id] = reg

    def _unindex(self, reg: Registration) -> None:
        self.by_id.pop(reg.id, None)
        if self.by_token.get((reg.provider, reg.token)) is reg:
            del self.by_token[(reg.provider, reg.token)]
        self.by_user.get(reg.user_id, {}).pop(reg.id, None)

    def _save(self, reg: Registration) -> None:
        self.conn.execute(
            f"INSERT OR REPLACE INTO devices ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                reg.id,
                reg.user_id,
                reg.provider,
                reg.token,
                reg.device_id,
                reg.app,
                reg.environment,
                json.dumps(reg.subscription) if reg.subscription else None,
                reg.status,
                reg.created_at,
                reg.last_success_at,
                reg.died_at,
                reg.death_reason,
            ),
        )

    def register(
        self,
        user_id: str,
        provider: str,
        token: str,
        *,
        device_id: str | None = None,
        app: str | None = None,
        environment: str | None = None,
        subscription: dict[str, Any] | None = None,
    ) -> Registration:
        now = self.clock.time()
        self.conn.execute("BEGIN")
        try:
            if device_id is not None:
                for old in list(self.by_user.get(user_id, {}).values()):
                    if (
                        old.device_id == device_id
                        and old.provider == provider
                        and old.token != token
                        and old.status == "active"
                    ):
                        old.status, old.died_at, old.death_reason = "dead", now, "replaced"
                        self._save(old)
            existing = self.by_token.get((provider, token))
            if existing is not None:
                self._unindex(existing)
                self.conn.execute("DELETE FROM devices WHERE id = ?", (existing.id,))
            reg = Registration(
                uuid.uuid4().hex,
                user_id,
                provider,
                token,
                device_id,
                app,
                environment,
                subscription,
                "active",
                now,
            )
            self._save(reg)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self._index(reg)
        return reg

    def get(self, registration_id: str) -> Registration | None:
        return self.by_id.get(registration_id)

    def delete(self, registration_id: str) -> bool:
        reg = self.by_id.get(registration_id)
        if reg is None:
            return False
        self.conn.execute("DELETE FROM devices WHERE id = ?", (registration_id,))
        self._unindex(reg)
        return True

    def list_devices(
        self, user_id: str | None = None, status: str | None = None
    ) -> list[Registration]:
        regs = (
            list(self.by_user.get(user_id, {}).values())
            if user_id is not None
            else list(self.by_id.values())
        )
        self._apply_success()
        return [r for r in regs if status is None or r.status == status]

    def active_for_user(self, user_id: str) -> list[Registration]:
        return [r for r in self.by_user.get(user_id, {}).values() if r.status == "active"]

    def lookup(self, provider: str, token: str) -> Registration | None:
        return self.by_token.get((provider, token))

    def is_dead(self, provider: str, token: str) -> bool:
        reg = self.by_token.get((provider, token))
        return reg is not None and reg.status == "dead"

    def mark_dead(self, provider: str, token: str, reason: str) -> bool:
        """Prune a token; True if it was live (or unknown) before."""
        now = self.clock.time()
        reg = self.by_token.get((provider, token))
        if reg is not None and reg.status == "dead":
            return False
        if reg is None:  # an explicit token never registered: remember it is dead
            reg = Registration(uuid.uuid4().hex, "", provider, token, created_at=now)
            self._index(reg)
        reg.status, reg.died_at, reg.death_reason = "dead", now, reason
        self._save(reg)
        return True

    def mark_success(self, provider: str, token: str) -> None:
        reg = self.by_token.get((provider, token))
        if reg is not None:
            self._success[reg.id] = self.clock.time()

    def _apply_success(self) -> None:
        for rid, at in self._success.items():
            reg = self.by_id.get(rid)
            if reg is not None:
                reg.last_success_at = at

    def flush(self) -> None:
        if not self._success:
            return
        self._apply_success()
        rows = [(at, rid) for rid, at in self._success.items()]
        self._success.clear()
        self.conn.executemany("UPDATE devices SET last_success_at = ? WHERE id = ?", rows)
