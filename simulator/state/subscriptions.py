"""The browser side of a Web Push subscription, derived on demand and never stored.

A subscription's P-256 key pair and 16-byte auth secret are a keyed function of the device's
number and generation (HMAC-SHA256 under a key derived from the population's token key), so
a million subscriptions cost no key material until one is used: minting, reading a device,
decrypting a message. The last :data:`CACHE_SIZE` derived keys are kept (an EC key object is
about 1 KB; deriving one costs one scalar multiplication, ~50-100 us).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections import OrderedDict
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushsim.b64 import b64url

CACHE_SIZE = 4096
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_WHO = struct.Struct(">QI")


@dataclass(slots=True)
class WebPushKeys:
    """The browser side of a subscription: the private key and auth secret it keeps."""

    private_key: ec.EllipticCurvePrivateKey
    p256dh: str  # base64url uncompressed public point
    auth: str  # base64url 16-byte secret
    application_server_key: str | None = None  # VAPID key the subscription is bound to


class SubscriptionKeys:
    """Each subscription's keys from (number, generation), with a bounded cache."""

    def __init__(self, token_key: bytes, cache_size: int = CACHE_SIZE) -> None:
        self._key = hashlib.sha256(token_key + b"webpush-keys").digest()
        self._cache: OrderedDict[tuple[int, int], WebPushKeys] = OrderedDict()
        self._size = cache_size

    def keys(self, number: int, generation: int, application_server_key: str | None) -> WebPushKeys:
        who = (number, generation)
        found = self._cache.get(who)
        if found is not None:
            self._cache.move_to_end(who)
            return found
        found = self._derive(number, generation, application_server_key)
        self._cache[who] = found
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return found

    def _derive(self, number: int, generation: int, ask: str | None) -> WebPushKeys:
        who = _WHO.pack(number, generation)
        secret = hmac.digest(self._key, b"p256" + who, "sha256")
        scalar = int.from_bytes(secret, "big") % (_P256_ORDER - 1) + 1
        key = ec.derive_private_key(scalar, ec.SECP256R1())
        pub = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        auth = hmac.digest(self._key, b"auth" + who, "sha256")[:16]
        return WebPushKeys(key, b64url(pub), b64url(auth), ask)
