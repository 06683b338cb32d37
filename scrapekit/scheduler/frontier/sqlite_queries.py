"""SQLite frontier, the statements: what one transaction or read does to the file.

Plain functions over a connection, run in aiosqlite's thread (`in_thread`): each of push,
commit, retry and pause is one such work function, and a group commit (sqlite_batch.py) runs
the works of many calls in one hop and one transaction (`each`). They know the tables
(sqlite_schema.py) but nothing of the in-memory host index, which the frontier (sqlite.py,
sqlite_index.py) keeps in step.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import aiosqlite

from scrapekit.scheduler.frontier.sqlite_pages import PageWrite, write_pages
from scrapekit.session.cookiestore_base import run_to_completion

T = TypeVar("T")

#: (id, priority, record) of a host's best ready rows, leased ones included. The index is
#: named: left to itself, SQLite picks (key, not_before) for the range and then sorts the
#: host's whole backlog (0.15 s a read with a million rows, against 40 us this way).
READY = (
    "SELECT id, priority, record FROM requests INDEXED BY requests_ready "
    "WHERE key = ? AND not_before <= ? ORDER BY priority DESC, id LIMIT ?"
)
_LATER = "SELECT count(*), min(not_before) FROM requests WHERE key = ? AND not_before > ?"

#: (path, seq, offset, state) of a feed's mark.
MarkRow = tuple[str, int, int, str]


async def in_thread(db: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` with the connection in aiosqlite's thread: one hop for many statements.

    `Connection._execute` is aiosqlite's own queue to that thread (every public method goes
    through it); with `_tx` (see `send`) it is one of the two private names used, for one hop
    per transaction instead of one per statement.
    """
    run: Callable[[Callable[[], T]], Awaitable[T]] = db._execute
    # aiosqlite's thread keeps its last job until the next one: a box it empties lets a
    # batch of requests go as soon as it is written, whatever comes next.
    box = [work]
    return await run(lambda: box.pop()(db._conn))


def send(
    db: aiosqlite.Connection,
    work: Callable[[sqlite3.Connection], T],
    landed: Callable[[tuple[bool, Any]], None],
) -> None:
    """Hand `work` to aiosqlite's thread without awaiting it: the thread itself passes
    `landed` the outcome, (True, result) or (False, the exception), on the event loop.

    One turn of the loop sooner than a task awaiting `in_thread` would run again. It queues
    the job on `Connection._tx`, the queue behind `_execute`, as `_execute` does (with a
    future, which nobody needs to await: the job never raises).
    """
    loop = asyncio.get_running_loop()
    conn = db._conn  # ValueError if the connection is closed
    box = [work]  # emptied when run: see in_thread

    def job() -> None:
        outcome: tuple[bool, Any]
        try:
            outcome = (True, box.pop()(conn))
        except BaseException as exc:
            outcome = (False, exc)
        loop.call_soon_threadsafe(landed, outcome)

    db._tx.put_nowait((loop.create_future(), job))


def atomically(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` in one transaction: committed if it returns, rolled back if it raises."""
    # IMMEDIATE takes the write lock up front, where the busy timeout applies.
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return result


def record_marks(conn: sqlite3.Connection, marks: list[MarkRow], delivered: int) -> None:
    """Upsert the feeds' marks and delete the outbox rows up to `delivered`."""
    conn.executemany(
        'INSERT INTO feeds (path, seq, "offset", state) VALUES (?, ?, ?, ?) ON CONFLICT (path) '
        'DO UPDATE SET seq = excluded.seq, "offset" = excluded."offset", state = excluded.state',
        marks,
    )
    conn.execute("DELETE FROM outbox WHERE seq <= ?", (delivered,))


def each(conn: sqlite3.Connection, works: list[Callable[[sqlite3.Connection], Any]]) -> list[Any]:
    """Run the works of a group commit in order (in one transaction): their results.

    Consecutive page writes run together (sqlite_pages.py): a few statements for all of them.
    """
    results: list[Any] = []
    pages: list[PageWrite] = []
    for work in works:
        if isinstance(work, PageWrite):
            pages.append(work)
            continue
        if pages:
            results.extend(write_pages(conn, pages))
            pages = []
        results.append(work(conn))
    if pages:
        results.extend(write_pages(conn, pages))
    return results


def statement(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> None:
    conn.execute(sql, args)


def fetch(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> list[Any]:
    return conn.execute(sql, args).fetchall()


def first_ready(conn: sqlite3.Connection, keys: list[str], wall: float) -> list[Any]:
    """(key, id, priority) of each host's best ready row: one indexed lookup per host, which
    beats ranking the whole table (a window function over a million rows takes about 1 s)."""
    found = []
    for key in keys:
        row = conn.execute(READY, (key, wall, 1)).fetchone()
        if row is not None:
            found.append((key, row[0], row[1]))
    return found


def recount(
    conn: sqlite3.Connection, key: str, wall: float, limit: int
) -> tuple[int, float | None, list[Any]]:
    """A host's rows still waiting at `wall` (count, earliest time) and its best `limit`
    ready ones (as READY)."""
    count, due = conn.execute(_LATER, (key, wall)).fetchone()
    return int(count), due, conn.execute(READY, (key, wall, limit)).fetchall()


async def scalar(db: aiosqlite.Connection, sql: str) -> int:
    rows = list(await db.execute_fetchall(sql))
    return int(rows[0][0])


async def transaction(db: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` in one transaction in aiosqlite's thread, to its end even if the caller
    is cancelled (opening a frontier: before any group commit runs)."""
    return await run_to_completion(in_thread(db, partial(atomically, work=work)))
