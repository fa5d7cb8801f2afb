"""What the namespace mounts and what COMMAND inherits, written under ``DIR/exec/``.

- ``hosts``: every real provider name on 127.0.0.1 (plus localhost and this machine's name),
  bound over ``/etc/hosts``;
- ``resolv.conf``: empty (no resolver: a name not in ``hosts`` does not resolve);
- ``nsswitch.conf``: the system's, with hosts looked up in ``files`` then ``dns`` only (no
  resolver daemon reached over a Unix socket, no multicast DNS);
- the trust bundle and truststore (:mod:`simulator.netns.trust`) and the environment.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from simulator.frontdoor.names import hosts_lines
from simulator.netns.trust import trust_env, write_bundle, write_truststore

NSSWITCH = Path("/etc/nsswitch.conf")
# a proxy would be asked for every name, and none is reachable from the namespace
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "grpc_proxy")


@dataclass(frozen=True)
class Sandbox:
    hosts: Path
    resolv: Path
    nsswitch: Path | None
    extra_env: dict[str, str] = field(default_factory=dict)  # trust, PUSHSIM_STATE_DIR

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """COMMAND's environment: ``base`` without proxy settings, plus :attr:`extra_env`."""
        return child_env(base, self.extra_env)

    def binds(self) -> list[tuple[Path, Path]]:
        """(file, the system file it is bound over) for the namespace's mount table."""
        out = [(self.hosts, Path("/etc/hosts")), (self.resolv, Path("/etc/resolv.conf"))]
        if self.nsswitch is not None:
            out.append((self.nsswitch, NSSWITCH))
        return out


def hosts_text() -> str:
    local = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    me = socket.gethostname()
    if me and me != "localhost":
        local.append(f"127.0.0.1\t{me}")
    return "\n".join(["# pushsim exec: the real provider names, on the simulator", *local])


def hosts_file_text() -> str:
    return hosts_text() + "\n" + "\n".join(hosts_lines()) + "\n"


def nsswitch_text(system: str) -> str:
    """``system`` with its ``hosts:`` line replaced by ``files dns``."""
    lines = [
        "hosts: files dns" if line.split(":", 1)[0].strip() == "hosts" else line
        for line in system.splitlines()
    ]
    if not any(line.startswith("hosts:") for line in lines):
        lines.append("hosts: files dns")
    return "\n".join(lines) + "\n"


def child_env(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``base`` without proxy settings, plus ``extra``."""
    env = {k: v for k, v in base.items() if k.lower() not in _PROXY_VARIABLES}
    env.update(extra)
    return env


def prepare(state_dir: Path, ca_file: Path) -> Sandbox:
    """Write ``DIR/exec/*`` for a namespace serving ``state_dir`` and return what it holds."""
    out = state_dir / "exec"
    out.mkdir(parents=True, exist_ok=True)
    hosts = out / "hosts"
    hosts.write_text(hosts_file_text())
    resolv = out / "resolv.conf"
    resolv.write_text("# pushsim exec: no resolver; names come from /etc/hosts only\n")
    nsswitch: Path | None = None
    if NSSWITCH.is_file():
        nsswitch = out / "nsswitch.conf"
        nsswitch.write_text(nsswitch_text(NSSWITCH.read_text()))
    bundle = write_bundle(out, ca_file)
    env = trust_env(bundle, write_truststore(out, bundle))
    env["PUSHSIM_STATE_DIR"] = str(state_dir.resolve())
    return Sandbox(hosts, resolv, nsswitch, env)
