"""SQLite frontier, the store: the open file, its group commit, and the crawl's records in it.

`SqliteStore` is the part of the SQLite frontier that knows the file and not the queues:
opening and closing it (the schema is sqlite_schema.py), the one way memory writes to it (a
work function run by the group commit, sqlite_batch.py, with what memory does once it is
durable) and reads it (under the lock batches take too), and the records a crawl keeps beside
its requests: its runs and start() position (runs.py), the items outbox and the feeds' marks.
On top of it, the host index and its reads are sqlite_index.py's `SqliteIndex`, and the
queues and leases sqlite.py's `SqliteFrontier`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Self, TypeVar

import aiosqlite

from scrapekit.exceptions import FrontierCorrupt, FrontierError
from scrapekit.scheduler.frontier import runs
from scrapekit.scheduler.frontier.base import FeedMark, OutboxItem
from scrapekit.scheduler.frontier.hosts import IndexedFrontier
from scrapekit.scheduler.frontier.sqlite_batch import GroupCommit, Outcome, Work
from scrapekit.scheduler.frontier.sqlite_queries import (
    atomically,
    each,
    fetch,
    in_thread,
    record_marks,
    send,
)
from scrapekit.scheduler.frontier.sqlite_schema import open_file, sqlite_error
from scrapekit.session.cookiestore_base import run_to_completion

T = TypeVar("T")


class SqliteStore(IndexedFrontier):
    """The frontier file: opened, written through the group commit, read under its lock.

    Args:
        path: the database file; its folder is created owner-only if missing.
        busy_timeout: seconds to wait for another process's write lock.
    """

    def __init__(self, path: Path, *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._run = runs.NOT_DURABLE
        self._db: aiosqlite.Connection | None = None
        # Held by every read and every batch while memory catches up with it, so a read sees
        # the file as memory knows it; what needs no file (leases from the read-ahead, gates,
        # releases) goes on meanwhile.
        self._lock = asyncio.Lock()
        self._batches = GroupCommit(self._lock, self._send_batch)
        self._offset = time.time() - time.monotonic()  # wall = monotonic + offset
        self._seq = 0  # the last item seq handed out (items are numbered in call order)

    @property
    def transactions(self) -> int:
        """Write transactions run so far: a group commit runs many writes in each."""
        return self._batches.batches

    # -- opening and closing -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        async with self._lock:
            await self._connect()
        return self

    async def aclose(self) -> None:
        await self._batches.drain()
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                await run_to_completion(db.close())

    async def _connect(self) -> aiosqlite.Connection:
        if self._db is None:
            self._db = await run_to_completion(self._open_db())
        return self._db

    async def _open_db(self) -> aiosqlite.Connection:
        db = await open_file(self.path, self.busy_timeout)
        try:
            await self._load(db)
        except BaseException as exc:
            await db.close()
            if isinstance(exc, sqlite3.Error):
                raise sqlite_error(self.path, exc, "opened") from exc
            raise
        return db

    @abstractmethod
    async def _load(self, db: aiosqlite.Connection) -> None:
        """Record this run and rebuild memory from the file (the queues' part)."""

    # -- runs --------------------------------------------------------------------------------

    def run_start(self) -> runs.RunStart:
        return self._run

    async def record_start(self, stored: int, done: bool) -> None:
        await self._run_write(partial(runs.record_start, stored=stored, done=done))

    async def record_run(self, progress: runs.RunProgress) -> None:
        if self._run.run is not None:
            work = partial(runs.progress, run=self._run.run, counts=progress, wall=time.time())
            await self._run_write(work)

    async def end_run(self, progress: runs.RunProgress, finish_reason: str, exit_code: int) -> None:
        if self._run.run is not None:
            work = partial(
                runs.end, run=self._run.run, counts=progress, wall=time.time(),
                finish_reason=finish_reason, exit_code=exit_code,
            )  # fmt: skip
            await self._run_write(work)

    async def _run_write(self, work: Callable[[sqlite3.Connection], None]) -> None:
        if self._db is not None:  # closed: nothing to record into
            await self._write(work, _nothing)

    # -- the outbox and the feeds' marks -----------------------------------------------------

    @property
    def durable(self) -> bool:
        return True

    @property
    def last_seq(self) -> int:
        return self._seq

    async def outbox_pending(self) -> int:
        rows = await self._fetch("SELECT count(*) FROM outbox")
        return int(rows[0][0])

    async def outbox_rows(self, after: int, upto: int, limit: int) -> list[OutboxItem]:
        sql = (
            "SELECT seq, item_id, record FROM outbox WHERE seq > ? AND seq <= ? "
            "ORDER BY seq LIMIT ?"
        )
        rows = await self._fetch(sql, (after, upto, limit))
        found = []
        for seq, item_id, text in rows:
            try:
                item = json.loads(text)
            except ValueError as exc:
                raise FrontierCorrupt(
                    str(self.path), f"holding an unreadable item (seq {seq}: {exc})"
                ) from exc
            found.append(OutboxItem(int(seq), str(item_id), item))
        return found

    async def feed_marks(self) -> Mapping[str, FeedMark]:
        rows = await self._fetch('SELECT path, seq, "offset", state FROM feeds')
        return {str(p): FeedMark(str(p), int(q), int(o), str(t)) for p, q, o, t in rows}

    async def record_marks(self, marks: Sequence[FeedMark], delivered: int) -> None:
        rows = [(m.key, m.seq, m.offset, m.state) for m in marks]
        await self._write(partial(record_marks, marks=rows, delivered=delivered), _nothing)

    # -- transactions ------------------------------------------------------------------------

    async def _write(
        self, work: Callable[[sqlite3.Connection], T], apply: Callable[[T], None]
    ) -> T:
        """Run `work` in the next group commit; `apply(result)` updates memory once durable."""
        if self._db is None:
            async with self._reading():
                await self._connect()
        return await self._batches.submit(work, apply)

    def _send_batch(self, works: list[Work], landed: Callable[[Outcome], None]) -> None:
        """Send a group commit's works to the thread as one transaction (see sqlite_batch.py)."""
        if self._db is None:
            raise FrontierError(f"frontier {self.path} could not be written (it is closed)")
        path = self.path

        def translated(outcome: Outcome) -> None:
            ok, value = outcome
            if not ok and isinstance(value, sqlite3.Error):
                error = sqlite_error(path, value, "written")
                error.__cause__ = value
                outcome = (False, error)
            landed(outcome)

        send(self._db, partial(atomically, work=partial(each, works=works)), translated)

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[None]:
        """Hold the lock for a read: no batch is sent meanwhile (see sqlite_batch.py)."""
        try:
            async with self._lock:
                yield
        finally:
            self._batches.kick()

    async def _read(self, db: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in the thread (the caller holds `_reading()`); SQLite errors become
        FrontierError (one line)."""
        try:
            return await in_thread(db, work)
        except sqlite3.Error as exc:
            raise sqlite_error(self.path, exc, "read") from exc

    async def _fetch(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        """The rows of one query, read under the lock."""
        async with self._reading():
            db = await self._connect()
            return await self._read(db, partial(fetch, sql=sql, args=args))


def _nothing(_: object) -> None:
    """A write whose success changes nothing in memory (run rows, feeds' marks)."""
