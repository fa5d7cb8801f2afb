"""APNs: the provider token (ES256 JWT from the .p8 key) and the HTTP/2 client.

One :class:`ProviderToken` is shared by every connection: it is signed once and reused
until it is ``refresh_after`` old (between 20 and 60 minutes, as Apple requires: older than
an hour is ExpiredProviderToken, newer than 20 minutes on a connection is
TooManyProviderTokenUpdates).

When APNs answers ExpiredProviderToken / InvalidProviderToken for the token in use, a
fresh one is signed at once; an ExpiredProviderToken also teaches the token its real
maximum age, and from then on it is refreshed well before that age. Each connection
carries one token: requests with a newer token go to connections that carry it (or to a
fresh connection), and a connection that could not take the new token yet is retired
gracefully (the pool's tags). TooManyProviderTokenUpdates retires the connection that
answered it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import jwt

from pushsim.clock import Clock
from sender.config.settings import ApnsCredentials
from sender.policy.classify import Kind, Outcome, classify_apns, transport_failure
from sender.providers.job import DeliveryJob
from sender.providers.payload import apns_request
from sender.transport.pool import H2Pool
from sender.transport.streams import H2Error, Response


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
        self._signed_at = -1e18  # our clock when the current token was signed
        self.signed = 0
        self.observed_max_age: float | None = None

    def _sign(self, now: float) -> None:
        iat = int(now)
        token = jwt.encode(
            {"iss": self.creds.team_id, "iat": iat},
            self.creds.private_key_pem,
            algorithm="ES256",
            headers={"kid": self.creds.key_id},
        )
        self._header = b"bearer " + token.encode()
        self._issued_at = float(iat)  # the provider measures age from iat
        self._signed_at = now
        self.signed += 1

    def header(self) -> bytes:
        now = self.clock.time()
        if not self._header or now - self._issued_at >= self.refresh_after:
            self._sign(now)
        return self._header

    def invalidate(self) -> None:
        """Sign afresh on next use."""
        self._header = b""

    def rejected(self, header: bytes, reason: str) -> bool:
        """APNs refused ``header`` with Expired/InvalidProviderToken; True if re-signed.

        Only the token in use is replaced (a burst of answers for an old token costs one
        signature). ExpiredProviderToken shows the provider's real maximum age (at most the
        rejected token's age): refreshes move to three quarters of it. An invalid fresh
        token is re-signed at most once a second.
        """
        if header != self._header:
            return False
        now = self.clock.time()
        age = now - self._issued_at
        if reason == "ExpiredProviderToken":
            limit = max(1.0, age - 1.0)
            if self.observed_max_age is None or limit < self.observed_max_age:
                self.observed_max_age = limit
            self.refresh_after = min(self.refresh_after, max(0.5, 0.75 * limit))
        elif now - self._signed_at < 1.0:
            return False
        self._header = b""
        return True

    @property
    def issued_at(self) -> float:
        return self._issued_at


class ApnsClient:
    provider = "apns"
    TOKEN_UPDATE_INTERVAL = 20 * 60 + 60.0  # Apple's 20 minutes, and a minute to spare

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
        # A connection keeps its provider token: APNs refuses a change sooner than 20 min.
        self.pool = H2Pool(
            base_url,
            ssl_context,
            max_connections=max_connections,
            tag_min_interval=self.TOKEN_UPDATE_INTERVAL,
        )
        self.sandbox_pool = (
            H2Pool(
                sandbox_url,
                ssl_context,
                max_connections=1,
                tag_min_interval=self.TOKEN_UPDATE_INTERVAL,
            )
            if sandbox_url
            else None
        )

    async def send(
        self,
        device_token: str,
        headers: tuple[tuple[bytes, bytes], ...],
        payload: bytes,
        apns_id: str,
        *,
        sandbox: bool = False,
        before_send: Callable[[], None] | None = None,
    ) -> tuple[Outcome, Response | None]:
        h = [(b"apns-id", apns_id.encode()), *headers]
        pool = self.sandbox_pool if sandbox and self.sandbox_pool is not None else self.pool
        used = b""

        def auth() -> bytes:
            nonlocal used
            used = self.token.header()
            return used

        try:
            resp = await pool.request(
                "POST",
                "/3/device/" + device_token,
                h,
                payload,
                timeout=self.timeout,
                auth=auth,
                before_send=before_send,
            )
        except H2Error as exc:
            return transport_failure(str(exc)), None
        outcome = classify_apns(
            resp.status, resp.body, resp.header("retry-after"), self.clock.time()
        )
        if outcome.kind is Kind.REAUTH:
            if outcome.reason == "TooManyProviderTokenUpdates":
                if resp.connection is not None:
                    pool.retire(resp.connection)
            else:
                self.token.rejected(used, outcome.reason)
        return outcome, resp

    def close(self) -> None:
        self.pool.close()
        if self.sandbox_pool is not None:
            self.sandbox_pool.close()


class ApnsProvider(ApnsClient):
    """The APNs client as the dispatcher drives it: one delivery job at a time."""

    async def deliver(self, job: DeliveryJob) -> tuple[Outcome, int | None]:
        prep = job.prepared
        req = prep.cache.get("apns")
        if req is None:
            req = prep.cache["apns"] = apns_request(
                prep.message, self.creds.bundle_id, prep.created_at, prep.cache.get("apns_payload")
            )
        target = job.row.target
        sandbox = target is not None and target.get("environment") == "sandbox"
        outcome, resp = await self.send(
            job.row.token,
            req.headers,
            req.payload,
            job.row.message_id,
            sandbox=sandbox,
            before_send=job.before_send,
        )
        return outcome, None if resp is None else resp.status
