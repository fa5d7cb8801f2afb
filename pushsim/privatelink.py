"""Whether an address is on a private link that cannot reach past this machine.

``pushsim run --hosts`` puts each part of a run in a network namespace of its own, joined
by veth pairs to a bridge in one more namespace: the namespaces have no link to the
machine's own network and no route anywhere but their /24. A part there listens on its
link's address (10.x or 169.254.x), not on loopback. :func:`isolated_address` says whether
``host`` is such an address, checked here rather than taken on trust:

- it is in 10.0.0.0/8 or 169.254.0.0/16;
- this process is in a network namespace pushsim made (``/run/netns/pushsim-*``, as
  ``ip netns add`` names them), not the machine's own;
- this namespace has no default route (IPv4 or IPv6; a reject route does not count), so
  nothing leaves its link.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

PRIVATE = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("169.254.0.0/16"))
NETNS_DIR = Path("/run/netns")
PREFIX = "pushsim-"  # the names of the namespaces pushsim makes
_PROC = Path("/proc")
_RTF_REJECT = 0x0200


def isolated_address(host: str, proc: Path = _PROC) -> bool:
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if not any(addr in net for net in PRIVATE):
        return False
    return own_namespace(proc) and not default_route(proc)


def own_namespace(proc: Path = _PROC, netns: Path = NETNS_DIR) -> bool:
    """Whether this process is in one of the network namespaces pushsim made."""
    try:
        mine = os.stat(proc / "self/ns/net")
        named = [os.stat(p) for p in netns.glob(PREFIX + "*")]
    except OSError:
        return False
    return any((n.st_dev, n.st_ino) == (mine.st_dev, mine.st_ino) for n in named)


def default_route(proc: Path = _PROC) -> bool:
    """Whether this network namespace has a default route (or its tables cannot be read)."""
    try:
        v4 = (proc / "net/route").read_text().splitlines()[1:]
    except OSError:
        return True
    for line in v4:
        fields = line.split()
        default = len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000"
        if default and not int(fields[3], 16) & _RTF_REJECT:
            return True
    try:
        v6 = (proc / "net/ipv6_route").read_text().splitlines()
    except OSError:
        return False  # no IPv6 in this namespace
    for line in v6:
        fields = line.split()
        if len(fields) > 8 and fields[:2] == ["0" * 32, "00"]:
            if not int(fields[8], 16) & _RTF_REJECT:
                return True
    return False
