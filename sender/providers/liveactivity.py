"""APNs broadcast channels, broadcasts and Live Activity pushes (token auth), for the API.

- :func:`live_activity_payload`: the ``aps`` of a Live Activity event (pure);
- :class:`LiveActivityClient`: channel management on Apple's channel hosts
  (``/1/apps/{bundle}/channels``, ``all-channels``), broadcasts
  (``/4/broadcasts/apps/{bundle}``) and pushes to push-to-start or activity tokens
  (``/3/device/{token}``, ``apns-push-type: liveactivity``, topic
  ``<bundle>.push-type.liveactivity``) on the APNs client's own connections and provider
  token. Each call is retried a few times on answers that say so (Retry-After honoured up
  to :data:`MAX_WAIT` s), and returns what APNs answered last.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sender.policy.classify import Kind, Outcome, classify_apns, transport_failure
from sender.providers.apns import ApnsClient
from sender.providers.payload import compact
from sender.transport.pool import H2Pool
from sender.transport.streams import H2Error

ATTEMPTS = 3
MAX_WAIT = 2.0
LIVE_ACTIVITY_SUFFIX = ".push-type.liveactivity"


def live_activity_payload(
    event: str,
    timestamp: int,
    *,
    content_state: dict[str, Any] | None = None,
    attributes_type: str | None = None,
    attributes: dict[str, Any] | None = None,
    input_push_channel: str | None = None,
    stale_date: int | None = None,
    dismissal_date: int | None = None,
    alert: dict[str, Any] | None = None,
    relevance_score: float | None = None,
    data: Mapping[str, Any] | None = None,
) -> bytes:
    """A Live Activity notification's payload (``aps`` and any custom keys)."""
    aps: dict[str, Any] = {"event": event, "timestamp": timestamp}
    optional: dict[str, Any] = {
        "content-state": content_state,
        "attributes-type": attributes_type if event == "start" else None,
        "attributes": attributes if event == "start" else None,
        "input-push-channel": input_push_channel if event == "start" else None,
        "stale-date": stale_date,
        "dismissal-date": dismissal_date,
        "alert": alert,
        "relevance-score": relevance_score,
    }
    aps.update({k: v for k, v in optional.items() if v is not None})
    payload: dict[str, Any] = {k: v for k, v in (data or {}).items() if k != "aps"}
    payload["aps"] = aps
    return compact(payload)


@dataclass(frozen=True, slots=True)
class Answer:
    """What APNs answered a call: the status, how the sender reads it, and its headers."""

    status: int | None
    outcome: Outcome
    headers: dict[str, str]
    body: Any = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "outcome": self.outcome.kind.value}
        if self.outcome.reason:
            out["reason"] = self.outcome.reason
        return out


class LiveActivityClient:
    """Broadcast channels, broadcasts and Live Activity pushes of one APNs app."""

    def __init__(
        self,
        apns: ApnsClient,
        channel_urls: Mapping[str, str | None],
        ssl_context: ssl.SSLContext | None,
        *,
        timeout: float = 15.0,
    ) -> None:
        self.apns = apns
        self.bundle_id = apns.creds.bundle_id
        self.timeout = timeout
        self.channel_pools = {
            env: H2Pool(url, ssl_context, max_connections=1)
            for env, url in channel_urls.items()
            if url
        }

    def _push_pool(self, environment: str) -> H2Pool:
        sandbox = self.apns.sandbox_pool
        return sandbox if environment == "sandbox" and sandbox is not None else self.apns.pool

    async def _call(
        self,
        pool: H2Pool,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
    ) -> Answer:
        answer = Answer(None, transport_failure("not sent"), {})
        for _ in range(ATTEMPTS):
            try:
                resp = await pool.request(
                    method,
                    path,
                    headers,
                    body,
                    timeout=self.timeout,
                    auth=self.apns.token.header,
                )
            except H2Error as exc:
                answer = Answer(None, transport_failure(str(exc) or type(exc).__name__), {})
                continue
            clock = self.apns.clock
            outcome = classify_apns(
                resp.status, resp.body, resp.header("retry-after"), clock.time()
            )
            if 200 <= resp.status < 300:
                outcome = Outcome(Kind.DELIVERED)
            hdrs = {k.decode("latin-1"): v.decode("latin-1") for k, v in resp.headers.items()}
            answer = Answer(resp.status, outcome, hdrs, _json(resp.body))
            if not outcome.retryable:
                return answer
            await asyncio.sleep(min(outcome.retry_after or 0.1, MAX_WAIT))
        return answer

    # -- channels -----------------------------------------------------------------------

    def _channel_pool(self, environment: str) -> H2Pool:
        pool = self.channel_pools.get(environment)
        if pool is None:
            raise LookupError(f"no APNs channel-management URL for the {environment} environment")
        return pool

    async def create_channel(self, environment: str, storage_policy: int) -> Answer:
        body = compact({"message-storage-policy": storage_policy, "push-type": "LiveActivity"})
        headers = [(b"content-type", b"application/json"), *_request_id()]
        path = f"/1/apps/{self.bundle_id}/channels"
        return await self._call(self._channel_pool(environment), "POST", path, headers, body)

    async def list_channels(self, environment: str) -> Answer:
        path = f"/1/apps/{self.bundle_id}/all-channels"
        return await self._call(self._channel_pool(environment), "GET", path, _request_id())

    async def delete_channel(self, environment: str, channel_id: str) -> Answer:
        headers = [(b"apns-channel-id", channel_id.encode()), *_request_id()]
        path = f"/1/apps/{self.bundle_id}/channels"
        return await self._call(self._channel_pool(environment), "DELETE", path, headers)

    # -- sends ------------------------------------------------------------------------------

    async def broadcast(
        self,
        environment: str,
        channel_id: str,
        payload: bytes,
        *,
        priority: int = 10,
        expiration: int | None = None,
    ) -> Answer:
        headers = [
            (b"apns-channel-id", channel_id.encode()),
            (b"apns-push-type", b"liveactivity"),
            (b"apns-priority", str(priority).encode()),
            *_request_id(),
        ]
        if expiration is not None:
            headers.append((b"apns-expiration", str(expiration).encode()))
        path = f"/4/broadcasts/apps/{self.bundle_id}"
        return await self._call(self._push_pool(environment), "POST", path, headers, payload)

    async def push(
        self,
        environment: str,
        token: str,
        payload: bytes,
        *,
        priority: int = 10,
        expiration: int | None = None,
    ) -> Answer:
        headers = [
            (b"apns-id", str(uuid.uuid4()).encode()),
            (b"apns-push-type", b"liveactivity"),
            (b"apns-topic", (self.bundle_id + LIVE_ACTIVITY_SUFFIX).encode()),
            (b"apns-priority", str(priority).encode()),
        ]
        if expiration is not None:
            headers.append((b"apns-expiration", str(expiration).encode()))
        path = "/3/device/" + token
        return await self._call(self._push_pool(environment), "POST", path, headers, payload)

    def close(self) -> None:
        for pool in self.channel_pools.values():
            pool.close()


def _request_id() -> list[tuple[bytes, bytes]]:
    return [(b"apns-request-id", str(uuid.uuid4()).encode())]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
