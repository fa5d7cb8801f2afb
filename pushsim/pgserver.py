"""A throwaway PostgreSQL server: initdb and pg_ctl from the machine's packages, in a temp
dir, on a free loopback port. The sender's PostgreSQL tests and ``pushsim run`` use it::

    from pushsim.pgserver import PgServer, unavailable

    if (why := unavailable()) is None:
        with PgServer() as pg:                # initdb, start, create the database
            url = pg.url                      # postgresql://pushsim@127.0.0.1:PORT/pushsim
            ...                               # pushsim sender --store URL
                                              # stopped and its directory removed on exit

- :func:`bin_dir`: where ``initdb``, ``pg_ctl`` and ``postgres`` are (``$PUSHSIM_PG_BIN``,
  else the newest ``/usr/lib/postgresql/*/bin``, else ``$PATH``); :func:`unavailable` says
  why no server can be had here (None: it can).
- :class:`PgServer` ``(base=None, host="127.0.0.1", port=0)``: ``start()`` / ``stop()``
  run it under ``pg_ctl`` (``stop`` keeps the data: ``start`` again); ``close()`` (or
  leaving ``with``) also removes the temp dir. To run it under a supervisor of your own
  (in a network namespace, as a child you kill): ``init()``, then ``argv()`` in the
  foreground with ``popen_user()`` as Popen's ``user=``, then ``wait_ready()`` and
  ``create_database()``.

PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user
(``nobody`` where there is none), which owns the temp dir. The server trusts connections
from its own network (loopback, or the subnet of the address it listens on; no password)
and, being throwaway, skips fsync: a killed *client* loses
nothing it committed, a crash of the machine may lose the server's last commits.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

USER = "pushsim"  # the database's superuser
DATABASE = "pushsim"
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
}


def bin_dir() -> Path | None:
    """The directory holding PostgreSQL's server binaries, or None."""
    given = os.environ.get("PUSHSIM_PG_BIN")
    if given:
        return Path(given) if (Path(given) / "initdb").exists() else None
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if found:
        return max(found, key=lambda p: _version(p.parent.name))
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in name.split(".") if x.isdigit())


def unavailable() -> str | None:
    """Why no throwaway server can be started here (None: it can)."""
    found = bin_dir()
    if found is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl): install Debian's postgresql"
    for tool in ("initdb", "pg_ctl", "postgres", "createdb"):
        if not (found / tool).exists():
            return f"no {tool} beside {found / 'initdb'}"
    if os.geteuid() == 0 and _run_as() is None:
        return "running as root and no postgres or nobody user to run the server as"
    return None


def _run_as() -> str | None:
    """The user the server runs as: ourselves unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    return None


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class PgServerError(RuntimeError):
    """The server could not be initialised or started (the message quotes its log)."""


class PgServer:
    def __init__(self, base: Path | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.own_base = base is None
        self.base = Path(tempfile.mkdtemp(prefix="pushsim-pg-")) if base is None else base
        self.host = host
        self.port = port or free_port(host)
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        found = bin_dir()
        if found is None:
            raise PgServerError(unavailable() or "no PostgreSQL binaries")
        self.bin = found
        self.user = _run_as()
        self.started = False

    @property
    def url(self) -> str:
        """The URL of the database ``start`` creates."""
        return self.database_url(DATABASE)

    def database_url(self, name: str) -> str:
        """The URL of database ``name`` on this server (see :meth:`create_database`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{USER}@{host}:{self.port}/{name}"

    def popen_user(self) -> str | None:
        """The ``user=`` to run this server's binaries with (None: as ourselves)."""
        return self.user

    def _run(self, *argv: str, timeout: float = 60.0) -> None:
        res = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            user=self.user,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.base,
        )
        if res.returncode != 0:
            tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
            raise PgServerError(f"{argv[0]} failed: {' / '.join(tail)}{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()[-3:]
        except OSError:
            return ""
        return f" (log: {' / '.join(lines)})" if lines else ""

    def init(self) -> None:
        """Create the cluster (once): trust auth for local connections, settings above."""
        self.base.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            os.chown(self.base, pwd.getpwnam(self.user).pw_uid, -1)
            self.base.chmod(0o700)
        if (self.data / "PG_VERSION").exists():
            return
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        conf = "".join(f"{k} = '{v}'\n" for k, v in SETTINGS.items())
        with (self.data / "postgresql.conf").open("a") as f:
            f.write(f"\n# pushsim (throwaway server)\n{conf}")
        with (self.data / "pg_hba.conf").open("a") as f:
            # Clients on the listening address's own network (loopback, or the private link
            # of a run spread over network namespaces) are trusted too.
            f.write("host all all samenet trust\n")

    def argv(self) -> list[str]:
        """The server in the foreground (``init()`` first); it listens on host:port."""
        return [
            str(self.bin / "postgres"), "-D", str(self.data),
            "-c", f"listen_addresses={self.host}", "-p", str(self.port),
            "-c", f"unix_socket_directories={self.base}",
        ]  # fmt: skip

    def start(self, timeout: float = 60.0) -> str:
        """initdb (once), start under pg_ctl, create the database; returns :attr:`url`."""
        self.init()
        opts = " ".join(f'"{a}"' if " " in a else a for a in self.argv()[3:])
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts,
            "-w", "-t", str(int(timeout)), "start", timeout=timeout + 10,
        )  # fmt: skip
        self.started = True
        self.create_database()
        return self.url

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the server accepts connections (it was started some other way)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise PgServerError(
                        f"PostgreSQL not listening on {self.host}:{self.port} after"
                        f" {timeout:.0f}s{self._log_tail()}"
                    ) from None
                time.sleep(0.1)

    def create_database(self, name: str = DATABASE) -> None:
        """Create a database (already there is fine); the server must be running."""
        try:
            self._run("createdb", "-h", self.host, "-p", str(self.port), "-U", USER, name)
        except PgServerError as exc:
            if "already exists" not in str(exc):
                raise

    def stop(self) -> None:
        """Stop the server if ``start`` started it (its data stays: ``start`` again)."""
        if self.started:
            with contextlib.suppress(PgServerError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False

    def close(self) -> None:
        """Stop the server and remove the temp dir (one this object made)."""
        self.stop()
        if self.own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PgServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
