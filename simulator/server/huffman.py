"""A cache for Huffman-decoded request header values, bounded in bytes.

Clients send ``authorization`` (a provider token or VAPID JWT of 200-500 bytes) as a
never-indexed literal, so without a cache every request pays a pure-Python Huffman
decode of the same JWT (measured at about a quarter of the server's time). A sender
reuses one token for many minutes, so remembering recent decodes makes that a dict lookup.

What a peer sends is remembered only when it is short (:data:`MAX_CACHED` bytes coded):
header values that long are what senders repeat; a megabyte-long value is an attack (and
hpack rejects the block it came in anyway). Entries are forgotten oldest first once the
cache holds :data:`MAX_BYTES`, so a peer sending endless distinct values churns the cache
but cannot grow it.
"""

from __future__ import annotations

from collections.abc import Callable

MIN_CACHED = 20  # shorter strings decode faster than a lookup pays back
MAX_CACHED = 1024  # coded bytes: a JWT, a VAPID header; anything longer is decoded each time
MAX_BYTES = 1 << 20  # coded plus decoded bytes held, at most


class HuffmanCache:
    """``decode`` with a bounded memory of recent results (oldest forgotten first)."""

    __slots__ = ("_decode", "_entries", "held", "max_bytes")

    def __init__(self, decode: Callable[[bytes], bytes], max_bytes: int = MAX_BYTES) -> None:
        self._decode = decode
        self._entries: dict[bytes, bytes] = {}
        self.held = 0  # bytes of keys and values in the cache
        self.max_bytes = max_bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __call__(self, huffman_string: bytes | bytearray | memoryview | None) -> bytes:
        if type(huffman_string) is bytes and MIN_CACHED <= len(huffman_string) <= MAX_CACHED:
            hit = self._entries.get(huffman_string)
            if hit is not None:
                return hit
            result = self._decode(huffman_string)
            self._remember(huffman_string, result)
            return result
        return self._decode(huffman_string)  # type: ignore[arg-type]  # hpack takes any buffer

    def _remember(self, key: bytes, value: bytes) -> None:
        self.held += len(key) + len(value)
        entries = self._entries
        entries[key] = value
        while self.held > self.max_bytes:
            oldest = next(iter(entries))
            self.held -= len(oldest) + len(entries.pop(oldest))
