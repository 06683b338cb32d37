"""SQLite frontier, the statements: what one transaction or read does to the file.

Plain functions over a connection, run in aiosqlite's thread (`in_thread`): each of push,
commit, retry and pause is one such work function, and a group commit (sqlite_batch.py) runs
the works of many calls in one hop and one transaction (`each`). They know the tables
(sqlite_schema.py) but nothing of the in-memory host index, which the frontier (sqlite.py)
keeps in step.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")

#: (id, priority, record) of a host's best ready rows, leased ones included.
READY = (
    "SELECT id, priority, record FROM requests WHERE key = ? AND not_before <= ? "
    "ORDER BY priority DESC, id LIMIT ?"
)
_LATER = "SELECT count(*), min(not_before) FROM requests WHERE key = ? AND not_before > ?"
_CHUNK = 500  # fingerprints per INSERT (SQLite's variable limit is far above)

#: (id, fingerprint, key, priority, record) of a request to queue.
Row = tuple[int, bytes | None, str, int, str]
#: (id, key, priority) of a request queued.
Queued = tuple[int, str, int]


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


def insert(
    conn: sqlite3.Connection, rows: list[Row], done: int | None = None
) -> tuple[list[Queued], int]:
    """Delete request `done` if given; record the new fingerprints and queue their rows.

    Return (id, key, priority) of the rows queued, and how many fingerprints were new.
    """
    if done is not None:
        conn.execute("DELETE FROM requests WHERE id = ?", (done,))
    fingerprints = [r[1] for r in rows if r[1] is not None]
    new: set[bytes] = set()
    for start in range(0, len(fingerprints), _CHUNK):
        chunk = fingerprints[start : start + _CHUNK]
        sql = (
            f"INSERT INTO seen (fingerprint) VALUES {', '.join(['(?)'] * len(chunk))} "
            "ON CONFLICT DO NOTHING RETURNING fingerprint"
        )
        new.update(found for (found,) in conn.execute(sql, chunk).fetchall())
    seen = len(new)
    queued = []
    for row in rows:
        fingerprint = row[1]
        if fingerprint is not None:
            if fingerprint not in new:
                continue
            new.discard(fingerprint)  # a second copy in the batch is a duplicate
        queued.append(row)
    conn.executemany(
        "INSERT INTO requests (id, key, priority, not_before, record) VALUES (?, ?, ?, 0, ?)",
        [(row, key, priority, text) for row, _, key, priority, text in queued],
    )
    return [(row, key, priority) for row, _, key, priority, _ in queued], seen


def each(conn: sqlite3.Connection, works: list[Callable[[sqlite3.Connection], Any]]) -> list[Any]:
    """Run the works of a group commit one after the other (in one transaction): their results."""
    return [work(conn) for work in works]


def statement(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> None:
    conn.execute(sql, args)


def fetch(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> list[Any]:
    return conn.execute(sql, args).fetchall()


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
