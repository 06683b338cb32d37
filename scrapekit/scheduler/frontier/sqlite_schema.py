"""SQLite frontier, the file: its schema and version, opening and validating it, its errors.

Owns what makes `STATE_DIR/<spider>/frontier.db` a scrapekit frontier: the tables, the
`user_version` that guards them, the file's permissions (0600 in a 0700 folder), WAL and the
busy timeout, and which SQLite errors mean "this file is unusable" (FrontierCorrupt) rather than
transient trouble (FrontierError). A foreign or newer file is refused before anything is written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import structlog

from scrapekit._sqlite import open_private
from scrapekit.exceptions import FrontierCorrupt, FrontierError
from scrapekit.scheduler.frontier import runs
from scrapekit.scheduler.frontier.sqlite_queries import scalar

log = structlog.get_logger(__name__)

SCHEMA_VERSION = 2
#: WAL pages (4 KiB) between automatic checkpoints: 64 MiB.
WAL_CHECKPOINT_PAGES = 16384
# Pages fetched for good (RECRAWL_AFTER): when, and the validators a revisit sends. Kept
# across runs, unlike `seen`.
_FETCHED = (
    """CREATE TABLE IF NOT EXISTS fetched (
        fingerprint BLOB PRIMARY KEY, fetched_at REAL NOT NULL, etag TEXT,
        last_modified TEXT) WITHOUT ROWID""",
)
_OUTBOX = (
    # The items committed and not yet durably in every feed, in commit order; record is
    # the item as a JSON object (items.to_dict + the exporters' json_default).
    "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, item_id TEXT NOT NULL, "
    "record TEXT NOT NULL)",
    # How far each feed (by resolved path) durably wrote: last item seq, the file's size
    # after fsync, and what the exporter needs to continue (JSON text).
    "CREATE TABLE IF NOT EXISTS feeds (path TEXT PRIMARY KEY, seq INTEGER NOT NULL, "
    '"offset" INTEGER NOT NULL, state TEXT NOT NULL) WITHOUT ROWID',
)
_SCHEMA = (
    # id is the order of arrival (first in, first out among equal priorities); a retry or a
    # release keeps it. not_before is wall-clock seconds, 0 for "at once".
    """CREATE TABLE requests (
        id INTEGER PRIMARY KEY, key TEXT NOT NULL, priority INTEGER NOT NULL,
        not_before REAL NOT NULL, record TEXT NOT NULL)""",
    "CREATE INDEX requests_ready ON requests (key, priority DESC, id)",
    "CREATE INDEX requests_later ON requests (key, not_before)",
    "CREATE TABLE seen (fingerprint BLOB PRIMARY KEY) WITHOUT ROWID",
    "CREATE TABLE pauses (key TEXT PRIMARY KEY, until REAL NOT NULL) WITHOUT ROWID",
    *runs.SCHEMA,
    *_FETCHED,
    *_OUTBOX,
)
#: The tables of a version-1 file; a version-1 file gains the others in place (`_upgrade`).
_TABLES_V1 = {"requests", "seen", "pauses"}
_TABLES = _TABLES_V1 | runs.TABLES | {"fetched", "outbox", "feeds"}
#: What turns a version-1 file into this version: CREATE TABLE IF NOT EXISTS statements.
_UPGRADE = (
    "CREATE INDEX IF NOT EXISTS requests_ready ON requests (key, priority DESC, id)",
    "CREATE INDEX IF NOT EXISTS requests_later ON requests (key, not_before)",
    *runs.SCHEMA,
    *_FETCHED,
    *_OUTBOX,
)
_TABLE_NAMES = "SELECT name FROM sqlite_master WHERE type = 'table'"
# Primary result codes that mean "this file is unusable", as opposed to transient trouble.
_UNUSABLE = {"CORRUPT", "NOTADB", "CANTOPEN", "PERM", "AUTH", "READONLY"}


async def open_file(path: Path, busy_timeout: float) -> aiosqlite.Connection:
    """Open the frontier file (created if missing), owner-only, checked and set up.

    Raises PathNotWritable if its folder cannot be made or written, FrontierCorrupt if the file
    is not a usable frontier of this schema version.
    """
    # Checkpoint the WAL every 64 MB rather than every 4 MB: each checkpoint copies pages
    # and fsyncs in the commit thread, and a crawl commits many small transactions.
    return await open_private(
        path,
        busy_timeout,
        "frontier",
        lambda db: _check_schema(db, path),
        lambda exc: sqlite_error(path, exc, "opened"),
        pragmas=[f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}"],
    )


async def _check_schema(db: aiosqlite.Connection, path: Path) -> None:
    await db.execute("BEGIN IMMEDIATE")
    try:
        version = await scalar(db, "PRAGMA user_version")
        tables = {row[0] for row in await db.execute_fetchall(_TABLE_NAMES)}
        if version == 0 and not tables:
            for statement in _SCHEMA:
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            version, tables = SCHEMA_VERSION, set(_TABLES)
        elif version == 1 and _TABLES_V1.issubset(tables):
            for statement in _UPGRADE:
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            version, tables = SCHEMA_VERSION, tables | _TABLES
        await db.execute("COMMIT")
    finally:
        if db.in_transaction:
            await db.execute("ROLLBACK")
    if version > SCHEMA_VERSION:
        raise FrontierCorrupt(
            str(path),
            f"from a newer scrapekit (schema version {version}, this one reads {SCHEMA_VERSION})",
            fix="upgrade scrapekit, or delete it (and its -wal/-shm files) to start afresh",
        )
    if version != SCHEMA_VERSION or not _TABLES.issubset(tables):
        raise FrontierCorrupt(str(path), "not a scrapekit frontier (wrong schema)")


def sqlite_error(path: Path, exc: sqlite3.Error, action: str) -> FrontierError:
    """FrontierCorrupt if the file itself is unusable; FrontierError for transient trouble."""
    code = getattr(exc, "sqlite_errorname", "")
    reason = " ".join(str(exc).split())
    if code.removeprefix("SQLITE_").split("_")[0] in _UNUSABLE:
        return FrontierCorrupt(str(path), f"corrupt or unreadable ({reason})")
    return FrontierError(f"frontier {path} could not be {action} ({reason})")
