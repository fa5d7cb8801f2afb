"""The database the reference sender's instances share.

``pushsim run --store URL`` names one; a scenario with ``sender: {store: postgresql}`` and
no ``--store`` gets a throwaway PostgreSQL (:class:`pushsim.pgserver.PgServer`) started as
the run's child ``postgres`` (log ``OUT/postgres.log``), so it is stopped with the run's
other parts -- after the senders -- its CPU is counted, and with ``--hosts`` it runs on a
host of its own. Its data lives in a temp dir removed after the run.
"""

from __future__ import annotations

import asyncio
import pwd
from pathlib import Path

from loadtests.run import HarnessError
from loadtests.run.processes import ProcessGroup, died
from loadtests.scenario.model import SenderShape

PG_PORT = 5432


async def store_url(
    procs: ProcessGroup,
    out: Path,
    shape: SenderShape,
    given: str | None,
    *,
    host: str = "127.0.0.1",
    clients: str | None = None,
    startup_s: float = 60.0,
) -> str | None:
    """The ``--store`` URL the instances share: ``given``, else a throwaway PostgreSQL when
    the scenario asks for one (listening on ``host``, trusting connections from the
    ``clients`` network too), else None: SQLite."""
    if given is not None:
        return given
    if shape.store != "postgresql":
        return None
    return await start_postgres(procs, out, host=host, clients=clients, startup_s=startup_s)


async def start_postgres(
    procs: ProcessGroup, out: Path, *, host: str, clients: str | None, startup_s: float
) -> str:
    from pushsim.pgserver import PgServer, PgServerError, unavailable

    why = unavailable()
    if why is not None:
        raise HarnessError(f"store: postgresql: {why} (or pass --store URL)")
    # on a host of its own (clients on the link) every port is free; here, any free one
    pg = PgServer(host=host, port=PG_PORT if clients is not None else 0)
    procs.cleanups.append(pg.close)  # after the server is stopped: its temp dir goes
    log = out / "postgres.log"
    try:
        await asyncio.to_thread(pg.init)
        if clients is not None:
            trust(pg.data / "pg_hba.conf", clients)
        procs.start("postgres", as_user(pg.popen_user(), pg.argv()), log)
        await asyncio.to_thread(pg.wait_ready, startup_s)
        await asyncio.to_thread(pg.create_database)
    except PgServerError as exc:
        raise HarnessError(died(f"PostgreSQL did not start: {exc}", log)) from exc
    return pg.url


def as_user(user: str | None, argv: list[str]) -> list[str]:
    """``argv`` run as ``user`` (None: as we are). ``setpriv`` rather than Popen's ``user=``
    so that a command line put in front (``ip netns exec``) still runs as root."""
    if user is None:
        return argv
    entry = pwd.getpwnam(user)
    return [
        "setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--",
        *argv,
    ]  # fmt: skip


def trust(hba: Path, network: str) -> None:
    """Let the throwaway server trust connections from ``network`` (the run's link)."""
    with hba.open("a", encoding="utf-8") as f:
        f.write(f"\n# pushsim run --hosts: the run's private link\nhost all all {network} trust\n")
