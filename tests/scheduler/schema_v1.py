"""A frontier file as scrapekit's first durable frontier wrote it (schema version 1)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_V1 = """
    CREATE TABLE requests (id INTEGER PRIMARY KEY, key TEXT NOT NULL,
        priority INTEGER NOT NULL, not_before REAL NOT NULL, record TEXT NOT NULL);
    CREATE INDEX requests_ready ON requests (key, priority DESC, id);
    CREATE INDEX requests_later ON requests (key, not_before);
    CREATE TABLE seen (fingerprint BLOB PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE pauses (key TEXT PRIMARY KEY, until REAL NOT NULL) WITHOUT ROWID;
    PRAGMA user_version = 1;
"""


def create_v1(path: Path) -> sqlite3.Connection:
    """Create a version-1 frontier file at `path` (owner-only, as scrapekit keeps it) and
    return a connection to it, for the test to fill and close."""
    path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_V1)
    path.chmod(0o600)
    return conn
