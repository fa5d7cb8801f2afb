"""Web Push: RFC 8291 message encryption (aes128gcm), RFC 8292 VAPID, and the transport.

Each message gets a fresh ephemeral P-256 key and salt. The VAPID JWT for a push service's
origin is signed once and reused for ``vapid_lifetime`` (well inside its 24-hour ``exp``).
The body goes over HTTP/2 when the endpoint's TLS handshake offers ``h2`` and over
HTTP/1.1 (aiohttp) otherwise.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import os
import ssl
import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pushsim.b64 import b64url_decode
from pushsim.clock import Clock
from sender.policy.classify import Kind, Outcome, classify_webpush, transport_failure
from sender.providers.job import DeliveryJob
from sender.providers.payload import webpush_headers, webpush_plaintext
from sender.transport.h2client import ConnectionLost, H2Error, H2Pool

RECORD_SIZE = 4096


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA256 for outputs of at most one hash (32 bytes): extract, then one
    expand block. Two C-level HMACs, without building a KDF object per derivation."""
    prk = hmac.digest(salt, ikm, "sha256")
    return hmac.digest(prk, info + b"\x01", "sha256")[:length]


@dataclass(frozen=True, slots=True)
class SubscriptionKeys:
    """A subscription's decoded keys: parsed once per subscription, not per message."""

    ua_public: bytes
    ua_key: ec.EllipticCurvePublicKey
    auth_secret: bytes
    key_info_prefix: bytes  # "WebPush: info" 0x00 || ua_public


@functools.lru_cache(maxsize=8192)
def subscription_keys(p256dh: str, auth: str) -> SubscriptionKeys:
    """Decode and validate a subscription's ``p256dh`` point and ``auth`` secret (cached)."""
    ua_public = b64url_decode(p256dh)
    auth_secret = b64url_decode(auth)
    ua_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public)
    return SubscriptionKeys(ua_public, ua_key, auth_secret, b"WebPush: info\x00" + ua_public)


_CURVE = ec.SECP256R1()
_ECDH = ec.ECDH()
_X962 = serialization.Encoding.X962
_UNCOMPRESSED = serialization.PublicFormat.UncompressedPoint
_HEADER_TAIL = struct.pack("!IB", RECORD_SIZE, 65)
_CEK_INFO = b"Content-Encoding: aes128gcm\x00\x01"
_NONCE_INFO = b"Content-Encoding: nonce\x00\x01"


def encrypt(
    plaintext: bytes,
    p256dh: str,
    auth: str,
    *,
    salt: bytes | None = None,
    private_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """RFC 8291 aes128gcm: one record, header salt || rs || idlen || as_public.

    Each message gets a fresh ephemeral key and salt (the ECDH is the real cost); the
    subscription's point is parsed once (:func:`subscription_keys`), and the three HKDF
    derivations are plain HMACs (cek and nonce share one pseudorandom key).
    """
    keys = subscription_keys(p256dh, auth)
    salt = salt if salt is not None else os.urandom(16)
    as_private = private_key or ec.generate_private_key(_CURVE)
    as_public = as_private.public_key().public_bytes(_X962, _UNCOMPRESSED)
    ecdh_secret = as_private.exchange(_ECDH, keys.ua_key)
    ikm = _hkdf(keys.auth_secret, ecdh_secret, keys.key_info_prefix + as_public, 32)
    prk = hmac.digest(salt, ikm, "sha256")
    cek = hmac.digest(prk, _CEK_INFO, "sha256")[:16]
    nonce = hmac.digest(prk, _NONCE_INFO, "sha256")[:12]
    ciphertext = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)
    return b"".join((salt, _HEADER_TAIL, as_public, ciphertext))


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
    ) -> None:
        self.clock = clock
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
        plaintext = prep.cache.get("webpush")
        if plaintext is None:
            plaintext = prep.cache["webpush"] = webpush_plaintext(prep.message)
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
        status: int
        resp_body: bytes
        retry_after: str | None
        try:
            if origin in self.http1_origins or scheme != "https":
                if job.before_send is not None:
                    job.before_send()
                status, resp_body, retry_after = await self._post_h1(endpoint, headers, body)
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
                    status, resp_body, retry_after = (
                        resp.status,
                        resp.body,
                        resp.header("retry-after"),
                    )
                except ConnectionLost as exc:
                    if "does not offer h2" not in str(exc):
                        raise
                    self.http1_origins.add(origin)
                    self.pools.pop(origin).close()
                    if job.before_send is not None:
                        job.before_send()
                    status, resp_body, retry_after = await self._post_h1(endpoint, headers, body)
        except (H2Error, aiohttp.ClientError, TimeoutError, OSError) as exc:
            return transport_failure(str(exc) or type(exc).__name__), None
        outcome = classify_webpush(status, resp_body, retry_after, self.clock.time())
        if outcome.kind.value == "reauth":
            self.vapid.invalidate(origin)
        return outcome, status

    async def _post_h1(
        self, url: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes, str | None]:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._h1_ssl if self._h1_ssl else False, limit=0)
            self._session = aiohttp.ClientSession(connector=connector)
        h = {k.decode(): v.decode() for k, v in headers}
        async with self._session.post(
            url, data=body, headers=h, timeout=aiohttp.ClientTimeout(total=self.timeout)
        ) as resp:
            return resp.status, await resp.read(), resp.headers.get("retry-after")

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()
        if self._session is not None:
            session, self._session = self._session, None
            try:
                asyncio.get_running_loop().create_task(session.close())
            except RuntimeError:
                pass
