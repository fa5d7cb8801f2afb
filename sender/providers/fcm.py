"""FCM HTTP v1: the OAuth2 access token (JWT-bearer grant) and ``messages:send`` over HTTP/2.

:class:`AccessToken` signs an RS256 assertion with the service-account key, exchanges it at
the file's ``token_uri`` and caches the access token until ``refresh_margin`` seconds before
it expires; concurrent callers share one fetch. A 401 from FCM invalidates it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt

from pushsim.clock import Clock
from sender.policy.classify import Kind, Outcome, classify_fcm, transport_failure
from sender.providers.job import DeliveryJob
from sender.providers.payload import compact, fcm_message
from sender.transport.pool import H2Pool
from sender.transport.streams import H2Error

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class OAuthError(Exception):
    pass


class IidError(Exception):
    """The Instance ID API refused a topic subscription call as a whole."""


IID_BATCH = 1000  # registration tokens per batchAdd call


class AccessToken:
    def __init__(
        self,
        service_account: dict[str, Any],
        clock: Clock,
        ssl_context: ssl.SSLContext | None,
        *,
        refresh_margin: float = 300.0,
    ) -> None:
        self.sa = service_account
        self.clock = clock
        self.ssl_context = ssl_context
        self.refresh_margin = refresh_margin
        self._header: bytes = b""
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._fetch: asyncio.Task[None] | None = None
        self.fetched = 0
        self._pool: H2Pool | None = None

    def assertion(self, now: float) -> str:
        claims = {
            "iss": self.sa["client_email"],
            "scope": SCOPE,
            "aud": self.sa["token_uri"],
            "iat": int(now),
            "exp": int(now) + 3600,
        }
        headers = {"kid": self.sa["private_key_id"]} if self.sa.get("private_key_id") else None
        return jwt.encode(claims, self.sa["private_key"], algorithm="RS256", headers=headers)

    async def _exchange(self) -> None:
        now = self.clock.time()
        form = urlencode({"grant_type": JWT_BEARER, "assertion": self.assertion(now)}).encode()
        parts = urlsplit(self.sa["token_uri"])
        if self._pool is None:
            self._pool = H2Pool(
                f"{parts.scheme}://{parts.netloc}", self.ssl_context, max_connections=1
            )
        resp = await self._pool.request(
            "POST",
            parts.path + (f"?{parts.query}" if parts.query else ""),
            [(b"content-type", b"application/x-www-form-urlencoded")],
            form,
            timeout=10.0,
        )
        if resp.status != 200:
            raise OAuthError(f"token endpoint answered {resp.status}: {resp.body[:200]!r}")
        doc = json.loads(resp.body)
        self._header = b"Bearer " + str(doc["access_token"]).encode()
        lifetime = max(0.0, float(doc.get("expires_in", 3600)))
        self._expires_at = now + lifetime
        # Refresh ``refresh_margin`` early, or after four fifths of a short-lived token.
        self._refresh_at = now + max(lifetime - self.refresh_margin, 0.8 * lifetime)
        self.fetched += 1

    async def header(self) -> bytes:
        if self._header and self.clock.time() < self._refresh_at:
            return self._header
        if self._fetch is None or self._fetch.done():
            self._fetch = asyncio.ensure_future(self._exchange())
        task = self._fetch
        await asyncio.shield(task)
        return self._header

    def invalidate(self, rejected: bytes | None = None) -> None:
        """Fetch afresh on next use (only if ``rejected`` is still the token in use)."""
        if rejected is None or rejected == self._header:
            self._header = b""


class FcmProvider:
    provider = "fcm"

    def __init__(
        self,
        base_url: str,
        service_account: dict[str, Any],
        clock: Clock,
        ssl_context: ssl.SSLContext | None,
        *,
        max_connections: int = 2,
        timeout: float = 15.0,
    ) -> None:
        self.clock = clock
        self.project = service_account["project_id"]
        self.path = f"/v1/projects/{self.project}/messages:send"
        self.token = AccessToken(service_account, clock, ssl_context)
        self.pool = H2Pool(base_url, ssl_context, max_connections=max_connections)
        self.timeout = timeout

    def body(self, job: DeliveryJob) -> bytes:
        target = job.row.target or {}
        topic = target.get("topic")
        by_fid = bool(target.get("fid"))
        msg = fcm_message(
            job.prepared.message,
            token=None if topic or by_fid else job.row.token,
            topic=topic,
            fid=job.row.token if by_fid else None,
        )
        # The delivery's stable id rides along so a retried message is recognisable.
        msg["fcm_options"] = {"analytics_label": job.row.message_id}
        return compact({"message": msg})

    async def deliver(self, job: DeliveryJob) -> tuple[Outcome, int | None]:
        try:
            auth = await self.token.header()
        except (OAuthError, H2Error, OSError, ValueError, KeyError) as exc:
            return Outcome(Kind.RETRY, f"oauth: {exc}"[:200]), None
        headers = [(b"authorization", auth), (b"content-type", b"application/json; UTF-8")]
        try:
            resp = await self.pool.request(
                "POST",
                self.path,
                headers,
                self.body(job),
                timeout=self.timeout,
                before_send=job.before_send,
            )
        except H2Error as exc:
            return transport_failure(str(exc)), None
        outcome = classify_fcm(
            resp.status, resp.body, resp.header("retry-after"), self.clock.time()
        )
        if outcome.kind is Kind.REAUTH:
            self.token.invalidate(auth)
        return outcome, resp.status

    async def subscribe(self, topic: str, tokens: list[str]) -> list[str]:
        """Add ``tokens`` to ``topic`` with the Instance ID API (``/iid/v1:batchAdd``, 1,000
        a call); one entry per token: "" when subscribed, else the error it got."""
        out: list[str] = []
        for i in range(0, len(tokens), IID_BATCH):
            batch = tokens[i : i + IID_BATCH]
            auth = await self.token.header()
            body = compact({"to": "/topics/" + topic, "registration_tokens": batch})
            resp = await self.pool.request(
                "POST",
                "/iid/v1:batchAdd",
                [
                    (b"authorization", auth),
                    (b"access_token_auth", b"true"),
                    (b"content-type", b"application/json"),
                ],
                body,
                timeout=self.timeout,
            )
            if resp.status == 401:
                self.token.invalidate(auth)
            if resp.status != 200:
                raise IidError(f"batchAdd answered {resp.status}: {resp.body[:200]!r}")
            try:
                results = json.loads(resp.body)["results"]
            except (ValueError, KeyError, TypeError) as exc:
                raise IidError(f"batchAdd answered an unreadable body: {exc}") from exc
            if not isinstance(results, list) or len(results) != len(batch):
                raise IidError("batchAdd answered a result count unlike the tokens sent")
            for r in results:
                err = r.get("error") if isinstance(r, dict) else "unreadable result"
                out.append(str(err) if err else "")
        return out

    def close(self) -> None:
        self.pool.close()
        if self.token._pool is not None:
            self.token._pool.close()
