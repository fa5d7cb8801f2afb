"""Turning fuzz bytes into the shapes the pure cores read: JSON-like values whose keys come
from a target's vocabulary (so the fuzzer reaches past "unknown field" at once), header
lists, and plain text. Everything is drawn from one byte string, so an input replays."""

from __future__ import annotations

from typing import Any

# A byte source with atheris.FuzzedDataProvider's calls this module uses; without atheris
# (a regression replay) :class:`Bytes` stands in.


class Bytes:
    """The few FuzzedDataProvider calls used here, over plain bytes (no atheris needed)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def remaining_bytes(self) -> int:
        return len(self.data) - self.pos

    def _take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out

    def ConsumeIntInRange(self, low: int, high: int) -> int:
        span = high - low + 1
        raw = int.from_bytes(self._take(4), "little")
        return low + raw % span

    def ConsumeBool(self) -> bool:
        return bool(self.ConsumeIntInRange(0, 1))

    def ConsumeBytes(self, n: int) -> bytes:
        return self._take(n)

    def ConsumeUnicodeNoSurrogates(self, n: int) -> str:
        return self._take(n).decode("latin-1")

    def ConsumeFloat(self) -> float:
        import struct

        raw = self._take(8).ljust(8, b"\0")
        return float(struct.unpack("<d", raw)[0])

    def PickValueInList(self, items: list[Any]) -> Any:
        return items[self.ConsumeIntInRange(0, len(items) - 1)]


def provider(data: bytes) -> Any:
    """atheris' FuzzedDataProvider when atheris is there, else :class:`Bytes`."""
    try:
        import atheris
    except ImportError:
        return Bytes(data)
    return atheris.FuzzedDataProvider(data)


EDGE_NUMBERS: list[Any] = [0, 1, -1, 2**31, 2**63, -(2**63), 10**30, 0.5, 1e308, -0.0]
EDGE_STRINGS = ["", " ", "0", "-1", "1.5", "1e9", "10s", "250ms", "1m30s", "x" * 300, "\x00", "é"]


def text(fdp: Any, vocab: list[str], limit: int = 40) -> str:
    pick = fdp.ConsumeIntInRange(0 if vocab else 1, 3)
    if pick == 0:
        return str(fdp.PickValueInList(vocab))
    if pick == 1:
        return str(fdp.PickValueInList(EDGE_STRINGS))
    return str(fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, limit)))


def value(fdp: Any, vocab: list[str], depth: int = 0) -> Any:
    """A JSON-like value: scalars, and (while shallow) objects keyed by ``vocab`` and lists."""
    kind = fdp.ConsumeIntInRange(0, 9 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.PickValueInList(EDGE_NUMBERS)
    if kind == 3:
        return fdp.ConsumeIntInRange(-1000, 100_000)
    if kind in (4, 5):
        return text(fdp, vocab)
    if kind in (6, 7, 8):
        return obj(fdp, vocab, depth + 1)
    return [value(fdp, vocab, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]


def obj(fdp: Any, vocab: list[str], depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        if fdp.remaining_bytes() <= 0:
            break
        key = fdp.PickValueInList(vocab) if fdp.ConsumeIntInRange(0, 7) else text(fdp, vocab, 8)
        out[str(key)] = value(fdp, vocab, depth)
    return out
