"""Chance in the fault plan: seeded draws, shares of devices, latency distributions.

Chance never depends on the order in which concurrent requests arrive: every draw is a
hash of (seed, fault, key, n-th draw for that key), where the key is the device token
when known. Shares of devices are a hash of (seed, token) compared to the share, so one
seed always picks the same devices, and a 10% share is contained in a 20% share.
"""

from __future__ import annotations

import hashlib
import math
from statistics import NormalDist

from simulator.faults.spec import Latency

_Z99 = NormalDist().inv_cdf(0.99)


def unit(seed: int, *parts: object) -> float:
    """A uniform draw in [0, 1) fixed by ``seed`` and ``parts``."""
    key = "|".join([str(seed), *map(str, parts)]).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2.0**64


def in_share(seed: int, token: str, share: float) -> bool:
    """Whether a device token belongs to a share of devices (stable for a seed)."""
    return share >= 1.0 or unit(seed, "share", token) < share


def latency_sample(p: Latency, u: float) -> float:
    """The latency for a uniform draw ``u``: fixed, uniform, or lognormal by its p50 and p99."""
    if p.distribution == "fixed":
        return p.delay
    if p.distribution == "uniform":
        return p.low + u * (p.high - p.low)
    mu = math.log(p.p50)
    sigma = (math.log(p.p99) - mu) / _Z99
    return math.exp(mu + sigma * NormalDist().inv_cdf(min(max(u, 1e-12), 1 - 1e-12)))
