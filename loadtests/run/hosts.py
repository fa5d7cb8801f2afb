"""``pushsim run --hosts``: each part of a run on a host of its own, as on several machines.

The hosts are network namespaces (root only). Each gets one interface, ``eth0``, the end
of a veth pair whose other end is on a bridge in one more namespace, the run's link; each
has the link's /24 (:data:`SUBNET`) and nothing else -- no default route, no interface in
the machine's own namespace -- so nothing a part sends can leave the machine, and every
byte between two parts crosses two network interfaces and a bridge. The namespaces are
named ``pushsim-<run>-<role>`` (``pushsim run`` process id; roles: harness, simulator,
postgres, sender or sender-N, locust, locust-worker-N) and deleted after the run, with
their interfaces; namespaces left by a run that no longer exists are deleted on the next.

:func:`plan` decides the hosts (pure); :func:`setup_commands` and
:func:`teardown_commands` are the ``ip`` commands that make and remove them (pure);
:func:`build` and :func:`tear_down` run them. The harness then runs inside the
``harness`` host and starts each part with :meth:`Plan.prefix` (``ip netns exec NS``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pushsim.privatelink import NETNS_DIR, PREFIX

SUBNET = ipaddress.ip_network("10.77.0.0/24")
BRIDGE = "link0"
IFACE = "eth0"
_FIRST = {"harness": 1, "simulator": 2, "postgres": 3, "sender": 10, "locust": 50}
_WORKER_FIRST = 51
_SENDER_RE = re.compile(r"^sender-(\d+)$")
_WORKER_RE = re.compile(r"^locust-worker-(\d+)$")
_STALE_RE = re.compile(rf"^{re.escape(PREFIX)}(\d+)-")


class HostsError(RuntimeError):
    """The run's hosts could not be made."""


@dataclass(frozen=True, slots=True)
class Host:
    role: str
    netns: str
    address: str
    veth: str  # the link end's name, in the link's namespace


@dataclass(frozen=True, slots=True)
class Plan:
    run: str
    link: str  # the namespace holding the bridge
    hosts: tuple[Host, ...]

    def host(self, name: str) -> Host:
        """The host of a part, by its process name (``locust-master`` is ``locust``'s)."""
        role = "locust" if name == "locust-master" else name
        for h in self.hosts:
            if h.role == role:
                return h
        raise KeyError(f"no host for {name!r} in this run's plan")

    def address(self, name: str) -> str:
        return self.host(name).address

    def prefix(self, name: str) -> list[str]:
        """The command line that runs a part on its host."""
        return ["ip", "netns", "exec", self.host(name).netns]

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
        return path

    @staticmethod
    def read(path: Path) -> Plan:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return Plan(doc["run"], doc["link"], tuple(Host(**h) for h in doc["hosts"]))


def roles(instances: int, postgres: bool, workers: int) -> list[str]:
    """The run's parts, each a host: the harness, the simulator, PostgreSQL when the run
    starts it, each sender instance, the Locust master (or only process), each worker."""
    senders = ["sender"] if instances == 1 else [f"sender-{i + 1}" for i in range(instances)]
    workers_ = [f"locust-worker-{i + 1}" for i in range(workers)]
    return [
        "harness",
        "simulator",
        *(["postgres"] if postgres else []),
        *senders,
        "locust",
        *workers_,
    ]


def _offset(role: str) -> int:
    if role in _FIRST:
        return _FIRST[role]
    if m := _SENDER_RE.match(role):
        return _FIRST["sender"] + int(m.group(1)) - 1
    if m := _WORKER_RE.match(role):
        return _WORKER_FIRST + int(m.group(1)) - 1
    raise ValueError(f"unknown role {role!r}")


def plan(run: str, parts: list[str]) -> Plan:
    hosts = tuple(
        Host(
            role,
            f"{PREFIX}{run}-{role}",
            str(SUBNET.network_address + _offset(role)),
            f"v{i}",
        )
        for i, role in enumerate(parts)
    )
    return Plan(run, f"{PREFIX}{run}-link", hosts)


def setup_commands(p: Plan) -> list[list[str]]:
    """Make the link (a bridge in its own namespace), then each host on it."""
    cmds = [
        ["ip", "netns", "add", p.link],
        ["ip", "-n", p.link, "link", "add", BRIDGE, "type", "bridge"],
        ["ip", "-n", p.link, "link", "set", BRIDGE, "up"],
    ]
    for h in p.hosts:
        cidr = f"{h.address}/{SUBNET.prefixlen}"
        cmds += [
            ["ip", "netns", "add", h.netns],
            ["ip", "-n", p.link, "link", "add", h.veth, "type", "veth", "peer", "name", IFACE,
             "netns", h.netns],
            ["ip", "-n", p.link, "link", "set", h.veth, "master", BRIDGE, "up"],
            ["ip", "-n", h.netns, "addr", "add", cidr, "dev", IFACE],
            ["ip", "-n", h.netns, "link", "set", IFACE, "up"],
            ["ip", "-n", h.netns, "link", "set", "lo", "up"],
        ]  # fmt: skip
    return cmds


def teardown_commands(p: Plan) -> list[list[str]]:
    """Delete every namespace (their interfaces go with them)."""
    return [["ip", "netns", "del", ns] for ns in (*(h.netns for h in p.hosts), p.link)]


def unavailable() -> str | None:
    """Why hosts cannot be made here (None: they can)."""
    if not os.uname().sysname == "Linux":
        return "--hosts needs Linux network namespaces"
    if os.geteuid() != 0:
        return "--hosts needs root (it makes network namespaces and veth pairs)"
    if shutil.which("ip") is None:
        return "--hosts needs the 'ip' command (iproute2)"
    return None


def _ip(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


def build(p: Plan) -> None:
    """Make the hosts; on a failure remove what was made and raise :class:`HostsError`."""
    remove_stale()
    for cmd in setup_commands(p):
        done = _ip(cmd)
        if done.returncode != 0:
            tear_down(p)
            said = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise HostsError(f"--hosts: {' '.join(cmd)}: {said}")


def tear_down(p: Plan) -> list[str]:
    """Delete the run's namespaces; the ones that could not be deleted (none: all gone)."""
    left = []
    for cmd in teardown_commands(p):
        if (NETNS_DIR / cmd[-1]).exists() and _ip(cmd).returncode != 0:
            left.append(cmd[-1])
    return left


def remove_stale(netns: Path = NETNS_DIR) -> list[str]:
    """Delete the namespaces of runs whose ``pushsim run`` process is gone."""
    gone = []
    for path in sorted(netns.glob(PREFIX + "*")) if netns.is_dir() else []:
        m = _STALE_RE.match(path.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            if _ip(["ip", "netns", "del", path.name]).returncode == 0:
                gone.append(path.name)
    return gone


def traffic(p: Plan) -> dict[str, dict[str, int]]:
    """Bytes and packets each host's interface received and sent so far."""
    out: dict[str, dict[str, int]] = {}
    for h in p.hosts:
        done = _ip(["ip", "-n", h.netns, "-j", "-s", "link", "show", IFACE])
        try:
            stats: dict[str, Any] = json.loads(done.stdout)[0]["stats64"]
        except (ValueError, LookupError, TypeError):
            continue
        out[h.role] = {
            "rx_bytes": int(stats["rx"]["bytes"]),
            "tx_bytes": int(stats["tx"]["bytes"]),
            "rx_packets": int(stats["rx"]["packets"]),
            "tx_packets": int(stats["tx"]["packets"]),
        }
    return out


def serve_on(state_dir: Path, address: str, seed: int | None) -> None:
    """Mint the simulator's credentials in ``state_dir`` (as it would, with its seed) with a
    server certificate that also names ``address``, the simulator's host on the link, so
    that clients on other hosts verify it as they do 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from simulator.state.credentials import ensure_credentials, issue_leaf, load_ca

    ensure_credentials(state_dir, seed)
    ca_key, ca_cert = load_ca(state_dir)
    names = ("127.0.0.1", "::1", address)
    sans: list[x509.GeneralName] = [x509.DNSName("localhost")]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in names]
    key, cert = issue_leaf(ca_key, ca_cert, "localhost", server=True, sans=sans)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_file = state_dir / "server.key"
    key_file.write_bytes(key_pem)
    key_file.chmod(0o600)
    (state_dir / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
