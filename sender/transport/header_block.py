"""An HPACK encoder for provider requests (RFC 7541), cheaper than hpack's general one.

A provider request is a handful of headers that repeat on every request of a connection
(``:method``, ``:authority``, ``authorization``, ``apns-topic``, ``content-type``...) and
two or three that never repeat (``:path`` with the device token, ``apns-id``,
``content-length``). hpack's encoder searches both tables, Huffman-codes every string in
pure Python and indexes everything, so each unique value also evicts a useful entry.

:class:`RequestHeaderEncoder` instead

- sends a repeated header as a one-byte index once it is in the dynamic table (it is
  added with incremental indexing on first use, and its encoding is remembered);
- sends the per-request headers (:data:`UNIQUE_PER_REQUEST`) as literals without
  indexing, so they never displace the repeated ones;
- writes string literals raw (no Huffman): RFC 7541 leaves that to the encoder, it costs a
  few bytes on a local link and saves a pure-Python Huffman pass on both ends.

It keeps its own model of the decoder's dynamic table (entry sizes, FIFO eviction) and
honours the peer's SETTINGS_HEADER_TABLE_SIZE, signalling the size update RFC 7541 6.3
requires at the start of the next header block. h2 drives it through the same two members
as hpack's ``Encoder``: ``encode(headers)`` and the ``header_table_size`` property.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

from hpack.table import HeaderTable

# Headers whose value is (nearly) unique per request: never worth a table entry.
UNIQUE_PER_REQUEST = frozenset(
    {b":path", b"apns-id", b"content-length", b"apns-expiration", b"apns-collapse-id"}
)

_STATIC_FULL: dict[tuple[bytes, bytes], int] = {}
_STATIC_NAME: dict[bytes, int] = {}
for _i, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _STATIC_FULL.setdefault((_name, _value), _i)
    _STATIC_NAME.setdefault(_name, _i)

ENTRY_OVERHEAD = 32  # RFC 7541 4.1
_STATIC_LEN = len(HeaderTable.STATIC_TABLE)


def encode_int(value: int, prefix_bits: int, flags: int = 0) -> bytes:
    """RFC 7541 5.1 integer with an ``prefix_bits`` prefix, OR-ed with ``flags``."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((flags | value,))
    out = bytearray((flags | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(data: bytes) -> bytes:
    return encode_int(len(data), 7) + data  # H bit clear: raw octets


class RequestHeaderEncoder:
    """Stateful HPACK encoder for one connection (see the module docstring)."""

    def __init__(self, max_size: int = 4096, cache_limit: int = 512) -> None:
        self._peer_max = 4096  # the peer's SETTINGS_HEADER_TABLE_SIZE (default 4096)
        self._own_max = max_size  # how much of it we choose to use
        self._max = min(max_size, self._peer_max)
        self._size = 0
        self._seq = 0  # insertion counter: index = STATIC_LEN + 1 + (newest seq - seq)
        self._entries: collections.deque[tuple[int, tuple[bytes, bytes], int]] = collections.deque()
        self._dynamic: dict[tuple[bytes, bytes], int] = {}  # header -> seq of its entry
        self._pending_update: int | None = None
        self._literal_cache: dict[tuple[bytes, bytes], bytes] = {}
        self._name_prefix: dict[bytes, bytes] = {}
        self._cache_limit = cache_limit
        self.inserted = 0
        self.evicted = 0

    # -- h2's interface -------------------------------------------------------------

    @property
    def header_table_size(self) -> int:
        return self._peer_max

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        self._peer_max = value
        new_max = min(self._own_max, value)
        if new_max != self._max:
            self._max = new_max
            self._evict(0)
            self._pending_update = new_max

    def encode(self, headers: Iterable[tuple[bytes | str, bytes | str]]) -> bytes:
        out = bytearray()
        if self._pending_update is not None:
            out += encode_int(self._pending_update, 5, 0x20)
            self._pending_update = None
        unique = UNIQUE_PER_REQUEST
        dynamic = self._dynamic
        for header in headers:
            name, value = header[0], header[1]
            if type(name) is not bytes:
                name = name.encode() if isinstance(name, str) else bytes(name)
            if type(value) is not bytes:
                value = value.encode() if isinstance(value, str) else bytes(value)
            if name in unique:
                out += self._literal(name, value)
                continue
            key = (name, value)
            seq = dynamic.get(key)
            if seq is not None:
                out += encode_int(_STATIC_LEN + 1 + self._seq - seq, 7, 0x80)
                continue
            index = _STATIC_FULL.get(key)
            if index is not None:
                out += encode_int(index, 7, 0x80)
                continue
            size = len(name) + len(value) + ENTRY_OVERHEAD
            if size > self._max:
                out += self._literal(name, value)
                continue
            # Literal with incremental indexing (6-bit name index), then into the table.
            name_index = _STATIC_NAME.get(name)
            if name_index is not None:
                out += encode_int(name_index, 6, 0x40)
            else:
                out += b"\x40" + _string(name)
            out += _string(value)
            self._insert(key, size)
        return bytes(out)

    # -- internals ------------------------------------------------------------------

    def _literal(self, name: bytes, value: bytes) -> bytes:
        """Literal without indexing (RFC 7541 6.2.2); the name from the static table."""
        key = (name, value)
        hit = self._literal_cache.get(key)
        if hit is not None:
            return hit
        prefix = self._name_prefix.get(name)
        if prefix is None:
            index = _STATIC_NAME.get(name)
            prefix = encode_int(index, 4) if index is not None else b"\x00" + _string(name)
            self._name_prefix[name] = prefix
        encoded = prefix + _string(value)
        if name != b":path" and name != b"apns-id":  # cache only values that may recur
            if len(self._literal_cache) >= self._cache_limit:
                self._literal_cache.clear()
            self._literal_cache[key] = encoded
        return encoded

    def _insert(self, key: tuple[bytes, bytes], size: int) -> None:
        self._evict(size)
        self._seq += 1
        self._entries.appendleft((self._seq, key, size))
        self._dynamic[key] = self._seq
        self._size += size
        self.inserted += 1

    def _evict(self, room: int) -> None:
        """Drop the oldest entries until ``room`` more octets fit under the table size."""
        entries = self._entries
        while entries and self._size + room > self._max:
            seq, key, size = entries.pop()
            self._size -= size
            if self._dynamic.get(key) == seq:
                del self._dynamic[key]
            self.evicted += 1

    @property
    def size(self) -> int:
        return self._size
