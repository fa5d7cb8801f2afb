"""APNs: the provider token (ES256 JWT from the .p8 key) and the HTTP/2 client.

One :class:`ProviderToken` is shared by every connection: it is signed once and reused
until it is ``refresh_after`` old (between 20 and 60 minutes, as Apple requires: older than
an hour is ExpiredProviderToken, newer than 20 minutes on a connection is
TooManyProviderTokenUpdates).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jwt

from sender.classify import Outcome, classify_apns, transport_failure
from sender.h2client import H2Error, H2Pool, Response
from sender.payload import apns_request
from simulator.clock import Clock

if TYPE_CHECKING:
    from sender.dispatcher import Job


@dataclass(frozen=True)
class ApnsCredentials:
    key_id: str
    team_id: str
    bundle_id: str
    private_key_pem: str


class ProviderToken:
    """The cached ``authorization`` header value for APNs token-based auth."""

    MIN_AGE = 20 * 60
    MAX_AGE = 60 * 60

    def __init__(
        self, creds: ApnsCredentials, clock: Clock, refresh_after: float = 40 * 60
    ) -> None:
        if not self.MIN_AGE <= refresh_after < self.MAX_AGE:
            raise ValueError("refresh_after must be between 20 and 60 minutes")
        self.creds = creds
        self.clock = clock
        self.refresh_after = refresh_after
        self._header: bytes = b""
        self._issued_at = 0.0
        self.signed = 0

    def _sign(self, now: float) -> None:
        token = jwt.encode(
            {"iss": self.creds.team_id, "iat": int(now)},
            self.creds.private_key_pem,
            algorithm="ES256",
            headers={"kid": self.creds.key_id},
        )
        self._header = b"bearer " + token.encode()
        self._issued_at = now
        self.signed += 1

    def header(self) -> bytes:
        now = self.clock.time()
        if not self._header or now - self._issued_at >= self.refresh_after:
            self._sign(now)
        return self._header

    def invalidate(self) -> None:
        """Apple said Expired/InvalidProviderToken: sign afresh, unless ours is too young."""
        if self.clock.time() - self._issued_at >= self.MIN_AGE or not self._header:
            self._header = b""

    @property
    def issued_at(self) -> float:
        return self._issued_at


class ApnsClient:
    provider = "apns"

    def __init__(
        self,
        base_url: str,
        creds: ApnsCredentials,
        clock: Clock,
        ssl_context: ssl.SSLContext | None,
        *,
        max_connections: int = 2,
        timeout: float = 15.0,
        sandbox_url: str | None = None,
    ) -> None:
        self.creds = creds
        self.clock = clock
        self.token = ProviderToken(creds, clock)
        self.timeout = timeout
        self.pool = H2Pool(base_url, ssl_context, max_connections=max_connections)
        self.sandbox_pool = (
            H2Pool(sandbox_url, ssl_context, max_connections=1) if sandbox_url else None
        )

    async def send(
        self,
        device_token: str,
        headers: tuple[tuple[bytes, bytes], ...],
        payload: bytes,
        apns_id: str,
        *,
        sandbox: bool = False,
    ) -> tuple[Outcome, Response | None]:
        h = [(b"authorization", self.token.header()), (b"apns-id", apns_id.encode()), *headers]
        pool = self.sandbox_pool if sandbox and self.sandbox_pool is not None else self.pool
        try:
            resp = await pool.request(
                "POST", "/3/device/" + device_token, h, payload, timeout=self.timeout
            )
        except H2Error as exc:
            return transport_failure(str(exc)), None
        outcome = classify_apns(
            resp.status, resp.body, resp.header("retry-after"), self.clock.time()
        )
        if outcome.kind.value == "reauth":
            self.token.invalidate()
        return outcome, resp

    def close(self) -> None:
        self.pool.close()
        if self.sandbox_pool is not None:
            self.sandbox_pool.close()


class ApnsProvider(ApnsClient):
    """The APNs client as the dispatcher drives it: one delivery job at a time."""

    async def deliver(self, job: Job) -> tuple[Outcome, int | None]:
        prep = job.prepared
        req = prep.cache.get("apns")
        if req is None:
            req = prep.cache["apns"] = apns_request(
                prep.message, self.creds.bundle_id, prep.created_at
            )
        target = job.row.target
        sandbox = target is not None and target.get("environment") == "sandbox"
        outcome, resp = await self.send(
            job.row.token, req.headers, req.payload, job.row.message_id, sandbox=sandbox
        )
        return outcome, None if resp is None else resp.status
