"""VAPID (RFC 8292) as a push service checks it: who is sending, and may they.

Two header forms are accepted:

- RFC 8292: ``Authorization: vapid t=<ES256 JWT>, k=<base64url P-256 public key>``;
- the older drafts (still sent by some libraries): ``Authorization: WebPush <JWT>``
  with the key in ``Crypto-Key: p256ecdsa=<key>`` (``Bearer`` is read the same way).

The token's signature and claims are verified once per (key, token) and cached: senders
reuse one token for up to 24 hours, so the per-request cost is a dictionary lookup and
two comparisons (``exp`` against the clock, ``aud`` against the endpoint's origin).
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from pushsim.b64 import b64url_decode
from simulator.providers.jwt_rules import decode_signed

MAX_EXP_AHEAD = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class VapidCredentials:
    """What the request presented, before verification."""

    token: str
    key: str  # base64url as sent
    scheme: str  # "vapid" | "webpush"


@dataclass(frozen=True, slots=True)
class VapidCheck:
    """A verified token (``status`` 0) or the status and message to refuse it with."""

    status: int = 0
    message: str = ""
    kind: str = ""  # vapid_missing | vapid_invalid | vapid_expired | vapid_audience
    key: bytes = b""  # the decoded 65-byte public key
    sub: str = ""
    exp: float = 0.0
    aud: str = ""
    key_text: str = ""  # k as the sender wrote it

    @property
    def ok(self) -> bool:
        return self.status == 0


def _fail(status: int, kind: str, message: str) -> VapidCheck:
    return VapidCheck(status, f"VAPID: {message}", kind)


def _params(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.replace(";", ",").split(","):
        name, sep, val = part.strip().partition("=")
        if sep:
            out.setdefault(name.strip().lower(), val.strip().strip('"'))
    return out


def parse_authorization(
    authorization: str | None, crypto_key: str | None
) -> VapidCredentials | VapidCheck | None:
    """The credentials in the headers, ``None`` when there are none, or why they are unusable."""
    if authorization is None or not authorization.strip():
        return None
    scheme, _, rest = authorization.strip().partition(" ")
    scheme = scheme.lower()
    rest = rest.strip()
    if scheme == "vapid":
        params = _params(rest)
        t, k = params.get("t"), params.get("k")
        if not t or not k:
            return _fail(
                401, "vapid_invalid", "Authorization 'vapid' needs both t=<JWT> and k=<public key>"
            )
        return VapidCredentials(t, k, "vapid")
    if scheme in ("webpush", "bearer"):
        if not rest:
            return _fail(401, "vapid_invalid", f"Authorization '{scheme}' carries no token")
        key = _params(crypto_key or "").get("p256ecdsa")
        if not key:
            return _fail(
                401,
                "vapid_invalid",
                f"Authorization '{scheme} <JWT>' needs the key in Crypto-Key: p256ecdsa=<key>",
            )
        return VapidCredentials(rest, key, "webpush")
    return _fail(
        401,
        "vapid_invalid",
        f"unsupported Authorization scheme {scheme!r}; expected 'vapid t=..., k=...'",
    )


def decode_key(text: str) -> bytes | None:
    """A base64url (or padded / standard base64) P-256 public key, or None if it is not one."""
    try:
        raw = b64url_decode(text.strip().replace("+", "-").replace("/", "_").rstrip("="))
    except (ValueError, TypeError):
        return None
    if len(raw) != 65 or raw[0] != 4:
        return None
    return raw


class VapidVerifier:
    """Signature and claim checks, cached per (key, token)."""

    def __init__(self, cache_size: int = 20_000) -> None:
        self._cache: dict[tuple[str, str], VapidCheck] = {}
        self._cache_size = cache_size
        self._parsed: dict[tuple[str | None, str | None], VapidCredentials | VapidCheck | None] = {}
        self.verifications = 0  # signatures actually checked (cache misses)

    def _verify(self, creds: VapidCredentials) -> VapidCheck:
        self.verifications += 1
        raw = decode_key(creds.key)
        if raw is None:
            return _fail(
                403,
                "vapid_invalid",
                "k is not a base64url uncompressed P-256 public key (65 bytes)",
            )
        try:
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            return _fail(403, "vapid_invalid", "k is not a point on the P-256 curve")
        try:
            header = jwt.get_unverified_header(creds.token)
        except jwt.PyJWTError as exc:
            return _fail(403, "vapid_invalid", f"t is not a JWT ({exc})")
        if header.get("alg") != "ES256":
            return _fail(
                403, "vapid_invalid", f"JWT alg is {header.get('alg')!r}; VAPID requires ES256"
            )
        try:
            claims = decode_signed(creds.token, public_key, "ES256")
        except jwt.InvalidSignatureError:
            return _fail(403, "vapid_invalid", "JWT signature does not verify with key k")
        except jwt.PyJWTError as exc:
            return _fail(403, "vapid_invalid", f"JWT does not verify ({exc})")
        aud, exp, sub = claims.get("aud"), claims.get("exp"), claims.get("sub")
        if not isinstance(aud, str) or not aud:
            return _fail(403, "vapid_invalid", "JWT has no aud claim (the push service's origin)")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            return _fail(403, "vapid_invalid", "JWT has no numeric exp claim")
        if not isinstance(sub, str) or not (sub.startswith("mailto:") or sub.startswith("https:")):
            return _fail(
                403, "vapid_invalid", f"JWT sub must be a mailto: or https: URI, got {sub!r}"
            )
        return VapidCheck(0, "", "", raw, sub, float(exp), aud.rstrip("/"), creds.key)

    def parse(
        self, authorization: str | None, crypto_key: str | None
    ) -> VapidCredentials | VapidCheck | None:
        """:func:`parse_authorization`, remembered per header value (senders repeat it)."""
        ck = (authorization, crypto_key)
        try:
            return self._parsed[ck]
        except KeyError:
            pass
        parsed = parse_authorization(authorization, crypto_key)
        if len(self._parsed) >= self._cache_size:
            self._parsed.clear()
        self._parsed[ck] = parsed
        return parsed

    def check(self, creds: VapidCredentials, now: float, origins: tuple[str, ...]) -> VapidCheck:
        """Verify ``creds`` at time ``now`` for a request addressed to one of ``origins``."""
        ck = (creds.key, creds.token)
        result = self._cache.get(ck)
        if result is None:
            try:
                result = self._verify(creds)
            except (ValueError, TypeError, KeyError) as exc:  # odd input the JWT library missed
                result = _fail(403, "vapid_invalid", f"token does not verify ({exc})")
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[ck] = result
        if not result.ok:
            return result
        if result.exp <= now:
            return _fail(403, "vapid_expired", f"JWT expired at {int(result.exp)} (now {int(now)})")
        if result.exp > now + MAX_EXP_AHEAD:
            return _fail(
                403,
                "vapid_expired",
                f"JWT exp is {int(result.exp - now)} s ahead; at most 24 hours (86400 s) allowed",
            )
        if result.aud not in origins:
            return _fail(
                403,
                "vapid_audience",
                f"JWT aud {result.aud!r} is not this push service's origin {origins[0]!r}",
            )
        return result
