"""The PostgreSQL store's schema, created and migrated by the sender on start.

Each migration has a version; ``pushsim_schema`` records the ones applied. :func:`migrate`
applies those not yet applied, in order, in one transaction under an advisory lock, so
several instances starting at once migrate once. A database migrated by a newer pushsim
(a version this one does not know) is refused rather than used.

Times are epoch seconds (``float8``), as in the SQLite store; a delivery's ``owner`` is the
instance that claimed it, whose lease (``sender_instances.lease_until``, database time)
says whether it is still alive.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

LOCK_KEY = 0x70757368_73696D  # pg_advisory_xact_lock key: "pushsim"

V1_OUTBOX = """
CREATE TABLE devices (
    id text PRIMARY KEY,
    user_id text NOT NULL,
    provider text NOT NULL,
    token text NOT NULL,
    device_id text,
    app text,
    environment text,
    subscription text,
    status text NOT NULL,
    created_at float8 NOT NULL,
    last_success_at float8,
    died_at float8,
    death_reason text,
    UNIQUE (provider, token)
);
CREATE INDEX devices_user ON devices (user_id);
CREATE TABLE notifications (
    id text PRIMARY KEY,
    created_at float8 NOT NULL,
    message text NOT NULL,
    deadline float8 NOT NULL,
    idempotency_key text UNIQUE,
    targets integer NOT NULL
);
CREATE TABLE deliveries (
    id bigint PRIMARY KEY,
    notification_id text NOT NULL,
    provider text NOT NULL,
    token text NOT NULL,
    target text,
    message_id text NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_at float8 NOT NULL DEFAULT 0,
    last_error text,
    provider_message_id text
);
CREATE INDEX deliveries_notification ON deliveries (notification_id);
CREATE TABLE attempts (
    delivery_id bigint NOT NULL,
    at float8 NOT NULL,
    status_code integer,
    reason text,
    latency_ms float8
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);
CREATE TABLE receipts (
    notification_id text NOT NULL,
    token text NOT NULL,
    event text NOT NULL,
    at float8 NOT NULL
);
CREATE INDEX receipts_notification ON receipts (notification_id);
"""

V2_SHARED_WORK = """
CREATE TABLE sender_instances (
    id text PRIMARY KEY,
    serial bigint NOT NULL,
    started_at float8 NOT NULL,
    lease_until float8 NOT NULL
);
CREATE SEQUENCE sender_instance_serial;
ALTER TABLE deliveries ADD COLUMN owner text;
CREATE INDEX deliveries_unowned ON deliveries (next_at)
    WHERE owner IS NULL AND status IN ('pending', 'retrying');
CREATE INDEX deliveries_owner ON deliveries (owner) WHERE status IN ('pending', 'retrying');
CREATE TABLE rate_buckets (
    provider text PRIMARY KEY,
    rate float8 NOT NULL,
    burst float8 NOT NULL,
    tokens float8 NOT NULL,
    updated float8 NOT NULL
);
"""

V3_HOLDS = """
CREATE TABLE provider_holds (
    provider text PRIMARY KEY,
    not_before float8 NOT NULL,
    quota boolean NOT NULL
);
"""

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "registrations and the outbox", V1_OUTBOX),
    (2, "work shared by instances: owners under a lease, global rate buckets", V2_SHARED_WORK),
    (3, "provider-wide Retry-After holds, for instances that join while one lasts", V3_HOLDS),
)
LATEST = MIGRATIONS[-1][0]


class SchemaTooNew(Exception):
    """The database's schema is newer than this pushsim knows."""


async def migrate(conn: AsyncConnection[Any]) -> list[int]:
    """Bring the schema to :data:`LATEST`; the versions applied now (none: up to date)."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS pushsim_schema (version integer PRIMARY KEY,"
            " description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT COALESCE(max(version), 0) FROM pushsim_schema")
        row = await cur.fetchone()
        current = int(row[0]) if row else 0
        if current > LATEST:
            raise SchemaTooNew(
                f"the database's schema is version {current}; this pushsim knows up to {LATEST}"
            )
        for version, description, sql in MIGRATIONS:
            if version <= current:
                continue
            await conn.execute(sql.encode())
            await conn.execute(
                "INSERT INTO pushsim_schema (version, description) VALUES (%s, %s)",
                (version, description),
            )
            applied.append(version)
    return applied
