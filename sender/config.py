"""Sender configuration: where the providers are, the credentials, and dispatch limits.

:func:`from_simulator_dir` reads a simulator state directory (``endpoints.json`` plus the
credentials minted beside it), so ``pushsim sender --simulator DIR`` needs nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sender.apns import ApnsCredentials


@dataclass(frozen=True)
class ProviderLimits:
    concurrency: int = 256  # requests in flight to this provider
    rate: float = 0.0  # requests per second (0 = unlimited)
    burst: float | None = None
    max_connections: int = 2


def _default_limits() -> dict[str, ProviderLimits]:
    return {
        "apns": ProviderLimits(concurrency=512, max_connections=2),
        # FCM's project quota is 600,000 messages/minute: stay a little under it.
        "fcm": ProviderLimits(concurrency=512, rate=9_000.0, burst=2_000.0, max_connections=2),
        "webpush": ProviderLimits(concurrency=256, max_connections=2),
    }


@dataclass(frozen=True)
class SenderConfig:
    apns_url: str
    apns_sandbox_url: str | None
    apns: ApnsCredentials | None
    fcm_url: str | None
    fcm_service_account: dict[str, Any] | None
    vapid: dict[str, Any] | None
    ca_file: str | None
    db_path: Path
    limits: dict[str, ProviderLimits] = field(default_factory=_default_limits)
    deadline: float = 300.0  # seconds from acceptance until a delivery is dead-lettered
    max_attempts: int = 12
    backoff_base: float = 0.2
    backoff_cap: float = 30.0
    breaker_threshold: int = 20
    breaker_open_for: float = 1.0
    flush_interval: float = 0.002  # outbox group-commit window
    synchronous: str = "NORMAL"  # SQLite: NORMAL survives a killed process, FULL power loss


def from_simulator_dir(state_dir: Path, db_path: Path, **overrides: Any) -> SenderConfig:
    endpoints = json.loads((state_dir / "endpoints.json").read_text())
    meta = json.loads((state_dir / "apns" / "apns.json").read_text())
    key = (state_dir / "apns" / f"AuthKey_{meta['key_id']}.p8").read_text()
    apns = ApnsCredentials(meta["key_id"], meta["team_id"], meta["bundle_id"], key)
    sa_file = state_dir / "fcm" / "service-account.json"
    sa = json.loads(sa_file.read_text()) if sa_file.exists() else None
    if sa is not None and endpoints.get("oauth_token_uri"):
        sa["token_uri"] = endpoints["oauth_token_uri"]
    vapid_file = state_dir / "webpush" / "vapid.json"
    vapid = json.loads(vapid_file.read_text()) if vapid_file.exists() else None
    return SenderConfig(
        apns_url=endpoints["apns"],
        apns_sandbox_url=endpoints.get("apns_sandbox"),
        apns=apns,
        fcm_url=endpoints.get("fcm"),
        fcm_service_account=sa,
        vapid=vapid,
        ca_file=endpoints.get("ca_file") or str(state_dir / "ca.pem"),
        db_path=db_path,
        **overrides,
    )
