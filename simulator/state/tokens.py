"""Device tokens as a keyed, reversible mapping of (provider, device number, generation).

A token is never stored: it is computed from the device's number and generation under a
secret key (drawn from the simulator's seeded RNG, so one seed mints the same tokens), and a
token read off the wire maps straight back to its device. The core is one AES-128 block::

    P = number (8 bytes, big-endian) || generation (4) || provider tag (4)
    head = AES_k0(P)                 # a permutation: distinct devices, distinct heads
    tail = AES_k1(P ^ 1) || AES_k1(P ^ 2) ...  # (the tag varies) as many blocks as needed

- APNs: ``hex(head || tail)``, one tail block: 64 lowercase hex digits.
- FCM: ``b64url(head) ":APA91b" b64url(tail[:96]) b64url(tail[96:102])[:6]``, seven tail
  blocks: 22 + 7 + 134 characters, like a real registration token; the 22 before ``:`` are
  the installation ID.
- Web Push: ``b64url(head || tail[:8])``: 32 characters, the subscription id.

Decoding decrypts the head, checks the provider tag, and re-encodes: a token is valid only if
it is exactly what :meth:`TokenCodec.encode` gives for that (number, generation), so a token
of the right shape that was never issued (forged, mistyped, from another seed) decodes to
None with certainty short of 2^-128 guessing. Each call costs two AES blocks, whatever the
population size, and the last :data:`DECODED_CACHE` tokens decoded are remembered (a token
always names the same device and generation; whether it is alive is read afresh). Many
tokens at once (minting, the CSV export) go through one AES call per key
(:meth:`TokenCodec.encode_many`).

A worker process that holds the same key decodes tokens exactly as the main process does
(the key is :attr:`TokenCodec.key`, 32 bytes).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import struct
import sys
from array import array
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from pushsim.b64 import b64url, b64url_decode

_BLOCK = struct.Struct(">QII")
_TAGS = {"apns": 0x41504E53, "fcm": 0x46434D31, "webpush": 0x57505348}
_FCM_TAIL = struct.Struct(">" + "QII" * 7)  # 112 bytes, of which a token shows 100.5
FCM_MARK = ":APA91b"
FID_LENGTH = 22
DECODED_CACHE = 16_384  # per provider: the hot path's tokens decode once
HEX = frozenset("0123456789abcdef")


def _tail_plain(number: int, generation: int, tag: int, blocks: int) -> bytes:
    """The tail's plaintext: ``blocks`` blocks, each with its own tag (distinct ciphertexts)."""
    if blocks == 1:
        return _BLOCK.pack(number, generation, tag ^ 1)
    n, g = number, generation
    return _FCM_TAIL.pack(
        n, g, tag ^ 1, n, g, tag ^ 2, n, g, tag ^ 3, n, g, tag ^ 4, n, g, tag ^ 5, n, g, tag ^ 6,
        n, g, tag ^ 7,
    )  # fmt: skip


def _apns_text(head: bytes, tail: bytes) -> str:
    return head.hex() + tail.hex()


def _fcm_text(head: bytes, tail: bytes) -> str:
    return b64url(head) + FCM_MARK + b64url(tail[:96]) + b64url(tail[96:102])[:6]


def _webpush_text(head: bytes, tail: bytes) -> str:
    return b64url(head + tail[:8])


# provider -> (tail blocks, how head and tail bytes read as the token)
_FORMATS: dict[str, tuple[int, Callable[[bytes, bytes], str]]] = {
    "apns": (1, _apns_text),
    "fcm": (7, _fcm_text),
    "webpush": (1, _webpush_text),
}


def _aes(key: bytes) -> tuple[CipherContext, CipherContext]:
    cipher = Cipher(algorithms.AES(key), modes.ECB())
    return cipher.encryptor(), cipher.decryptor()


class TokenCodec:
    """Encode and decode every provider's device tokens under one 32-byte key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a token key is 32 bytes")
        self.key = key
        self._enc0, self._dec0 = _aes(hashlib.sha256(key + b"head").digest()[:16])
        self._enc1 = _aes(hashlib.sha256(key + b"tail").digest()[:16])[0]
        # tokens decoded lately (a token always names the same device and generation)
        self._known: dict[str, dict[str, tuple[int, int]]] = {p: {} for p in _TAGS}
        self._head: dict[str, Callable[[str], bytes | None]] = {
            "apns": _apns_head,
            "fcm": _fcm_head,
            "webpush": _webpush_head,
        }

    # -- one token ------------------------------------------------------------------------

    def encode(self, provider: str, number: int, generation: int = 0) -> str:
        tag = _TAGS[provider]
        blocks, text = _FORMATS[provider]
        head = self._enc0.update(_BLOCK.pack(number, generation, tag))
        return text(head, self._enc1.update(_tail_plain(number, generation, tag, blocks)))

    def decode(self, provider: str, token: str) -> tuple[int, int] | None:
        """(device number, generation) if ``token`` is one this key issues, else None."""
        known = self._known.get(provider)
        if known is None:
            return None
        found = known.get(token)
        if found is not None:
            return found
        head = self._head[provider](token)
        if head is None:
            return None
        number, generation, tag = _BLOCK.unpack(self._dec0.update(head))
        if tag != _TAGS[provider] or self.encode(provider, number, generation) != token:
            return None
        if len(known) >= DECODED_CACHE:
            known.clear()
        found = known[token] = (number, generation)
        return found

    def decode_fid(self, fid: str) -> tuple[int, int] | None:
        """(device number, generation) of a Firebase installation ID (an FCM token's head)."""
        head = _fid_bytes(fid)
        if head is None:
            return None
        number, generation, tag = _BLOCK.unpack(self._dec0.update(head))
        if tag != _TAGS["fcm"] or self.fid(number, generation) != fid:
            return None
        return number, generation

    def fid(self, number: int, generation: int = 0) -> str:
        return b64url(self._enc0.update(_BLOCK.pack(number, generation, _TAGS["fcm"])))

    # -- many tokens ------------------------------------------------------------------------

    def encode_many(
        self, provider: str, numbers: Sequence[int], generations: Sequence[int] | None = None
    ) -> list[str]:
        """The tokens of ``numbers`` (at ``generations``, default 0): the plaintexts laid out,
        encrypted and base-encoded a whole buffer at a time (no per-token byte work)."""
        count = len(numbers)
        if count == 0:
            return []
        gens = generations if generations is not None else itertools.repeat(0, count)
        gen = array("I", gens)
        if len(gen) != count:
            raise ValueError("one generation a number")
        hi, lo = _halves(numbers)
        tag = _TAGS[provider]
        blocks, _ = _FORMATS[provider]
        heads = self._enc0.update(_plaintexts(hi, lo, gen, [tag]))
        tails = [  # FCM: six blocks, then a seventh apart (whole base64 groups either way)
            self._enc1.update(_plaintexts(hi, lo, gen, [tag ^ k for k in run]))
            for run in ((range(1, 7), range(7, 8)) if blocks == 7 else (range(1, blocks + 1),))
        ]
        return _BULK[provider](heads, tails, count)


def _halves(numbers: Sequence[int]) -> tuple[array[int], array[int]]:
    """The numbers' high and low 32-bit words."""
    words = array("I", array("Q", numbers).tobytes())
    if sys.byteorder == "little":
        return words[1::2], words[0::2]
    return words[0::2], words[1::2]


def _plaintexts(hi: array[int], lo: array[int], gen: array[int], tags: list[int]) -> bytes:
    """For each number, ``len(tags)`` blocks (number || generation || tag), big-endian, laid
    out a 32-bit word column at a time (strided slice assignment: no per-token work)."""
    count, per = len(hi), 4 * len(tags)
    out = array("I", bytes(4 * per * count))
    for k, tag in enumerate(tags):
        out[4 * k :: per] = hi
        out[4 * k + 1 :: per] = lo
        out[4 * k + 2 :: per] = gen
        out[4 * k + 3 :: per] = array("I", [tag]) * count
    if sys.byteorder == "little":
        out.byteswap()
    return out.tobytes()


def _regroup(src: bytes, src_stride: int, take: int, dst_stride: int, count: int) -> bytearray:
    """The first ``take`` bytes of each ``src_stride`` record, each in a ``dst_stride`` one."""
    out = bytearray(dst_stride * count)
    for j in range(take):
        out[j::dst_stride] = src[j::src_stride]
    return out


def _b64(data: bytes | bytearray) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _apns_many(heads: bytes, tails: list[bytes], count: int) -> list[str]:
    hh, th = heads.hex(), tails[0].hex()
    return [hh[i : i + 32] + th[i : i + 32] for i in range(0, 32 * count, 32)]


def _fcm_many(heads: bytes, tails: list[bytes], count: int) -> list[str]:
    # 18, 96 and 6 bytes are whole base64 groups: each token's text is slices of three
    fids = _b64(_regroup(heads, 16, 16, 18, count))
    six = _b64(tails[0])
    last = _b64(_regroup(tails[1], 16, 6, 6, count))
    return [
        fids[24 * k : 24 * k + FID_LENGTH]
        + FCM_MARK
        + six[128 * k : 128 * k + 128]
        + last[8 * k : 8 * k + 6]
        for k in range(count)
    ]


def _webpush_many(heads: bytes, tails: list[bytes], count: int) -> list[str]:
    both = _regroup(heads, 16, 16, 24, count)
    tail = tails[0]
    for j in range(8):
        both[16 + j :: 24] = tail[j::16]
    text = _b64(both)
    return [text[32 * k : 32 * k + 32] for k in range(count)]


_BULK: dict[str, Callable[[bytes, list[bytes], int], list[str]]] = {
    "apns": _apns_many,
    "fcm": _fcm_many,
    "webpush": _webpush_many,
}


def _apns_head(token: str) -> bytes | None:
    if len(token) != 64 or not HEX.issuperset(token):
        return None
    return bytes.fromhex(token[:32])


def _fid_bytes(fid: str) -> bytes | None:
    if len(fid) != FID_LENGTH:
        return None
    try:
        raw = b64url_decode(fid)
    except ValueError:
        return None
    return raw if len(raw) == 16 else None


def _fcm_head(token: str) -> bytes | None:
    fid, mark, _ = token.partition(":")
    if not mark or token[FID_LENGTH : FID_LENGTH + len(FCM_MARK)] != FCM_MARK:
        return None
    return _fid_bytes(fid)


def _webpush_head(token: str) -> bytes | None:
    if len(token) != 32:
        return None
    try:
        raw = b64url_decode(token)
    except ValueError:
        return None
    return raw[:16] if len(raw) == 24 else None
