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
from functools import partial
from typing import Any, TypeVar

import aiosqlite

from scrapekit.scheduler.frontier import recrawl
from scrapekit.scheduler.frontier.recrawl import Revisits
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
_CHUNK = 500  # fingerprints per INSERT (SQLite's variable limit is far above)

#: (id, fingerprint, key, priority, record) of a request to queue.
Row = tuple[int, bytes | None, str, int, str]
#: (id, key, priority) of a request queued.
Queued = tuple[int, str, int]
#: (seq, item_id, record) of an outbox row.
ItemRow = tuple[int, str, str]
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


def insert(
    conn: sqlite3.Connection,
    rows: list[Row],
    done: int | None = None,
    revisits: Revisits | None = None,
    fetched: tuple[bytes, float, str | None, str | None] | None = None,
    items: list[ItemRow] | None = None,
) -> tuple[list[Queued], int, int]:
    """Delete request `done` if given (remembering its fetch); queue the rows not seen yet;
    append `items` to the outbox.

    With `revisits` (RECRAWL_AFTER), a row an earlier run fetched too recently is kept out,
    and one fetched long enough ago is queued as a conditional revisit. Return (id, key,
    priority) of the rows queued, how many fingerprints were new, and how many were not due.
    """
    if done is not None:
        conn.execute("DELETE FROM requests WHERE id = ?", (done,))
    if fetched is not None:
        conn.execute(recrawl.REMEMBER, fetched)
    if items:
        conn.executemany("INSERT INTO outbox (seq, item_id, record) VALUES (?, ?, ?)", items)
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
    not_due = 0
    if revisits is not None:
        queued, not_due = _due(conn, queued, revisits)
    conn.executemany(
        "INSERT INTO requests (id, key, priority, not_before, record) VALUES (?, ?, ?, 0, ?)",
        [(row, key, priority, text) for row, _, key, priority, text in queued],
    )
    return [(row, key, priority) for row, _, key, priority, _ in queued], seen, not_due


def _due(conn: sqlite3.Connection, rows: list[Row], revisits: Revisits) -> tuple[list[Row], int]:
    """The rows RECRAWL_AFTER lets through (revisits rewritten), and how many it kept out."""
    eligible = [r[1] for r in rows if r[0] in revisits.rows and r[1] is not None]
    if not eligible:
        return rows, 0
    known = recrawl.history(conn, eligible)
    if not known:
        return rows, 0
    kept: list[Row] = []
    for row in rows:
        past = known.get(row[1]) if row[0] in revisits.rows and row[1] is not None else None
        if past is None:
            kept.append(row)
        elif past[0] <= revisits.cutoff:
            kept.append((row[0], row[1], row[2], row[3], recrawl.revisit(row[4], *past)))
    return kept, len(rows) - len(kept)


def record_marks(conn: sqlite3.Connection, marks: list[MarkRow], delivered: int) -> None:
    """Upsert the feeds' marks and delete the outbox rows up to `delivered`."""
    conn.executemany(
        'INSERT INTO feeds (path, seq, "offset", state) VALUES (?, ?, ?, ?) ON CONFLICT (path) '
        'DO UPDATE SET seq = excluded.seq, "offset" = excluded."offset", state = excluded.state',
        marks,
    )
    conn.execute("DELETE FROM outbox WHERE seq <= ?", (delivered,))


def each(conn: sqlite3.Connection, works: list[Callable[[sqlite3.Connection], Any]]) -> list[Any]:
    """Run the works of a group commit one after the other (in one transaction): their results."""
    return [work(conn) for work in works]


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
