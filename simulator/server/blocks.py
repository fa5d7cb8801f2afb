"""Request header blocks: bounded while they arrive, COMPRESSION_ERROR when they do not decode.

- :class:`BoundedFrameBuffer` is h2's frame buffer refusing a header block (a HEADERS
  frame and its CONTINUATIONs) longer than :data:`MAX_HEADER_BLOCK` while it is still
  arriving: h2 alone parks up to 64 CONTINUATION frames (about 1 MB) per connection
  before it looks at them. It also tells whether a block has begun and not ended, for the
  listener's header-block timeout.
- :func:`decode_block` is h2's ``_decode_headers`` with RFC 9113 section 4.3's error code,
  for the blocks h2 never sees (streams refused over MAX_CONCURRENT_STREAMS, decoded only
  to keep the HPACK table in step): one HPACK cannot decode is a connection error of type
  COMPRESSION_ERROR, one over the header list limit ENHANCE_YOUR_CALM. (An open stream's
  block is h2's, which answers PROTOCOL_ERROR.)
"""

from __future__ import annotations

from typing import Any

import h2.errors
from h2.exceptions import DenialOfServiceError, ProtocolError
from h2.frame_buffer import FrameBuffer
from hpack.exceptions import HPACKError, OversizedHeaderListError
from hyperframe.frame import Frame

# What our SETTINGS_MAX_HEADER_LIST_SIZE allows, plus a frame of slack for the coding.
MAX_HEADER_LIST = 65536
MAX_HEADER_BLOCK = MAX_HEADER_LIST + 16384


class CompressionError(ProtocolError):
    """A header block HPACK cannot decode (GOAWAY COMPRESSION_ERROR)."""

    error_code = h2.errors.ErrorCodes.COMPRESSION_ERROR


def decode_block(decoder: Any, block: bytes) -> Any:
    """The decoded header list of ``block`` (raw bytes), or the h2 error that ends the
    connection: :class:`CompressionError`, or ``DenialOfServiceError`` when too large."""
    try:
        return decoder.decode(block, raw=True)
    except OversizedHeaderListError as exc:
        raise DenialOfServiceError(f"Oversized header block: {exc}") from exc
    except (HPACKError, IndexError, TypeError, UnicodeDecodeError) as exc:
        raise CompressionError(f"Error decoding header block: {exc}") from exc


class BoundedFrameBuffer(FrameBuffer):
    """h2's (server-side) frame buffer, with header blocks of at most ``max_block`` bytes."""

    def __init__(self, max_block: int = MAX_HEADER_BLOCK) -> None:
        super().__init__(server=True)
        self.max_block = max_block

    @property
    def preface_received(self) -> bool:
        """Whether the client's connection preface is in."""
        return not self._preamble_len

    @property
    def header_block_pending(self) -> bool:
        """Whether a header block has begun and its END_HEADERS is still awaited."""
        return bool(self._headers_buffer)

    def _update_header_buffer(self, f: Frame | None) -> Frame | None:
        pending = self._headers_buffer
        if pending and f is not None:
            held = len(f.data) + sum(len(x.data) for x in pending)  # type: ignore[attr-defined]
            if held > self.max_block:
                raise DenialOfServiceError(f"a header block over {self.max_block} bytes")
        return super()._update_header_buffer(f)
