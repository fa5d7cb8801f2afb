"""Which requests are push sends, by provider: for parts that watch every listener's traffic.

Each provider's :class:`~simulator.faults.answers.FaultAnswers` is the one place that knows
its send paths; this table only looks them up by provider name.
"""

from __future__ import annotations

from collections.abc import Callable

from simulator.providers.apns.answers import ApnsFaultAnswers
from simulator.providers.fcm.answers import FcmFaultAnswers
from simulator.providers.webpush.answers import WebPushFaultAnswers

SENDS: dict[str, Callable[[str], bool]] = {
    "apns": ApnsFaultAnswers.is_send,
    "fcm": FcmFaultAnswers.is_send,
    "webpush": WebPushFaultAnswers.is_send,
}


def is_send(provider: str, path: str) -> bool:
    """Whether a request to ``path`` on ``provider``'s listener is a push send."""
    send = SENDS.get(provider)
    return send is not None and send(path)
