"""Authentication rules in force: the switch the APNs and FCM cores read.

The fault plan's ``auth`` faults relax or tighten these over a window; outside any such
window the defaults hold (APNs provider tokens live one hour, OAuth access tokens one
hour). Cores read the attributes on each request (plain attribute reads, no locking:
everything runs on the simulator's event loop), or subscribe to be told of changes.

- ``apns_token_max_age``: seconds a provider token (JWT ``iat``) stays valid; ``None``
  means expiry is not enforced (``ExpiredProviderToken`` is never answered).
- ``oauth_token_lifetime``: seconds an access token minted now is valid (``expires_in``
  is this minus one second, as Google answers 3599 for an hour).
- ``oauth_expiry_enforced``: whether an access token past its lifetime is rejected
  (401 UNAUTHENTICATED); ``False`` accepts expired tokens.
"""

from __future__ import annotations

from collections.abc import Callable

DEFAULT_APNS_TOKEN_MAX_AGE = 3600.0
DEFAULT_OAUTH_TOKEN_LIFETIME = 3600.0


class AuthPolicy:
    def __init__(self) -> None:
        self.apns_token_max_age: float | None = DEFAULT_APNS_TOKEN_MAX_AGE
        self.oauth_token_lifetime: float = DEFAULT_OAUTH_TOKEN_LIFETIME
        self.oauth_expiry_enforced: bool = True
        self._subscribers: list[Callable[[AuthPolicy], None]] = []

    def subscribe(self, fn: Callable[[AuthPolicy], None]) -> None:
        """Call ``fn(policy)`` now and whenever the rules change."""
        self._subscribers.append(fn)
        fn(self)

    def update(
        self,
        apns_token_max_age: float | None,
        oauth_token_lifetime: float,
        oauth_expiry_enforced: bool,
    ) -> bool:
        new = (apns_token_max_age, oauth_token_lifetime, oauth_expiry_enforced)
        if new == (self.apns_token_max_age, self.oauth_token_lifetime, self.oauth_expiry_enforced):
            return False
        self.apns_token_max_age, self.oauth_token_lifetime, self.oauth_expiry_enforced = new
        for fn in self._subscribers:
            fn(self)
        return True

    def describe(self) -> dict[str, float | bool | None]:
        return {
            "apns_token_max_age": self.apns_token_max_age,
            "oauth_token_lifetime": self.oauth_token_lifetime,
            "oauth_expiry_enforced": self.oauth_expiry_enforced,
        }
