"""The sender's SQLite database, shared by the token store and the outbox."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path | str, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """A connection in WAL mode; committed data survives a killed process."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn
