"""Web Push message encryption: RFC 8291 aes128gcm, one record per message.

Each message gets a fresh ephemeral P-256 key and salt; a subscription's keys are decoded
once and cached.
"""

from __future__ import annotations

import functools
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pushsim.b64 import b64url_decode

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
