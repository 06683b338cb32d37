"""The steps scrapekit's SQLite files (frontier, HTTP cache, cookie jar) take alike.

Each store owns its schema, its checks and its errors; these helpers only do the shared steps
the same way: an owner-only file opened with a busy timeout, checked before WAL is switched on
(so a foreign file is left as it was), and a schema created only in an empty file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aiosqlite
import structlog

from scrapekit import state
from scrapekit.exceptions import PathNotWritable

log = structlog.get_logger(__name__)


async def scalar(db: aiosqlite.Connection, sql: str) -> int:
    """The first column of the first row of `sql`, as an int."""
    rows = list(await db.execute_fetchall(sql))
    return int(rows[0][0])


async def open_private(
    path: Path,
    busy_timeout: float,
    what: str,
    check: Callable[[aiosqlite.Connection], Awaitable[None]],
    error: Callable[[sqlite3.Error], Exception],
    pragmas: Sequence[str] = (),
) -> aiosqlite.Connection:
    """Open `path` (created if missing, owner-only), run `check` on it, then switch on WAL.

    `what` names the file in the log and errors ("HTTP cache"); `error` turns an SQLite error
    into the store's own; `pragmas` are run last.

    Raises:
        PathNotWritable: the folder cannot be made or written.
    """
    try:
        if await asyncio.to_thread(state.private_file, path):
            log.warning(f"{what} permissions tightened", path=str(path))
    except OSError as exc:
        raise PathNotWritable(
            f"the {what}", str(path), state.problem(exc, path.parent), "STATE_DIR"
        ) from exc
    db = await aiosqlite.connect(path, timeout=busy_timeout, isolation_level=None)
    try:
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        await check(db)  # first: a foreign file is left as it was
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        for pragma in pragmas:
            await db.execute(pragma)
    except BaseException as exc:
        await db.close()
        if isinstance(exc, sqlite3.Error):
            raise error(exc) from exc
        raise
    return db


async def create_if_empty(db: aiosqlite.Connection, schema: Sequence[str], version: int) -> int:
    """The file's schema version (`PRAGMA user_version`); an empty file (no table, version 0)
    first gets `schema` and `version`. Under the write lock, so two processes opening a new
    file do not both create it."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        found = await scalar(db, "PRAGMA user_version")
        tables = await scalar(db, "SELECT count(*) FROM sqlite_master")
        if found == 0 and tables == 0:
            for statement in schema:
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {version}")
            found = version
        await db.execute("COMMIT")
    finally:
        if db.in_transaction:
            await db.execute("ROLLBACK")
    return found
