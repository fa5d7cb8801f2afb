"""Retry-After holds shared by every process: a 429 answered by one, an early retry to another.

Each process's fault gate notes the holds it gives (a 429 or 503 with Retry-After, per
device, project or provider) in its own
:class:`~simulator.faults.record.RetryAfterLedger` and judges each request against it. A
sender's connections are spread over the processes, so a retry often reaches another
process than the one that answered: :class:`LedgerSync` takes the holds a process added
or extended since it last looked, to be shipped, and notes those that arrive from the
others. The primary passes a worker's on to every other worker, and ships its own. Holds
are in run time, one clock for every process, so a hold means the same moment
everywhere; a request within the in-flight grace of the hold's arrival here counts as
in flight, as it would where the hold was given.
"""

from __future__ import annotations

from collections.abc import Callable

from simulator.faults.record import RetryAfterLedger

Hold = tuple[tuple[str, str, str], float]  # (provider, scope, key), not-before in run time
ENDED = -1.0  # a hold honoured (or run out) where it was checked: dropped everywhere


class LedgerSync:
    """What one process's ledger gained or dropped since the last look, and what others did."""

    def __init__(self, ledger: Callable[[], RetryAfterLedger], now: Callable[[], float]) -> None:
        self.ledger = ledger
        self.now = now
        self._known: dict[tuple[str, str, str], float] = {}

    def changes(self) -> list[Hold]:
        """Holds added or extended here since the last call, and those that ended here
        (``ENDED``: a request came after the hold, and was counted as honouring it)."""
        holds = self.ledger().not_before
        known = self._known
        if not holds and not known:
            return []
        out = [(k, nb) for k, nb in holds.items() if known.get(k) != nb]
        ended = [k for k in known if k not in holds]
        for k, nb in out:
            known[k] = nb
        for k in ended:
            del known[k]
            out.append((k, ENDED))
        return out

    def note(self, holds: list[Hold]) -> None:
        """Holds another process gave or ended (they are not shipped back)."""
        ledger = self.ledger()
        now = self.now()
        for key, not_before in holds:
            provider, scope, target = key
            if not_before == ENDED:
                self._drop(ledger, key)
                continue
            ledger.note(provider, scope, target, not_before, now)
            self._known[key] = not_before  # a longer hold of our own still goes out

    def _drop(self, ledger: RetryAfterLedger, key: tuple[str, str, str]) -> None:
        """An ended hold leaves without counting here: it was counted where it ended."""
        self._known.pop(key, None)
        if ledger.not_before.pop(key, None) is not None and key[1] == "device":
            ledger.has_device_scopes -= 1
