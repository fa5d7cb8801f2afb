"""Web Push decryption (RFC 8291 aes128gcm, legacy aesgcm) against http_ece's encryption."""

from __future__ import annotations

import base64
import os
import struct

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from simulator.providers.webpush.crypto import (
    DecryptError,
    IkmCache,
    ReceiverKeys,
    decrypt_aes128gcm,
    decrypt_aesgcm,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@pytest.fixture
def receiver() -> ReceiverKeys:
    return ReceiverKeys.from_private(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))


def encrypt(
    receiver: ReceiverKeys, data: bytes, sender: ec.EllipticCurvePrivateKey | None = None
) -> bytes:
    body: bytes = http_ece.encrypt(
        data,
        private_key=sender or ec.generate_private_key(ec.SECP256R1()),
        dh=receiver.public_bytes,
        auth_secret=receiver.auth_secret,
        version="aes128gcm",
    )
    return body


def test_aes128gcm_round_trip(receiver: ReceiverKeys) -> None:
    out = decrypt_aes128gcm(encrypt(receiver, b'{"hello":"world"}'), receiver)
    assert out.plaintext == b'{"hello":"world"}'
    assert out.encoding == "aes128gcm" and len(out.sender_public_key) == 65


def test_aes128gcm_wrong_subscription_says_tag_mismatch(receiver: ReceiverKeys) -> None:
    other = ReceiverKeys.from_private(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
    with pytest.raises(DecryptError, match="authentication tag mismatch"):
        decrypt_aes128gcm(encrypt(other, b"hi"), receiver)


def test_aes128gcm_wrong_auth_secret_fails(receiver: ReceiverKeys) -> None:
    wrong = ReceiverKeys(receiver.private_key, receiver.public_bytes, os.urandom(16))
    with pytest.raises(DecryptError, match="p256dh/auth"):
        decrypt_aes128gcm(encrypt(receiver, b"hi"), wrong)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:10], "shorter than the 21-byte"),
        (lambda b: b[:20] + b"\x00" + b[21:], "idlen is 0"),
        (lambda b: b[:16] + struct.pack(">I", 10) + b[20:], "rs=10 is below"),
        (lambda b: b[:16] + struct.pack(">I", 40) + b[20:], "single record"),
        (lambda b: b[:21] + b"\x04" + b"\x01" * 64 + b[86:], "not a point on the P-256 curve"),
        (lambda b: b[:86] + b"\x00" * 5, "at least a padding delimiter"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "tag mismatch"),
    ],
)
def test_aes128gcm_malformed_bodies_name_the_problem(
    receiver: ReceiverKeys, mangle, message
) -> None:  # type: ignore[no-untyped-def]
    body = encrypt(receiver, b"x" * 100)
    with pytest.raises(DecryptError, match=message):
        decrypt_aes128gcm(mangle(body), receiver)


def test_ecdh_result_is_cached_per_sender_key(receiver: ReceiverKeys) -> None:
    cache = IkmCache()
    sender = ec.generate_private_key(ec.SECP256R1())
    for i in range(3):
        assert (
            decrypt_aes128gcm(encrypt(receiver, b"m%d" % i, sender), receiver, cache).plaintext
            == b"m%d" % i
        )
    assert (cache.misses, cache.hits) == (1, 2)
    decrypt_aes128gcm(encrypt(receiver, b"fresh key"), receiver, cache)
    assert cache.misses == 2


def legacy(receiver: ReceiverKeys, data: bytes, rs: int = 4096) -> tuple[bytes, str, str]:
    sender = ec.generate_private_key(ec.SECP256R1())
    salt = os.urandom(16)
    body: bytes = http_ece.encrypt(
        data,
        salt=salt,
        private_key=sender,
        keyid="p256dh",
        dh=receiver.public_bytes,
        auth_secret=receiver.auth_secret,
        version="aesgcm",
        rs=rs,
    )
    return (
        body,
        f"salt={b64(salt)}" + (f";rs={rs}" if rs != 4096 else ""),
        f"dh={b64(point(sender))}",
    )


def test_aesgcm_round_trip_with_vapid_key_in_crypto_key(receiver: ReceiverKeys) -> None:
    body, enc, ck = legacy(receiver, b"legacy sender")
    out = decrypt_aesgcm(body, enc, "p256ecdsa=AAAA;" + ck, receiver)
    assert out.plaintext == b"legacy sender" and out.encoding == "aesgcm"


def test_aesgcm_several_records(receiver: ReceiverKeys) -> None:
    body, enc, ck = legacy(receiver, b"abc" * 100, rs=64)
    assert decrypt_aesgcm(body, enc, ck, receiver).plaintext == b"abc" * 100


@pytest.mark.parametrize(
    ("enc", "ck", "message"),
    [
        (None, "dh=x", "needs an Encryption header"),
        ("salt=AAAA", None, "needs a Crypto-Key header"),
        ("rs=10", "dh=x", "no salt="),
        ("salt=AAAA", "p256ecdsa=x", "no dh="),
        ("salt=AAAA", "dh=x", "salt is 3 bytes"),
    ],
)
def test_aesgcm_header_problems(
    receiver: ReceiverKeys, enc: str | None, ck: str | None, message: str
) -> None:
    with pytest.raises(DecryptError, match=message):
        decrypt_aesgcm(b"\x00" * 40, enc, ck, receiver)


def test_aesgcm_wrong_salt_fails(receiver: ReceiverKeys) -> None:
    body, _, ck = legacy(receiver, b"hi")
    with pytest.raises(DecryptError, match="tag mismatch"):
        decrypt_aesgcm(body, f"salt={b64(os.urandom(16))}", ck, receiver)
