"""The sender's configuration as values: provider endpoints, credentials, dispatch limits.

Two sources build the same :class:`SenderConfig`:

- :func:`sender.config.simulator_dir.from_simulator_dir` reads a simulator state directory
  (``endpoints.json`` plus the credentials minted beside it), so
  ``pushsim sender --simulator DIR`` needs nothing else;
- :func:`sender.config.file.from_config_file` reads an explicit file
  (``pushsim sender --config FILE``), so the sender can be pointed at any provider
  endpoints with any credentials.

Either raises :class:`sender.config.checks.ConfigError` naming the file, the field and what
was expected. Nothing here reads a file or imports another part of the sender: the
dispatcher and the provider clients only read these values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROVIDERS = ("apns", "fcm", "webpush")

# The browsers' push services (Chrome and most Chromium browsers, Firefox, Safari, Edge):
# the origins a Web Push endpoint may be on unless the config says otherwise.
KNOWN_PUSH_SERVICES = (
    "https://fcm.googleapis.com",
    "https://updates.push.services.mozilla.com",
    "https://web.push.apple.com",
    "https://*.notify.windows.com",
)


@dataclass(frozen=True)
class ApnsCredentials:
    """APNs token-based auth: the .p8 signing key (PEM) and the ids Apple issued with it."""

    key_id: str
    team_id: str
    bundle_id: str
    private_key_pem: str


@dataclass(frozen=True)
class ProviderLimits:
    concurrency: int = 256  # requests in flight to this provider
    rate: float = 0.0  # requests per second (0 = unlimited)
    burst: float | None = None
    max_connections: int = 2


def default_limits() -> dict[str, ProviderLimits]:
    return {
        "apns": ProviderLimits(concurrency=512, max_connections=2),
        # FCM's project quota is 600,000 messages/minute: stay a little under it.
        "fcm": ProviderLimits(concurrency=512, rate=9_000.0, burst=2_000.0, max_connections=2),
        "webpush": ProviderLimits(concurrency=256, max_connections=2),
    }


@dataclass(frozen=True)
class SenderConfig:
    apns_url: str | None
    apns_sandbox_url: str | None
    apns: ApnsCredentials | None
    fcm_url: str | None
    fcm_service_account: dict[str, Any] | None
    vapid: dict[str, Any] | None
    ca_file: str | None
    db_path: Path
    limits: dict[str, ProviderLimits] = field(default_factory=default_limits)
    deadline: float = 300.0  # seconds from acceptance until a delivery is dead-lettered
    max_attempts: int = 12
    backoff_base: float = 0.2
    backoff_cap: float = 30.0
    breaker_threshold: int = 20
    breaker_open_for: float = 1.0
    flush_interval: float = 0.002  # outbox group-commit window
    synchronous: str = "NORMAL"  # SQLite: NORMAL survives a killed process, FULL power loss
    # A postgresql:// URL: the store every instance on it shares (None: SQLite at db_path).
    store_url: str | None = None
    lease: float = 5.0  # PostgreSQL: seconds an instance's claimed deliveries stay its own
    # Per provider, the CA to trust (None: the system's); a provider not listed uses ca_file.
    ca_files: dict[str, str | None] = field(default_factory=dict)
    # APNs broadcast channel management (Apple's own hosts), per environment
    apns_channels_url: str | None = None
    apns_channels_sandbox_url: str | None = None
    # RFC 8030 receipts: Web Push sends ask for one, recorded as ``delivered`` receipts
    webpush_receipts: bool = False
    # The push-service origins a Web Push endpoint may be on (sender.policy.endpoints)
    webpush_origins: tuple[str, ...] = KNOWN_PUSH_SERVICES

    def ca_for(self, provider: str) -> str | None:
        return self.ca_files[provider] if provider in self.ca_files else self.ca_file

    @property
    def enabled(self) -> frozenset[str]:
        """The providers this sender can send to."""
        on = set()
        if self.apns is not None and self.apns_url:
            on.add("apns")
        if self.fcm_url and self.fcm_service_account:
            on.add("fcm")
        if self.vapid:
            on.add("webpush")
        return frozenset(on)
