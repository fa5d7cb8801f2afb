"""Web Push: RFC 8292 VAPID and the transport; the body is encrypted by
:mod:`sender.providers.webpush_crypto` (RFC 8291).

The VAPID JWT for a push service's
origin is signed once and reused for ``vapid_lifetime`` (well inside its 24-hour ``exp``).
The body goes over HTTP/2 when the endpoint's TLS handshake offers ``h2`` and over
HTTP/1.1 (aiohttp) otherwise.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt

from pushsim.clock import Clock
from sender.policy.classify import Kind, Outcome, classify_webpush, transport_failure
from sender.providers.job import DeliveryJob
from sender.providers.payload import declarative_for, webpush_headers, webpush_plaintext
from sender.providers.webpush_crypto import encrypt
from sender.providers.webpush_receipts import ReceiptCollector, Request
from sender.transport.pool import H2Pool
from sender.transport.streams import ConnectionLost, H2Error


@functools.lru_cache(maxsize=8192)
def split_endpoint(endpoint: str) -> tuple[str, str, str]:
    """(scheme, origin, path with query) of a push endpoint, parsed once per endpoint."""
    parts = urlsplit(endpoint)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, f"{parts.scheme}://{parts.netloc}", path


class Vapid:
    """Signs and caches the ``authorization`` header per push-service origin."""

    def __init__(self, keys: dict[str, Any], clock: Clock, *, lifetime: float = 3600.0) -> None:
        self.private_key_pem = keys["private_key"]
        self.public_key = keys["public_key"]
        self.subject = keys.get("subject") or "mailto:ops@example.com"
        self.clock = clock
        self.lifetime = lifetime
        self._cache: dict[str, tuple[float, bytes]] = {}
        self.signed = 0

    def header(self, origin: str) -> bytes:
        now = self.clock.time()
        hit = self._cache.get(origin)
        if hit is not None and now < hit[0]:
            return hit[1]
        exp = int(now) + 12 * 3600
        token = jwt.encode(
            {"aud": origin, "exp": exp, "sub": self.subject},
            self.private_key_pem,
            algorithm="ES256",
            headers={"typ": "JWT"},
        )
        value = f"vapid t={token}, k={self.public_key}".encode()
        self._cache[origin] = (now + self.lifetime, value)
        self.signed += 1
        return value

    def invalidate(self, origin: str) -> None:
        self._cache.pop(origin, None)


class WebPushProvider:
    provider = "webpush"

    def __init__(
        self,
        vapid_keys: dict[str, Any],
        clock: Clock,
        ssl_context: ssl.SSLContext | None,
        *,
        max_connections: int = 2,
        timeout: float = 15.0,
        ca_file: str | None = None,
        receipts: Callable[[Request], ReceiptCollector] | None = None,
    ) -> None:
        self.clock = clock
        # RFC 8030 receipts, asked for when configured (sender.providers.webpush_receipts)
        self.receipts = receipts(self._plain_request) if receipts is not None else None
        self.vapid = Vapid(vapid_keys, clock)
        self.ssl_context = ssl_context
        self.max_connections = max_connections
        self.timeout = timeout
        self.pools: dict[str, H2Pool] = {}
        self.http1_origins: set[str] = set()
        self._session: aiohttp.ClientSession | None = None
        self._h1_ssl: ssl.SSLContext | None = None
        if ssl_context is not None:
            # Same trust, but offering only HTTP/1.1 for the aiohttp fallback.
            self._h1_ssl = ssl.create_default_context(cafile=ca_file)
            if ca_file is None:
                self._h1_ssl = ssl_context

    def _body(self, job: DeliveryJob) -> bytes:
        prep = job.prepared
        # Safari's push service (or a message that asks) gets a Declarative Web Push body
        declarative = declarative_for(prep.message, job.row.token)
        key = "webpush_declarative" if declarative else "webpush"
        plaintext = prep.cache.get(key)
        if plaintext is None:
            plaintext = prep.cache[key] = webpush_plaintext(prep.message, declarative)
        sub = job.row.target or {}
        keys = sub.get("keys") or {}
        return encrypt(plaintext, keys["p256dh"], keys["auth"])

    async def deliver(self, job: DeliveryJob) -> tuple[Outcome, int | None]:
        endpoint = job.row.token
        scheme, origin, path = split_endpoint(endpoint)
        try:
            body = self._body(job)
        except (KeyError, ValueError) as exc:
            return Outcome(Kind.PERMANENT, f"bad subscription keys: {exc}"), None
        cache = job.prepared.cache
        message_headers = cache.get("webpush_headers")
        if message_headers is None:
            message_headers = cache["webpush_headers"] = [
                (b"content-encoding", b"aes128gcm"),
                (b"content-type", b"application/octet-stream"),
                *webpush_headers(job.prepared.message),
            ]
        headers = [(b"authorization", self.vapid.header(origin)), *message_headers]
        if self.receipts is not None:
            headers += await self.receipts.headers(origin)
        status: int
        resp_body: bytes
        retry_after: str | None
        location: str | None
        try:
            if origin in self.http1_origins or scheme != "https":
                if job.before_send is not None:
                    job.before_send()
                status, resp_body, retry_after, location = await self._post_h1(
                    endpoint, headers, body
                )
            else:
                try:
                    pool = self.pools.get(origin)
                    if pool is None:
                        pool = self.pools[origin] = H2Pool(
                            origin, self.ssl_context, max_connections=self.max_connections
                        )
                    resp = await pool.request(
                        "POST",
                        path,
                        headers,
                        body,
                        timeout=self.timeout,
                        before_send=job.before_send,
                    )
                    status, resp_body, retry_after, location = (
                        resp.status,
                        resp.body,
                        resp.header("retry-after"),
                        resp.header("location"),
                    )
                except ConnectionLost as exc:
                    if "does not offer h2" not in str(exc):
                        raise
                    self.http1_origins.add(origin)
                    self.pools.pop(origin).close()
                    if job.before_send is not None:
                        job.before_send()
                    status, resp_body, retry_after, location = await self._post_h1(
                        endpoint, headers, body
                    )
        except (H2Error, aiohttp.ClientError, TimeoutError, OSError) as exc:
            return transport_failure(str(exc) or type(exc).__name__), None
        if self.receipts is not None:
            self.receipts.sent(status, location, job.row.notification_id, endpoint)
        outcome = classify_webpush(status, resp_body, retry_after, self.clock.time())
        if outcome.kind.value == "reauth":
            self.vapid.invalidate(origin)
        return outcome, status

    def _h1_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._h1_ssl if self._h1_ssl else False, limit=0)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def _post_h1(
        self, url: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes, str | None, str | None]:
        h = {k.decode(): v.decode() for k, v in headers}
        async with self._h1_session().post(
            url, data=body, headers=h, timeout=aiohttp.ClientTimeout(total=self.timeout)
        ) as resp:
            hdrs = resp.headers
            return resp.status, await resp.read(), hdrs.get("retry-after"), hdrs.get("location")

    async def _plain_request(
        self, origin: str, method: str, path: str
    ) -> tuple[int, dict[str, str], bytes]:
        """A bodiless request to a push service (receipt subscriptions)."""
        if origin in self.http1_origins or not origin.startswith("https"):
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with self._h1_session().request(method, origin + path, timeout=timeout) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()
        pool = self.pools.get(origin)
        if pool is None:
            pool = self.pools[origin] = H2Pool(
                origin, self.ssl_context, max_connections=self.max_connections
            )
        resp = await pool.request(method, path, [], b"", timeout=self.timeout)
        hdrs = {k.decode("latin-1"): v.decode("latin-1") for k, v in resp.headers.items()}
        return resp.status, hdrs, resp.body

    def close(self) -> None:
        if self.receipts is not None:
            self.receipts.close()
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()
        if self._session is not None:
            session, self._session = self._session, None
            try:
                asyncio.get_running_loop().create_task(session.close())
            except RuntimeError:
                pass
