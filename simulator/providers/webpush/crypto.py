"""Web Push message encryption, the browser's side: decrypting what a sender encrypted.

Two content codings are understood:

- ``aes128gcm`` (RFC 8188 + RFC 8291), the standard: the body starts with a header
  ``salt(16) | rs(4) | idlen(1) | keyid(idlen)`` where keyid is the application server's
  ephemeral P-256 public key (65 bytes), followed by exactly one record;
- ``aesgcm`` (draft-ietf-webpush-encryption-04), the legacy coding older senders still
  use: the salt travels in ``Encryption: salt=...`` and the ephemeral key in
  ``Crypto-Key: dh=...``; records carry a two-byte padding-length prefix.

Every failure raises :class:`DecryptError` with a message naming what was wrong, which
the push service returns in its 400 answer.

The ECDH step dominates the cost of a decryption. Its result (the input keying material,
which depends only on the subscription's keys and the sender's ephemeral public key) is
cached per (subscription key, ephemeral key); a sender that reuses its ephemeral key pair,
as a benchmark replaying one body does, pays for ECDH once. Senders that follow RFC 8291
generate a fresh key per message and gain nothing from the cache, and lose nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pushsim.b64 import b64url_decode

AES128GCM = "aes128gcm"
AESGCM_LEGACY = "aesgcm"
TAG_LEN = 16
KEY_LEN = 65  # uncompressed P-256 point
HEADER_MIN = 16 + 4 + 1

_WEBPUSH_INFO = b"WebPush: info\x00"
_CEK_INFO = b"Content-Encoding: aes128gcm\x00\x01"
_NONCE_INFO = b"Content-Encoding: nonce\x00\x01"
_LEGACY_AUTH_INFO = b"Content-Encoding: auth\x00\x01"


class DecryptError(ValueError):
    """The body does not decrypt; the message says why, for the sender's benefit."""


@dataclass(frozen=True, slots=True)
class ReceiverKeys:
    """What the browser holds for one subscription."""

    private_key: ec.EllipticCurvePrivateKey
    public_bytes: bytes  # 65-byte uncompressed point (p256dh)
    auth_secret: bytes  # 16 bytes

    @classmethod
    def from_private(
        cls, private_key: ec.EllipticCurvePrivateKey, auth_secret: bytes
    ) -> ReceiverKeys:
        pub = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return cls(private_key, pub, auth_secret)


@dataclass(frozen=True, slots=True)
class Decrypted:
    plaintext: bytes
    encoding: str
    record_size: int
    sender_public_key: bytes  # the application server's ephemeral key (keyid / dh)
    salt: bytes


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, hashlib.sha256)


def _load_point(raw: bytes, what: str) -> ec.EllipticCurvePublicKey:
    if len(raw) != KEY_LEN or raw[0] != 4:
        raise DecryptError(
            f"{what} is {len(raw)} bytes; expected a 65-byte uncompressed P-256 point "
            "(0x04 || X || Y)"
        )
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as exc:
        raise DecryptError(f"{what} is not a point on the P-256 curve") from exc


class IkmCache:
    """ECDH results per (receiver public key, sender public key, coding), bounded in size."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[tuple[bytes, bytes, str], bytes] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[bytes, bytes, str]) -> bytes | None:
        ikm = self._entries.get(key)
        if ikm is None:
            self.misses += 1
        else:
            self.hits += 1
        return ikm

    def put(self, key: tuple[bytes, bytes, str], ikm: bytes) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = ikm


def _ecdh(receiver: ReceiverKeys, sender_pub: bytes, what: str) -> bytes:
    peer = _load_point(sender_pub, what)
    return receiver.private_key.exchange(ec.ECDH(), peer)


def _aes128gcm_ikm(receiver: ReceiverKeys, sender_pub: bytes, cache: IkmCache | None) -> bytes:
    ck = (receiver.public_bytes + receiver.auth_secret, sender_pub, AES128GCM)
    if cache is not None:
        hit = cache.get(ck)
        if hit is not None:
            return hit
    secret = _ecdh(receiver, sender_pub, "keyid (the application server's public key)")
    # RFC 8291 section 3.3: PRK_key = HMAC(auth, ecdh); IKM = HMAC(PRK_key, info || 0x01)
    prk_key = _hmac(receiver.auth_secret, secret)
    ikm = _hmac(prk_key, _WEBPUSH_INFO + receiver.public_bytes + sender_pub + b"\x01")
    if cache is not None:
        cache.put(ck, ikm)
    return ikm


def decrypt_aes128gcm(
    body: bytes, receiver: ReceiverKeys, cache: IkmCache | None = None
) -> Decrypted:
    """RFC 8291: one aes128gcm record keyed from the subscription's keys."""
    if len(body) < HEADER_MIN:
        raise DecryptError(
            f"body is {len(body)} bytes, shorter than the 21-byte aes128gcm header "
            "(salt 16 | rs 4 | idlen 1)"
        )
    salt = body[:16]
    (rs,) = struct.unpack_from(">I", body, 16)
    idlen = body[20]
    if idlen != KEY_LEN:
        raise DecryptError(
            f"aes128gcm header idlen is {idlen}; Web Push needs keyid = the application "
            "server's 65-byte uncompressed P-256 public key (RFC 8291 section 4)"
        )
    if len(body) < HEADER_MIN + idlen:
        raise DecryptError("body ends inside the aes128gcm header's keyid")
    keyid = body[HEADER_MIN : HEADER_MIN + idlen]
    if rs < 18:
        raise DecryptError(f"aes128gcm record size rs={rs} is below the minimum of 18")
    ciphertext = body[HEADER_MIN + idlen :]
    if len(ciphertext) < TAG_LEN + 1:
        raise DecryptError(
            f"aes128gcm record is {len(ciphertext)} bytes; a record holds at least a "
            "padding delimiter and a 16-byte tag"
        )
    if len(ciphertext) > rs:
        raise DecryptError(
            f"aes128gcm content ({len(ciphertext)} bytes) is longer than the record size "
            f"rs={rs}: Web Push messages must be a single record (RFC 8291 section 4)"
        )
    ikm = _aes128gcm_ikm(receiver, keyid, cache)
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, _CEK_INFO)[:16]
    nonce = _hmac(prk, _NONCE_INFO)[:12]
    try:
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
    except InvalidTag as exc:
        raise DecryptError(
            "aes128gcm decryption failed (authentication tag mismatch): the message was not "
            "encrypted to this subscription's p256dh/auth keys, or the key derivation is wrong"
        ) from exc
    end = len(padded) - 1
    while end >= 0 and padded[end] == 0:
        end -= 1
    if end < 0:
        raise DecryptError("aes128gcm record has no padding delimiter (all zero bytes)")
    if padded[end] != 2:
        raise DecryptError(
            f"aes128gcm padding delimiter is 0x{padded[end]:02x}; the single (last) record "
            "must end its content with 0x02"
        )
    return Decrypted(padded[:end], AES128GCM, rs, keyid, salt)


def _header_params(value: str) -> dict[str, str]:
    """``a=1;b=2, c=3`` -> {"a": "1", ...} (Encryption / Crypto-Key syntax, lenient)."""
    out: dict[str, str] = {}
    for part in value.replace(",", ";").split(";"):
        name, sep, val = part.strip().partition("=")
        if sep:
            out.setdefault(name.strip().lower(), val.strip().strip('"'))
    return out


def _b64(value: str, what: str) -> bytes:
    try:
        return b64url_decode(value.replace("+", "-").replace("/", "_").rstrip("="))
    except (ValueError, TypeError) as exc:
        raise DecryptError(f"{what} is not valid base64url") from exc


def decrypt_aesgcm(
    body: bytes,
    encryption: str | None,
    crypto_key: str | None,
    receiver: ReceiverKeys,
    cache: IkmCache | None = None,
) -> Decrypted:
    """Legacy ``aesgcm``: salt from ``Encryption``, sender key from ``Crypto-Key: dh=``."""
    salt, rs, sender_pub = _aesgcm_params(encryption, crypto_key)
    cache_key = (receiver.public_bytes + receiver.auth_secret, sender_pub, AESGCM_LEGACY)
    ikm = cache.get(cache_key) if cache is not None else None
    if ikm is None:
        secret = _ecdh(receiver, sender_pub, "Crypto-Key dh")
        # HKDF(salt=auth, ikm=ecdh, info="Content-Encoding: auth\0", L=32)
        ikm = _hmac(_hmac(receiver.auth_secret, secret), _LEGACY_AUTH_INFO)
        if cache is not None:
            cache.put(cache_key, ikm)
    context = (
        b"P-256\x00"
        + struct.pack(">H", len(receiver.public_bytes))
        + receiver.public_bytes
        + struct.pack(">H", len(sender_pub))
        + sender_pub
    )
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aesgcm\x00" + context + b"\x01")[:16]
    base_nonce = _hmac(prk, b"Content-Encoding: nonce\x00" + context + b"\x01")[:12]
    if not body:
        raise DecryptError("aesgcm body is empty")
    plaintext = _aesgcm_records(body, rs, AESGCM(cek), base_nonce)
    return Decrypted(plaintext, AESGCM_LEGACY, rs, sender_pub, salt)


def _aesgcm_params(encryption: str | None, crypto_key: str | None) -> tuple[bytes, int, bytes]:
    """(salt, record size, sender public key) from the Encryption and Crypto-Key headers."""
    if not encryption:
        raise DecryptError("Content-Encoding aesgcm needs an Encryption header with salt=")
    if not crypto_key:
        raise DecryptError("Content-Encoding aesgcm needs a Crypto-Key header with dh=")
    enc = _header_params(encryption)
    ck = _header_params(crypto_key)
    if "salt" not in enc:
        raise DecryptError("Encryption header has no salt= parameter")
    if "dh" not in ck:
        raise DecryptError("Crypto-Key header has no dh= parameter")
    salt = _b64(enc["salt"], "Encryption salt")
    if len(salt) != 16:
        raise DecryptError(f"Encryption salt is {len(salt)} bytes; expected 16")
    rs = 4096
    if "rs" in enc:
        try:
            rs = int(enc["rs"])
        except ValueError as exc:
            raise DecryptError(f"Encryption rs={enc['rs']!r} is not an integer") from exc
        if rs < 2:
            raise DecryptError(f"Encryption rs={rs} is below the minimum of 2")
    return salt, rs, _b64(ck["dh"], "Crypto-Key dh")


def _aesgcm_records(body: bytes, rs: int, aead: AESGCM, base_nonce: bytes) -> bytes:
    """Decrypt and unpad each ``rs``-byte record of a legacy aesgcm body."""
    chunk = rs + TAG_LEN
    out = bytearray()
    records = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    nonce_head, (nonce_tail,) = base_nonce[:4], struct.unpack(">Q", base_nonce[4:])
    for seq, record in enumerate(records):
        if len(record) <= TAG_LEN:
            raise DecryptError(f"aesgcm record {seq} is {len(record)} bytes, too short for a tag")
        nonce = nonce_head + struct.pack(">Q", nonce_tail ^ seq)
        try:
            plain = aead.decrypt(nonce, record, None)
        except InvalidTag as exc:
            raise DecryptError(
                f"aesgcm decryption failed on record {seq} (authentication tag mismatch): wrong "
                "subscription keys, salt, dh key, or record size"
            ) from exc
        if len(plain) < 2:
            raise DecryptError(f"aesgcm record {seq} lacks its 2-byte padding length")
        (pad,) = struct.unpack_from(">H", plain)
        if 2 + pad > len(plain) or any(plain[2 : 2 + pad]):
            raise DecryptError(f"aesgcm record {seq} has invalid padding")
        out += plain[2 + pad :]
    return bytes(out)
