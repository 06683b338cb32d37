"""Durable frontier: pending requests, seen fingerprints and host pauses in SQLite.

Chosen with FRONTIER = "sqlite"; the file is `STATE_DIR/<spider>/frontier.db` (0600 in a
0700 folder, WAL, a busy timeout), next to the cookie jar and apart from it. Requests are
stored as JSON records (records.py: callbacks by method name, no pickle).

What lives where. The requests live only in the file, so memory does not grow with the
backlog. In memory there is one small record per host (its counts, its gate, the rank of its
best ready request) and the leases (at most CONCURRENCY; a lease ends with the process, so a
leased request is still a row, pending again in the next run). Choosing the best host is the
memory backend's heap of open hosts; the file is read once per lease (the leased request and
the host's next best) and when a host's retry comes due. All SQLite work runs in aiosqlite's
thread; each of push, commit, retry and pause is one transaction.

Times. The interface's clock is `time.monotonic()`; not-before and paused-until times are
stored as wall-clock times (`time.time()`), converted with one offset taken at open, so they
mean the same after a restart.

Runs. Opening decides, in one transaction, whether this run resumes the unfinished crawl (its
pending requests, seen fingerprints, undelivered items (the outbox) and its feeds' marks are
kept, it goes on where the last run stopped) or begins a new one (runs.py: the `runs` table,
how far start() was stored, FRESH); the caller holds the run lock (runlock.py), so no other
process writes the file meanwhile.

Items. `commit` appends the page's items to the outbox table in the transaction that
acknowledges the page, then hands them (the objects, not the rows) to the outbox reader; after
a crash the reader reads the rows back (`outbox_rows`). Items are stored as JSON objects
(`items.to_dict` + the exporters' `json_default`), never pickled.

Parts. This module owns the `SqliteFrontier` class: the interface methods, which keep the file
and the in-memory host index in step under one lock, and `_Host`, what the index asks of a
host whose requests are rows. The index is hosts.py (shared with the memory backend); the file's
schema, opening and error classes are sqlite_schema.py; the statements each transaction runs
are sqlite_queries.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import aiosqlite
import structlog

from scrapekit import state
from scrapekit.exceptions import FrontierCorrupt
from scrapekit.items import to_dict
from scrapekit.pipelines.exporters import json_default
from scrapekit.request import Request
from scrapekit.scheduler.frontier import records, runs
from scrapekit.scheduler.frontier.base import (
    Entry,
    FeedMark,
    Fetched,
    Lease,
    OutboxItem,
    PageItem,
)
from scrapekit.scheduler.frontier.hosts import Host, HostIndex, IndexedFrontier, Place
from scrapekit.scheduler.frontier.recrawl import Revisits
from scrapekit.scheduler.frontier.sqlite_queries import (
    READY,
    Queued,
    Row,
    fetch,
    in_thread,
    insert,
    record_marks,
    recount,
    scalar,
    statement,
    transaction,
    unleased,
)
from scrapekit.scheduler.frontier.sqlite_schema import open_file, sqlite_error
from scrapekit.session.cookiestore_base import run_to_completion

if TYPE_CHECKING:
    from scrapekit.settings import Settings

T = TypeVar("T")
log = structlog.get_logger(__name__)


class _Host(Host):
    """One host's counts and best ready row; its requests are rows in the file."""

    __slots__ = ("due", "head", "later", "leased", "pending")

    head: Place | None  # (-priority, id) of the best ready row that is not leased

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.pending = 0  # rows not leased, ready or later
        self.later = 0  # rows whose not-before time has not come
        self.due: float | None = None  # the earliest not-before among them (monotonic)
        self.head = None
        self.leased: set[int] = set()

    def next_due(self) -> float | None:
        return self.due if self.later else None

    def counts(self) -> tuple[int, int]:
        return self.pending - self.later, self.later

    def holds(self) -> bool:
        return bool(self.pending or self.leased)


class SqliteFrontier(IndexedFrontier):
    """The durable frontier: a crawl's pending requests survive the process.

    Args:
        path: the database file; its folder is created owner-only if missing.
        busy_timeout: seconds to wait for another process's write lock.
        fresh: discard an unfinished crawl's requests, fingerprints and pauses at open.
        recrawl_after: RECRAWL_AFTER in seconds (0 = off): pages are remembered when fetched,
            and a new run keeps out those an earlier one fetched more recently (recrawl.py).
    """

    backend = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 10.0,
        fresh: bool = False,
        recrawl_after: float = 0.0,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.fresh = fresh
        self.recrawl_after = recrawl_after
        self._run = runs.NOT_DURABLE
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()  # one operation at a time: memory and file stay in step
        self._offset = time.time() - time.monotonic()  # wall = monotonic + offset
        self._index = HostIndex(_Host)
        self._lease_ids = itertools.count(1)
        self._leases: dict[int, Place] = {}  # lease id -> (rank, row id)
        self._next_id = 1
        self._seen = 0
        self._pushed = 0
        self._seq = 0  # the last item seq committed

    @classmethod
    def from_settings(cls, settings: Settings, spider_name: str) -> Self:
        """The frontier of spider `spider_name` in its state folder (STATE_DIR)."""
        return cls(
            state.frontier_path(settings, spider_name),
            fresh=bool(settings["FRESH"]),
            recrawl_after=float(settings["RECRAWL_AFTER"]),
        )

    @property
    def remembers_fetches(self) -> bool:
        return self.recrawl_after > 0

    def encode(self, request: Request) -> str:
        return records.encode(request)

    def encode_item(self, item: Any) -> str:
        return json.dumps(to_dict(item), ensure_ascii=False, default=json_default)

    # -- opening and closing -----------------------------------------------------------------

    async def __aenter__(self) -> SqliteFrontier:
        async with self._lock:
            await self._connect()
        return self

    async def aclose(self) -> None:
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

    async def _load(self, db: aiosqlite.Connection) -> None:
        """Record this run (resuming the unfinished crawl or beginning one), then rebuild the
        host index from the file."""
        wall = time.time()
        now = wall - self._offset
        begin = partial(
            runs.begin, fresh=self.fresh, pid=os.getpid(), wall=wall, path=str(self.path)
        )

        def start(conn: sqlite3.Connection) -> runs.RunStart:
            conn.execute("DELETE FROM pauses WHERE until <= ?", (wall,))
            return begin(conn)

        self._run = await transaction(db, start)
        self._next_id = await scalar(db, "SELECT coalesce(max(id), 0) + 1 FROM requests") or 1
        self._seen = await scalar(db, "SELECT count(*) FROM seen")
        self._seq = await scalar(
            db, "SELECT max(coalesce((SELECT max(seq) FROM outbox), 0), "
            "coalesce((SELECT max(seq) FROM feeds), 0))"
        )  # fmt: skip
        rows = await db.execute_fetchall(
            "SELECT key, count(*), sum(not_before > ?), min(CASE WHEN not_before > ? "
            "THEN not_before END) FROM requests GROUP BY key",
            (wall, wall),
        )
        for key, count, later, due in rows:
            host = self._index.host(key)
            host.pending, host.later = int(count), int(later)
            host.due = None if due is None else max(due - self._offset, now)
            self._index.pending += host.pending
        heads = await db.execute_fetchall(
            "SELECT key, id, priority FROM (SELECT key, id, priority, row_number() OVER "
            "(PARTITION BY key ORDER BY priority DESC, id) AS n FROM requests "
            "WHERE not_before <= ?) WHERE n = 1",
            (wall,),
        )
        for key, row, priority in heads:
            self._index.hosts[key].head = (-int(priority), int(row))
        for key, until in await db.execute_fetchall("SELECT key, until FROM pauses"):
            self._index.host(key).paused_until = until - self._offset
        for host in list(self._index.hosts.values()):
            self._index.settle(host, 0)

    # -- queueing ----------------------------------------------------------------------------

    async def push(self, entries: Sequence[Entry], *, start: int | None = None) -> int:
        rows = self._rows(entries)
        work = partial(_push, rows=rows, start=start, revisits=self._revisits(entries, rows))
        async with self._lock:
            db = await self._connect()
            queued, seen, not_due = await self._transaction(db, "written", work)
            self._queued(queued, seen, not_due)
        return len(queued)

    def _rows(self, entries: Sequence[Entry]) -> list[Row]:
        """The entries as rows, each with its id (a duplicate's is never used).

        Built on the event loop, before any await: the requests may change afterwards.
        """
        first = self._next_id
        self._next_id += len(entries)
        return [
            (
                first + i,
                e.fingerprint,
                e.key,
                e.request.priority,
                e.record if isinstance(e.record, str) else records.encode(e.request),
            )
            for i, e in enumerate(entries)
        ]

    def _revisits(self, entries: Sequence[Entry], rows: list[Row]) -> Revisits | None:
        """What RECRAWL_AFTER asks of this push: links only (not start or dont_filter ones)."""
        if self.recrawl_after <= 0:
            return None
        ids = frozenset(
            row[0]
            for entry, row in zip(entries, rows, strict=True)
            if entry.fingerprint is not None and entry.request.depth > 0
        )
        return Revisits(time.time() - self.recrawl_after, ids) if ids else None

    def _queued(self, queued: list[Queued], seen: int, not_due: int = 0) -> None:
        for row, key, priority in queued:
            host = self._index.host(key)
            self._ready_row(host, (-priority, row))
        self._pushed += len(queued)
        self._seen += seen
        self._not_due += not_due

    def _ready_row(self, host: _Host, place: Place) -> None:
        """A ready row joined the host: it may be its new best."""
        host.pending += 1
        if host.head is None or place < host.head:
            host.head = place
        self._index.queued(host, place)

    # -- hand-out ----------------------------------------------------------------------------

    async def lease(self, now: float) -> Lease | float:
        async with self._lock:
            db = await self._connect()
            return await run_to_completion(self._lease(db, now))

    async def _lease(self, db: aiosqlite.Connection, now: float) -> Lease | float:
        await self._wake(db, now)
        while (host := self._index.pop_open()) is not None:
            try:
                free = await self._ready(db, host, now, 2)
            except BaseException:
                self._index.advertise(host)  # offered again next call
                raise
            if not free:  # cannot happen while memory and file agree; heal rather than fail
                host.head = None
                continue
            row, priority, text = free[0]
            host.head = (-free[1][1], free[1][0]) if len(free) > 1 else None
            request = self._decode(row, text)
            host.leased.add(row)
            host.pending -= 1
            self._index.taken(host)
            lease = Lease(next(self._lease_ids), request, host.key)
            self._leases[lease.id] = (-priority, row)
            return lease
        return self._index.next_wake()

    async def _ready(
        self, db: aiosqlite.Connection, host: _Host, now: float, want: int
    ) -> list[tuple[int, int, str]]:
        """The host's best `want` ready rows that are not leased: (id, priority, record)."""
        args = (host.key, now + self._offset, len(host.leased) + want)
        rows = await self._read(db, partial(fetch, sql=READY, args=args))
        return unleased(rows, host.leased, want)

    def _decode(self, row: int, text: str) -> Request:
        try:
            return records.decode(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise FrontierCorrupt(
                str(self.path), f"holding an unreadable request (row {row}: {exc})"
            ) from exc

    async def _wake(self, db: aiosqlite.Connection, now: float) -> None:
        """Apply every host timer due by `now`: gates that passed, retries now due."""
        for host, before in self._index.fire(now):
            try:
                if host.due is not None and host.due <= now:
                    await self._recount(db, host, now)
            finally:  # even on a failed read: its timer is set again, to be retried
                self._index.settle(host, before)

    async def _recount(self, db: aiosqlite.Connection, host: _Host, now: float) -> None:
        """Some of the host's retries came due: count what still waits, find its best row."""
        wall = now + self._offset
        count, due, best = await self._read(
            db, partial(recount, key=host.key, wall=wall, leased=len(host.leased))
        )
        host.later = count
        # Never at or before `now`: a time that rounding moved back would wake it forever.
        host.due = None if due is None else max(due - self._offset, math.nextafter(now, math.inf))
        free = unleased(best, host.leased, 1)
        host.head = (-free[0][1], free[0][0]) if free else None

    # -- ending a lease ----------------------------------------------------------------------

    async def commit(
        self,
        lease: Lease | None,
        new: Sequence[Entry],
        items: Sequence[PageItem] = (),
        *,
        fetched: Fetched | None = None,
    ) -> int:
        rows = self._rows(new)
        records_ = [p.record if p.record is not None else self.encode_item(p.item) for p in items]
        remember = None
        if fetched is not None and self.recrawl_after > 0:
            remember = (fetched.fingerprint, time.time(), fetched.etag, fetched.last_modified)
        revisits = self._revisits(new, rows)
        async with self._lock:
            row = None if lease is None else self._place(lease)[1]
            db = await self._connect()
            # Numbered under the lock, so seqs follow the order the commits reach the file.
            first = self._seq + 1
            stored = [
                (first + i, p.id, text)
                for i, (p, text) in enumerate(zip(items, records_, strict=True))
            ]
            work = partial(
                insert, rows=rows, done=row, items=stored, revisits=revisits, fetched=remember
            )
            queued, seen, not_due = await self._transaction(db, "written", work)
            self._seq += len(items)
            if lease is not None and row is not None:
                self._end(lease)  # only now: a failed transaction leaves the lease held
                host = self._index.host(lease.key)
                host.leased.discard(row)
                self._index.forget_if_idle(host)
            self._queued(queued, seen, not_due)
            self._deliver([OutboxItem(first + i, p.id, p.item) for i, p in enumerate(items)])
        return len(queued)

    async def retry(self, lease: Lease, not_before: float) -> None:
        text = records.encode(lease.request)  # as it is now: its meta counts the attempts
        async with self._lock:
            _, row = self._place(lease)
            db = await self._connect()
            sql = "UPDATE requests SET not_before = ?, record = ? WHERE id = ?"
            args = (not_before + self._offset, text, row)
            await self._transaction(db, "written", partial(statement, sql=sql, args=args))
            self._end(lease)  # only now: a failed transaction leaves the lease held
            host = self._index.host(lease.key)
            host.leased.discard(row)
            before = host.waits()
            host.pending += 1
            self._index.pending += 1
            host.later += 1
            host.due = not_before if host.due is None else min(host.due, not_before)
            self._index.settle(host, before)

    async def release(self, lease: Lease) -> None:
        async with self._lock:
            rank, row = self._end(lease)
            host = self._index.host(lease.key)
            host.leased.discard(row)
            self._ready_row(host, (rank, row))

    def _place(self, lease: Lease) -> Place:
        """The leased row's (rank, id); LookupError if the lease was already ended."""
        place = self._leases.get(lease.id)
        if place is None:
            raise LookupError(f"lease {lease.id} ({lease.request.url}) was already ended")
        return place

    def _end(self, lease: Lease) -> Place:
        place = self._place(lease)
        del self._leases[lease.id]
        return place

    # -- host gates --------------------------------------------------------------------------

    async def pause(self, key: str, until: float) -> None:
        async with self._lock:
            host = self._index.host(key)
            if until <= host.paused_until:
                return
            db = await self._connect()
            sql = (
                "INSERT INTO pauses (key, until) VALUES (?, ?) ON CONFLICT (key) "
                "DO UPDATE SET until = max(until, excluded.until)"
            )
            args = (key, until + self._offset)
            await self._transaction(db, "written", partial(statement, sql=sql, args=args))
            self._index.pause(host, until)

    async def close_gate(self, key: str, until: float) -> None:
        async with self._lock:
            self._index.close_gate(key, until)

    async def open_gate(self, key: str) -> None:
        async with self._lock:
            self._index.open_gate(key)

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
        async with self._lock:
            if self._db is not None:  # closed: nothing to record into
                await self._transaction(self._db, "written", work)

    # -- the outbox and the feeds' marks -----------------------------------------------------

    @property
    def durable(self) -> bool:
        return True

    @property
    def last_seq(self) -> int:
        return self._seq

    async def outbox_pending(self) -> int:
        async with self._lock:
            db = await self._connect()
            rows = await self._read(db, partial(fetch, sql="SELECT count(*) FROM outbox", args=()))
        return int(rows[0][0])

    async def outbox_rows(self, after: int, upto: int, limit: int) -> list[OutboxItem]:
        sql = (
            "SELECT seq, item_id, record FROM outbox WHERE seq > ? AND seq <= ? "
            "ORDER BY seq LIMIT ?"
        )
        async with self._lock:
            db = await self._connect()
            rows = await self._read(db, partial(fetch, sql=sql, args=(after, upto, limit)))
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
        sql = 'SELECT path, seq, "offset", state FROM feeds'
        async with self._lock:
            db = await self._connect()
            rows = await self._read(db, partial(fetch, sql=sql, args=()))
        return {str(p): FeedMark(str(p), int(q), int(o), str(t)) for p, q, o, t in rows}

    async def record_marks(self, marks: Sequence[FeedMark], delivered: int) -> None:
        rows = [(m.key, m.seq, m.offset, m.state) for m in marks]
        async with self._lock:
            db = await self._connect()
            work = partial(record_marks, marks=rows, delivered=delivered)
            await self._transaction(db, "written", work)

    # -- transactions ------------------------------------------------------------------------

    async def _transaction(
        self, db: aiosqlite.Connection, action: str, work: Callable[[sqlite3.Connection], T]
    ) -> T:
        return await self._translated(action, transaction(db, work))

    async def _read(self, db: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._translated("read", in_thread(db, work))

    async def _translated(self, action: str, job: Awaitable[T]) -> T:
        """The one place SQLite errors of a live frontier become FrontierError (one line)."""
        try:
            return await job
        except sqlite3.Error as exc:
            raise sqlite_error(self.path, exc, action) from exc

    def _seen_count(self) -> int:
        return self._seen


def _push(
    conn: sqlite3.Connection, rows: list[Row], start: int | None, revisits: Revisits | None
) -> tuple[list[Queued], int, int]:
    """Queue the rows and, for start requests, record how far start() is stored: one step."""
    result = insert(conn, rows, revisits=revisits)
    if start is not None:
        runs.record_start(conn, start, done=False)
    return result
