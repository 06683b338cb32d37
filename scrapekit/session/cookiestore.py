"""The SQLite cookie store: a session's cookies in `.scrapekit/<name>/session.db`.

Part of stage 5 (session); the interface, the memory store and the write-behind (`CookieSync`)
are in `cookiestore_base.py` and re-exported here. The jar file is owner-only (0600 in a 0700
folder) and in WAL mode with a busy timeout, so a second process on the same jar waits instead
of corrupting it. A jar that cannot be read raises `CookieJarCorrupt` naming the fix; it is
never reset silently. The interval (COOKIES_FLUSH_SECONDS) is the caller's to pass to
`CookieSync`.

A read-only store (`read_only=True`, for `scrapekit fetch/shell/parse/check --spider`) changes
nothing on disk: no folder or file is created, the journal mode is not switched, expired
cookies are skipped rather than deleted, and a jar no process has open (no `-wal` file) is read
as an immutable file, so not even SQLite's `-wal`/`-shm` side files appear.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from scrapekit._sqlite import create_if_empty, scalar
from scrapekit.exceptions import CookieJarCorrupt, SessionError
from scrapekit.session.cookiejar import Cookie
from scrapekit.session.cookiestore_base import (
    CookieJarLike,
    CookieKey,
    CookieStore,
    CookieStoreStatistics,
    CookieSync,
    CookieSyncStatistics,
    MemoryCookieStore,
    log,
    run_to_completion,
)

__all__ = [
    "CookieJarLike",
    "CookieStore",
    "CookieStoreStatistics",
    "CookieSync",
    "CookieSyncStatistics",
    "MemoryCookieStore",
    "SqliteCookieStore",
    "remove_jar",
]

T = TypeVar("T")

SCHEMA_VERSION = 1
# The key first, then the rest in the order of the table (and of Cookie's fields).
_KEY_COLUMNS = ("domain", "path", "name")
_VALUE_COLUMNS = ("value", "host_only", "secure", "http_only", "same_site", "expires")
_COLUMNS = (*_KEY_COLUMNS, *_VALUE_COLUMNS, "creation", "last_access")
_SCHEMA = """
CREATE TABLE cookies (
    domain TEXT NOT NULL, path TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    host_only INTEGER NOT NULL, secure INTEGER NOT NULL, http_only INTEGER NOT NULL,
    same_site TEXT, expires REAL, creation REAL NOT NULL, last_access REAL NOT NULL,
    PRIMARY KEY (domain, path, name)
) WITHOUT ROWID
"""
_UPSERT = f"""
INSERT INTO cookies ({", ".join(_COLUMNS)}) VALUES ({", ".join("?" * len(_COLUMNS))})
ON CONFLICT (domain, path, name) DO UPDATE SET
{", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[len(_KEY_COLUMNS) :])}
"""
# SQLite's primary result codes that mean "this file is not a jar we can use", as opposed to
# transient trouble (busy, locked, disk full), after which deleting the jar would be bad advice.
_UNUSABLE = {"CORRUPT", "NOTADB", "CANTOPEN", "PERM", "AUTH", "READONLY"}
_SIDE_FILES = ("-wal", "-shm", "-journal")


class SqliteCookieStore(CookieStore):
    """Cookies in one SQLite file (WAL mode), shared safely by processes on one machine.

    The file is opened in `__aenter__`, or on first use when the store is not entered, so a
    corrupt jar fails before a crawl fetches anything. All SQLite work runs in aiosqlite's
    thread and the file-system checks in a worker thread: the event loop never blocks.

    Args:
        path: the database file; its folder is created owner-only if missing.
        name: the session's name, used in the fix that error messages name.
        busy_timeout: seconds to wait for another process's write lock.
        read_only: load only (see the module docstring); a missing file is an empty jar.
    """

    backend = "sqlite"

    def __init__(
        self, path: Path, *, name: str, busy_timeout: float = 10.0, read_only: bool = False
    ) -> None:
        super().__init__()
        self.read_only = read_only
        self.path = Path(path)
        self.name = name
        self.busy_timeout = busy_timeout
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()  # one transaction at a time on the one connection
        self._closed = False

    @property
    def location(self) -> str:
        return str(self.path)

    async def __aenter__(self) -> SqliteCookieStore:
        if self.read_only:
            return self  # nothing to open: each load() is one short read
        async with self._lock:
            await self._connect()
        return self

    async def load(self) -> list[Cookie]:
        if self.read_only:
            return await self._load_read_only()
        async with self._lock:
            db = await self._connect()
            rows = await run_to_completion(self._load(db))
        self._loaded += len(rows)
        return [_cookie(row) for row in rows]

    async def save(self, upserts: Sequence[Cookie], deletes: Sequence[CookieKey]) -> None:
        rows = [_row(c) for c in upserts]
        keys = list(deletes)
        if not rows and not keys:
            return
        self._refuse_if_read_only("saved")
        async with self._lock:
            db = await self._connect()
            await run_to_completion(self._write(db, rows, keys))

    async def clear(self) -> int:
        self._refuse_if_read_only("cleared")
        async with self._lock:
            db = await self._connect()
            return await run_to_completion(self._clear(db))

    async def aclose(self) -> None:
        async with self._lock:
            self._closed = True
            db, self._db = self._db, None
            if db is not None:
                await run_to_completion(db.close())

    # -- read-only ---------------------------------------------------------------------------

    def _refuse_if_read_only(self, action: str) -> None:
        if self.read_only:
            raise SessionError(f"cookie jar {self.path} is open read-only and cannot be {action}")

    async def _load_read_only(self) -> list[Cookie]:
        """The unexpired cookies, read without writing anything (see the module docstring)."""
        async with self._lock:
            if self._closed:
                raise RuntimeError(f"cookie store {self.path} is closed")
            try:
                rows = await run_to_completion(asyncio.to_thread(self._read_rows))
            except sqlite3.Error as exc:
                raise self._error(exc, "read") from exc
        self._loaded += len(rows)
        return [_cookie(row) for row in rows]

    def _read_rows(self) -> list[Any]:
        """Blocking (run in a thread): one short read; a missing jar has no cookies."""
        if not self.path.exists():
            return []
        if not os.access(self.path, os.R_OK):
            raise self._corrupt("permission denied", unreadable=True)
        # No -wal file: no connection has the jar open (SQLite creates it on the first read
        # and removes it when the last one closes), so the file is read as it is, without
        # locks or side files. A crawl writing meanwhile would write to a new WAL, not to
        # this file, until a checkpoint far later than this one read.
        immutable = "&immutable=1" if not Path(f"{self.path}-wal").exists() else ""
        uri = f"{self.path.resolve().as_uri()}?mode=ro{immutable}"
        db = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout, isolation_level=None)
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise CookieJarCorrupt(
                    f"cookie jar {self.path} was written by a newer scrapekit (schema version "
                    f"{version}, this one reads {SCHEMA_VERSION}); upgrade scrapekit"
                )
            columns = [row[1] for row in db.execute("PRAGMA table_info(cookies)")]
            if version == 0 and not columns:
                return []  # created but never written: an empty jar
            if version != SCHEMA_VERSION or tuple(columns) != _COLUMNS:
                raise self._corrupt("not a scrapekit cookie jar: wrong schema")
            return db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM cookies WHERE expires IS NULL OR expires > ?",
                (time.time(),),
            ).fetchall()
        finally:
            db.close()

    # -- transactions (each runs to completion even if its caller is cancelled) ---------------

    async def _load(self, db: aiosqlite.Connection) -> list[sqlite3.Row]:
        async def work() -> list[sqlite3.Row]:
            await db.execute(
                "DELETE FROM cookies WHERE expires IS NOT NULL AND expires <= ?", (time.time(),)
            )
            return list(await db.execute_fetchall(f"SELECT {', '.join(_COLUMNS)} FROM cookies"))

        return await self._transaction(db, "read", work())

    async def _write(self, db: aiosqlite.Connection, rows: list[Any], keys: list[Any]) -> None:
        async def work() -> None:
            if keys:
                await db.executemany(
                    "DELETE FROM cookies WHERE domain = ? AND path = ? AND name = ?", keys
                )
            if rows:
                await db.executemany(_UPSERT, rows)

        await self._transaction(db, "written", work())
        self._count_save(len(rows), len(keys))

    async def _clear(self, db: aiosqlite.Connection) -> int:
        async def work() -> int:
            cursor = await db.execute("DELETE FROM cookies")
            return cursor.rowcount

        return await self._transaction(db, "cleared", work())

    async def _transaction(
        self, db: aiosqlite.Connection, action: str, work: Coroutine[Any, Any, T]
    ) -> T:
        """Run `work` inside BEGIN IMMEDIATE ... COMMIT; roll back and translate on failure."""
        try:
            # IMMEDIATE takes the write lock up front, where the busy timeout applies; a
            # deferred transaction that upgrades later can fail at once with SQLITE_BUSY.
            await db.execute("BEGIN IMMEDIATE")
            try:
                result = await work
                await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        await db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc, action) from exc
        finally:
            work.close()  # never started if BEGIN failed: no "never awaited" warning
        return result

    # -- opening -------------------------------------------------------------------------------

    async def _connect(self) -> aiosqlite.Connection:
        if self._closed:
            raise RuntimeError(f"cookie store {self.path} is closed")
        if self._db is None:
            self._db = await run_to_completion(self._open())
        return self._db

    async def _open(self) -> aiosqlite.Connection:
        await self._secure_files(_prepare_files)
        db = await aiosqlite.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            await db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            await self._enable_wal(db)
            await db.execute("PRAGMA synchronous = NORMAL")
            await self._check_schema(db)
            await self._secure_files(_tighten_side_files)
        except BaseException as exc:
            await db.close()
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc, "opened") from exc
            raise
        return db

    async def _enable_wal(self, db: aiosqlite.Connection) -> None:
        """Switch the jar to WAL. Two processes opening a new jar at once can make SQLite
        answer "locked" at once (switching journal modes skips the busy handler), so the
        switch is retried within the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                await db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(0.01)

    async def _secure_files(self, check: Callable[[Path], list[Path]]) -> None:
        """Run a file-system permission step in a thread and log what it had to tighten."""
        try:
            tightened = await asyncio.to_thread(check, self.path)
        except PermissionError as exc:
            raise self._corrupt("permission denied", unreadable=True) from exc
        except OSError as exc:
            raise SessionError(f"cookie jar {self.path} cannot be opened ({exc})") from exc
        for path in tightened:
            log.warning("cookie jar permissions tightened", path=str(path))

    async def _check_schema(self, db: aiosqlite.Connection) -> None:
        version = await scalar(db, "PRAGMA user_version")
        if version == 0:  # checked again under the write lock: another process may create it
            version = await create_if_empty(db, [_SCHEMA], SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise CookieJarCorrupt(
                f"cookie jar {self.path} was written by a newer scrapekit (schema version "
                f"{version}, this one reads {SCHEMA_VERSION}); upgrade scrapekit or delete it "
                f"with: scrapekit session clear {self.name}"
            )
        columns = [row[1] for row in await db.execute_fetchall("PRAGMA table_info(cookies)")]
        if version != SCHEMA_VERSION or tuple(columns) != _COLUMNS:
            raise self._corrupt("not a scrapekit cookie jar: wrong schema")

    # -- errors --------------------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error, action: str) -> SessionError:
        """CookieJarCorrupt if the file itself is unusable; SessionError for transient trouble."""
        code = getattr(exc, "sqlite_errorname", "")
        primary = code.removeprefix("SQLITE_").split("_")[0]
        if primary in _UNUSABLE:
            unreadable = primary in {"CANTOPEN", "PERM", "AUTH", "READONLY"}
            return self._corrupt(str(exc), unreadable=unreadable)
        return SessionError(f"cookie jar {self.path} could not be {action} ({_one_line(exc)})")

    def _corrupt(self, reason: object, *, unreadable: bool = False) -> CookieJarCorrupt:
        state = "unreadable" if unreadable else "corrupt"
        return CookieJarCorrupt(
            f"cookie jar {self.path} is {state} ({_one_line(reason)}); "
            f"delete it with: scrapekit session clear {self.name}"
        )


def remove_jar(path: Path) -> bool:
    """Delete a jar file and its -wal/-shm/-journal files; return whether any of them existed.

    Blocking: for the CLI (`scrapekit session clear`), not for the event loop.
    """
    removed = False
    for file in [Path(path), *(Path(f"{path}{suffix}") for suffix in _SIDE_FILES)]:
        try:
            file.unlink()
        except FileNotFoundError:
            continue
        removed = True
    return removed


# -- helpers -----------------------------------------------------------------------------------


def _prepare_files(path: Path) -> list[Path]:
    """Create the jar's folder (0700) and file (0600), tighten looser ones; return those."""
    tightened: list[Path] = []
    folder = path.parent
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        try:
            created.mkdir(mode=0o700)
        except FileExistsError:  # another process won the race: not ours to chmod
            continue
        os.chmod(created, 0o700)  # mkdir's mode is filtered by the umask
    folder_stat = path.parent.stat()
    # Never tighten a shared folder such as /tmp (sticky) or one that belongs to someone else.
    if (
        not missing
        and folder_stat.st_mode & 0o077
        and not folder_stat.st_mode & stat.S_ISVTX
        and folder_stat.st_uid == os.getuid()
    ):
        os.chmod(path.parent, 0o700)
        tightened.append(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if _tighten(path):
            tightened.append(path)
    else:
        os.close(fd)
        os.chmod(path, 0o600)
    return tightened


def _tighten_side_files(path: Path) -> list[Path]:
    return [side for side in (Path(f"{path}-wal"), Path(f"{path}-shm")) if _tighten(side)]


def _tighten(path: Path) -> bool:
    """chmod an existing jar file to 0600 if group or others may touch it; return whether."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(mode):
        raise IsADirectoryError(f"{path} is not a regular file")
    if not mode & 0o077:
        return False
    os.chmod(path, 0o600)
    return True


def _row(cookie: Cookie) -> tuple[Any, ...]:
    # Built on the event loop: the jar's objects are never read from aiosqlite's thread.
    return tuple(getattr(cookie, column) for column in _COLUMNS)


def _cookie(row: Sequence[Any]) -> Cookie:
    fields = dict(zip(_COLUMNS, row, strict=True))
    for flag in ("host_only", "secure", "http_only"):
        fields[flag] = bool(fields[flag])
    return Cookie(**fields)


def _one_line(reason: object) -> str:
    return " ".join(str(reason).split())
