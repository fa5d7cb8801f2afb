"""How the providers decode JWTs (APNs provider tokens, OAuth assertions, VAPID).

PyJWT checks the signature and the algorithm; every time and audience claim (``iat``,
``exp``, ``nbf``, ``aud``, ``iss``) is left to the provider, which applies its own service's
rules and answers with its own error (ExpiredProviderToken, invalid_grant, vapid_expired...)
against the injected clock rather than PyJWT's wall clock.
"""

from __future__ import annotations

from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.types import Options

# The claims the providers judge themselves.
DECODE_OPTIONS: Options = {
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    "verify_aud": False,
    "verify_iss": False,
}
_UNVERIFIED: Options = {"verify_signature": False}


def decode_signed(
    token: str, key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, algorithm: str
) -> dict[str, Any]:
    """The claims of ``token`` once its ``algorithm`` signature verifies with ``key``.

    Raises :class:`jwt.PyJWTError` (``jwt.InvalidSignatureError`` for a bad signature).
    """
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=[algorithm], options=DECODE_OPTIONS)
    return claims


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of ``token`` before its key is known (to find the key); may raise PyJWTError."""
    claims: dict[str, Any] = jwt.decode(token, options=_UNVERIFIED)
    return claims
