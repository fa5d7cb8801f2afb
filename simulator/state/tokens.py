"""Device tokens as a keyed, reversible mapping of (provider, device number, generation).

A token is never stored: it is computed from the device's number and generation under a
secret key (drawn from the simulator's seeded RNG, so one seed mints the same tokens), and a
token read off the wire maps straight back to its device. The core is one AES-128 block::

    P = number (8 bytes, big-endian) || generation (4) || provider tag (4)
    head = AES_k0(P)                 # a permutation: distinct devices, distinct heads
    tail = AES_k1(P ^ 1) || AES_k1(P ^ 2) ...  # (the tag varies) as many blocks as needed

- APNs: ``hex(head || tail)``, one tail block: 64 lowercase hex digits.
- FCM: ``b64url(head) ":APA91b" b64url(tail)[:134]``, seven tail blocks: 22 + 7 + 134
  characters, like a real registration token; the 22 before ``:`` are the installation ID.
- Web Push: ``b64url(head || tail[:8])``: 32 characters, the subscription id.

Decoding decrypts the head, checks the provider tag, and re-encodes: a token is valid only if
it is exactly what :meth:`TokenCodec.encode` gives for that (number, generation), so a token
of the right shape that was never issued (forged, mistyped, from another seed) decodes to
None with certainty short of 2^-128 guessing. Each call costs two AES blocks, whatever the
population size. Many tokens at once (minting, the CSV export) go through one AES call per
key (:meth:`TokenCodec.encode_many`).

A worker process that holds the same key decodes tokens exactly as the main process does
(the key is :attr:`TokenCodec.key`, 32 bytes).
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from pushsim.b64 import b64url, b64url_decode

_BLOCK = struct.Struct(">QII")
_TAGS = {"apns": 0x41504E53, "fcm": 0x46434D31, "webpush": 0x57505348}
_FCM_TAIL = struct.Struct(">" + "QII" * 7)  # 112 bytes, of which a token shows 100.5
FCM_MARK = ":APA91b"
FID_LENGTH = 22
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
    return b64url(head) + FCM_MARK + b64url(tail[:102])[:134]


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
        head_of = self._head.get(provider)
        head = head_of(token) if head_of is not None else None
        if head is None:
            return None
        number, generation, tag = _BLOCK.unpack(self._dec0.update(head))
        if tag != _TAGS[provider] or self.encode(provider, number, generation) != token:
            return None
        return number, generation

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
        """The tokens of ``numbers`` (at ``generations``, default 0), one AES call per key."""
        tag = _TAGS[provider]
        blocks, text = _FORMATS[provider]
        pairs = zip(numbers, generations or itertools.repeat(0, len(numbers)), strict=True)
        pack = _BLOCK.pack
        heads_plain, tails_plain = [], []
        for n, g in pairs:
            heads_plain.append(pack(n, g, tag))
            tails_plain.append(_tail_plain(n, g, tag, blocks))
        heads = self._enc0.update(b"".join(heads_plain))
        tails = self._enc1.update(b"".join(tails_plain))
        if provider == "apns":  # hex the buffers whole: the hot case of a large mint
            hh, th = heads.hex(), tails.hex()
            return [hh[i : i + 32] + th[i : i + 32] for i in range(0, len(hh), 32)]
        step = 16 * blocks
        return [
            text(heads[16 * k : 16 * k + 16], tails[step * k : step * k + step])
            for k in range(len(heads_plain))
        ]


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
