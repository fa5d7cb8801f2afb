"""Credential files, read and checked for what the provider clients use: the APNs .p8
key, the FCM service account, the VAPID key pair, a CA bundle."""

from __future__ import annotations

import base64
import binascii
import contextlib
import ssl
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pushsim.b64 import b64url
from sender.config.checks import FileProblem, json_object, read_file, subject_problem, url_problem


def _p256_private(pem: bytes) -> ec.EllipticCurvePrivateKey | None:
    try:
        key = serialization.load_pem_private_key(pem, None)
    except (ValueError, TypeError):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    return None


def _public_b64(key: ec.EllipticCurvePrivateKey) -> str:
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(point)


def load_apns_key(path: Path, shown: str) -> str:
    """The PEM text of an APNs token-signing key (``AuthKey_<KEYID>.p8``)."""
    pem = read_file(path, shown)
    if _p256_private(pem) is None:
        raise FileProblem(
            f"'{shown}': expected an EC P-256 private key in PEM (an APNs .p8 auth key)"
        )
    return pem.decode("ascii")


def load_service_account(path: Path, shown: str) -> dict[str, Any]:
    """A Google service-account file, checked for what the FCM client uses."""
    sa = json_object(path, shown)
    if sa.get("type", "service_account") != "service_account":
        raise FileProblem(f"'{shown}': type: expected service_account, got {sa.get('type')!r}")
    for name in ("project_id", "client_email", "private_key", "token_uri"):
        if not isinstance(sa.get(name), str) or not sa[name]:
            raise FileProblem(f"'{shown}': {name}: expected a non-empty string")
    key: Any = None
    with contextlib.suppress(ValueError, TypeError, UnicodeError):
        key = serialization.load_pem_private_key(sa["private_key"].encode(), None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise FileProblem(f"'{shown}': private_key: expected an RSA private key in PEM")
    problem = url_problem(sa["token_uri"], allow_path=True)
    if problem:
        raise FileProblem(f"'{shown}': token_uri: {problem}")
    return sa


def load_vapid_file(path: Path, shown: str) -> dict[str, Any]:
    """``{"private_key": PEM, "public_key": base64url point, "subject"?}`` as the simulator
    writes it in ``webpush/vapid.json``."""
    doc = json_object(path, shown)
    pem = doc.get("private_key")
    key = _p256_private(pem.encode()) if isinstance(pem, str) else None
    if key is None:
        raise FileProblem(f"'{shown}': private_key: expected an EC P-256 private key in PEM")
    public = _public_b64(key)
    given = doc.get("public_key")
    if given is not None and given != public:
        raise FileProblem(f"'{shown}': public_key: does not match private_key (expected {public})")
    subject = doc.get("subject")
    if subject is not None:
        problem = subject_problem(subject)
        if problem:
            raise FileProblem(f"'{shown}': subject: {problem}")
    out: dict[str, Any] = {"private_key": pem, "public_key": public}
    if subject:
        out["subject"] = subject
    return out


def load_vapid_private_key(path: Path, shown: str) -> dict[str, Any]:
    """A VAPID private key alone: PEM, or the raw 32-byte key in base64url (as web-push
    libraries print it). Returns ``{"private_key": PEM, "public_key": base64url}``."""
    raw = read_file(path, shown)
    key = _p256_private(raw)
    if key is None:
        text = raw.strip()
        try:
            scalar = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            scalar = b""
        if len(scalar) == 32 and 0 < int.from_bytes(scalar, "big"):
            try:
                key = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
            except ValueError:
                key = None
    if key is None:
        raise FileProblem(
            f"'{shown}': expected an EC P-256 private key (PEM, or 32 bytes in base64url)"
        )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return {"private_key": pem, "public_key": _public_b64(key)}


def check_ca_file(path: Path, shown: str) -> None:
    read_file(path, shown)
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, ValueError, OSError):
        raise FileProblem(f"'{shown}': expected PEM CA certificates") from None
