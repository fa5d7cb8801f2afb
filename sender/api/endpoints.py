"""The sender API's check of Web Push endpoints against the allow-list
(:mod:`sender.policy.endpoints`): a device registered, or a notification sent to explicit
subscriptions, whose endpoint is not on an allowed push-service origin is refused with a
400 naming the field and the endpoint's origin."""

from __future__ import annotations

from sender.api.validate import DeviceRequest, NotificationRequest, ValidationError
from sender.policy.endpoints import EndpointPolicy


def check_device(d: DeviceRequest, policy: EndpointPolicy) -> None:
    if d.provider == "webpush":
        _check(policy, d.token, "subscription.endpoint")


def check_notification(req: NotificationRequest, policy: EndpointPolicy) -> None:
    for i, t in enumerate(req.tokens):
        if t.provider == "webpush":
            _check(policy, t.token, f"to.tokens[{i}].subscription.endpoint")


def _check(policy: EndpointPolicy, endpoint: str, field: str) -> None:
    refusal = policy.refusal(endpoint)
    if refusal is not None:
        raise ValidationError(f"{field}: {refusal}", field)
