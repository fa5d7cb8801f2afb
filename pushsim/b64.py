"""base64url without padding (RFC 4648 §5), as JWTs, VAPID keys and subscriptions use it."""

from __future__ import annotations

import base64


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode with or without padding; raises ``binascii.Error`` or ``ValueError`` on bad input."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
