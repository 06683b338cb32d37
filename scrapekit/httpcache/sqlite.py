"""The SQLite HTTP cache: a spider's stored responses in `STATE_DIR/<spider>/httpcache.db`.

Opened, locked and checked like the other state files (see scheduler/frontier/sqlite_schema.py):
owner-only (0600 in a 0700 folder), WAL with a busy timeout, a `user_version` guarding the
schema, and a file that is not a usable cache refused with one line naming it and the fix
(HttpCacheCorrupt, exit code 2), never reset silently. Every SQLite call runs in aiosqlite's
thread and the file-system steps in a worker thread: the event loop never blocks. Headers and
redirects are JSON text, the body a blob: nothing is pickled.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
import structlog

from scrapekit._sqlite import create_if_empty, open_private
from scrapekit.exceptions import HttpCacheCorrupt, HttpCacheError
from scrapekit.httpcache.base import CachedEntry, HttpCache

log = structlog.get_logger(__name__)

SCHEMA_VERSION = 1
_COLUMNS = (
    "fingerprint", "method", "request_url", "url", "status", "headers", "body", "http_version",
    "redirect_urls", "stored_at",
)  # fmt: skip
# A rowid table, not WITHOUT ROWID: rows hold whole bodies, far over a page.
_SCHEMA = """
CREATE TABLE responses (
    fingerprint BLOB NOT NULL UNIQUE, method TEXT NOT NULL, request_url TEXT NOT NULL,
    url TEXT NOT NULL, status INTEGER NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL,
    http_version TEXT NOT NULL, redirect_urls TEXT NOT NULL, stored_at REAL NOT NULL
)
"""
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM responses WHERE fingerprint = ?"
_UPSERT = (
    f"INSERT OR REPLACE INTO responses ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_COLUMNS))})"
)
# Primary result codes that mean "this file is unusable", as opposed to transient trouble.
_UNUSABLE = {"CORRUPT", "NOTADB", "CANTOPEN", "PERM", "AUTH", "READONLY"}


class SqliteHttpCache(HttpCache):
    """Responses in one SQLite file, one row per request fingerprint."""

    backend = "sqlite"

    def __init__(self, path: Path, *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._db: aiosqlite.Connection | None = None
        self._opening = asyncio.Lock()

    @property
    def location(self) -> str:
        return str(self.path)

    async def __aenter__(self) -> SqliteHttpCache:
        await self._connect()
        return self

    async def get(self, fingerprint: bytes) -> CachedEntry | None:
        db = await self._connect()
        try:
            rows = list(await db.execute_fetchall(_SELECT, (fingerprint,)))
        except sqlite3.Error as exc:
            raise self._error(exc, "read") from exc
        if not rows:
            return None
        try:
            return _entry(rows[0])
        except (TypeError, ValueError) as exc:  # a row no scrapekit wrote
            raise HttpCacheError(f"HTTP cache {self.path}: unreadable entry ({exc})") from exc

    async def put(self, entry: CachedEntry) -> None:
        row = _row(entry)  # built on the event loop: the entry is never read from the thread
        db = await self._connect()
        try:
            await db.execute(_UPSERT, row)  # autocommit: one statement, one transaction
        except sqlite3.Error as exc:
            raise self._error(exc, "written") from exc

    async def aclose(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    # -- opening -------------------------------------------------------------------------------

    async def _connect(self) -> aiosqlite.Connection:
        async with self._opening:
            if self._db is None:
                self._db = await self._open()
            return self._db

    async def _open(self) -> aiosqlite.Connection:
        return await open_private(
            self.path,
            self.busy_timeout,
            "HTTP cache",
            self._check_schema,
            lambda exc: self._error(exc, "opened"),
        )

    async def _check_schema(self, db: aiosqlite.Connection) -> None:
        version = await create_if_empty(db, [_SCHEMA], SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise HttpCacheCorrupt(
                str(self.path),
                f"from a newer scrapekit (schema version {version}, this one reads "
                f"{SCHEMA_VERSION})",
            )
        columns = [row[1] for row in await db.execute_fetchall("PRAGMA table_info(responses)")]
        if version != SCHEMA_VERSION or tuple(columns) != _COLUMNS:
            raise HttpCacheCorrupt(str(self.path), "not a scrapekit HTTP cache (wrong schema)")

    def _error(self, exc: sqlite3.Error, action: str) -> HttpCacheError:
        """HttpCacheCorrupt if the file itself is unusable; HttpCacheError for transient trouble."""
        code = getattr(exc, "sqlite_errorname", "")
        reason = " ".join(str(exc).split())
        if code.removeprefix("SQLITE_").split("_")[0] in _UNUSABLE:
            return HttpCacheCorrupt(str(self.path), f"corrupt or unreadable ({reason})")
        return HttpCacheError(f"HTTP cache {self.path} could not be {action} ({reason})")


def _row(entry: CachedEntry) -> tuple[Any, ...]:
    return (
        entry.fingerprint, entry.method, entry.request_url, entry.url, entry.status,
        json.dumps([list(pair) for pair in entry.headers], ensure_ascii=False), entry.body,
        entry.http_version, json.dumps(list(entry.redirect_urls), ensure_ascii=False),
        entry.stored_at,
    )  # fmt: skip


def _entry(row: Any) -> CachedEntry:
    (fingerprint, method, request_url, url, status, headers, body, version, redirects, stored) = row
    return CachedEntry(
        fingerprint=bytes(fingerprint),
        method=str(method),
        request_url=str(request_url),
        url=str(url),
        status=int(status),
        headers=[(str(name), str(value)) for name, value in json.loads(headers)],
        body=bytes(body),
        http_version=str(version),
        redirect_urls=[str(u) for u in json.loads(redirects)],
        stored_at=float(stored),
    )
