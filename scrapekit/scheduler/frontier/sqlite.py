"""Durable frontier: pending requests, seen fingerprints and host pauses in SQLite.

Chosen with FRONTIER = "sqlite"; the file is `STATE_DIR/<spider>/frontier.db` (0600 in a
0700 folder, WAL, a busy timeout), next to the cookie jar and apart from it. Requests are
stored as JSON records (records.py: callbacks by method name, no pickle).

What lives where. The requests live in the file, so memory does not grow with the backlog.
In memory there is one small record per host (its counts, its gate, the rank of its best
ready request), the leases (at most CONCURRENCY; a lease ends with the process, so a leased
request is still a row, pending again in the next run), a bounded read-ahead of the next
rows of the hosts being leased from (sqlite_ahead.py) and a bounded set of recently seen
fingerprints (recent.py). Choosing the best host is the memory backend's heap of open hosts.

Off the hot path. All SQLite work runs in aiosqlite's thread, and a page costs it little:
a lease comes from the read-ahead (one read per few dozen leases of a host, and when a
host's retry comes due), a link already seen is dropped before it is encoded, and each of
push, commit, retry and pause is a work function that a group commit (sqlite_batch.py) runs
in one transaction with the others made meanwhile. Memory follows each batch once it is
durable, in call order, under the lock that reads take too; what needs no file (a lease from
the read-ahead, a release, a gate) does not wait for it.

Times. The interface's clock is `time.monotonic()`; not-before and paused-until times are
stored as wall-clock times (`time.time()`), converted with one offset taken at open, so they
mean the same after a restart.

Runs. Opening decides, in one transaction, whether this run resumes the unfinished crawl (its
pending requests, seen fingerprints, undelivered items (the outbox) and its feeds' marks are
kept, it goes on where the last run stopped) or begins a new one (runs.py: the `runs` table,
how far start() was stored, FRESH); the caller holds the run lock (runlock.py), so no other
process writes the file meanwhile.

Items and history. A commit appends the page's items to the outbox in its transaction, numbered
in call order, and hands them to the outbox reader once durable (base.py `deliver_to`); the
feeds' marks are recorded through the same group commit. With RECRAWL_AFTER a commit also
remembers the page's fetch, and a push keeps out what an earlier crawl fetched too recently
(recrawl.py).

Parts. This module owns the `SqliteFrontier` class: the interface methods of the queues,
which change the file and the in-memory host index together. Under it, the host index as the
file has it (rebuilt at open, each host's read-ahead refilled, retries recounted) is
sqlite_index.py's `SqliteIndex`, its base; under that, the file itself (opening, the group
commit, reads, the runs and outbox records) is sqlite_store.py's `SqliteStore`. The index
is hosts.py (shared with the memory backend); a host whose requests are rows, and its
read-ahead, are sqlite_ahead.py; the group commit is sqlite_batch.py; the schema, opening and
error classes are sqlite_schema.py; the statements each transaction runs are sqlite_queries.py.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import aiosqlite
import structlog

from scrapekit import exitcodes, state
from scrapekit.exceptions import FrontierCorrupt
from scrapekit.items import to_dict
from scrapekit.pipelines.exporters import json_default
from scrapekit.request import Request
from scrapekit.scheduler.frontier import records, runs, sqlite_ahead
from scrapekit.scheduler.frontier.base import (
    Entry,
    Fetched,
    Lease,
    OutboxItem,
    PageItem,
)
from scrapekit.scheduler.frontier.recent import RecentlySeen
from scrapekit.scheduler.frontier.recrawl import Revisits
from scrapekit.scheduler.frontier.sqlite_ahead import Ahead, RowHost
from scrapekit.scheduler.frontier.sqlite_index import SqliteIndex
from scrapekit.scheduler.frontier.sqlite_pages import PageWrite, Queued, Row
from scrapekit.scheduler.frontier.sqlite_queries import scalar, statement, transaction

if TYPE_CHECKING:
    from scrapekit.settings import Settings

#: A lease's row as leased: (rank, id, record); the record is put back as it was on release.
Held = Ahead
#: Items as the outbox stores them (json.dumps with these options would build one per item).
_ITEMS = json.JSONEncoder(ensure_ascii=False, default=json_default)
log = structlog.get_logger(__name__)


class SqliteFrontier(SqliteIndex):
    """The durable frontier: a crawl's pending requests survive the process.

    Args:
        path, busy_timeout, read_ahead, read_ahead_cap: as for SqliteIndex.
        fresh: discard an unfinished crawl's requests, fingerprints and pauses at open.
        recrawl_after: RECRAWL_AFTER in seconds (0 = off): pages are remembered when fetched,
            and a new crawl keeps out those an earlier one fetched more recently (recrawl.py).
    """

    backend = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 10.0,
        read_ahead: int = sqlite_ahead.PER_HOST,
        read_ahead_cap: int = sqlite_ahead.CAP,
        fresh: bool = False,
        recrawl_after: float = 0.0,
    ) -> None:
        super().__init__(
            path, busy_timeout=busy_timeout, read_ahead=read_ahead, read_ahead_cap=read_ahead_cap
        )
        self.fresh = fresh
        self.recrawl_after = recrawl_after
        self._lease_ids = itertools.count(1)
        self._leases: dict[int, Held] = {}  # lease id -> (rank, row id, record)
        self._ending: set[int] = set()  # leases whose commit or retry is under way
        self._recent = RecentlySeen()
        self._next_id = 1
        self._seen = 0
        self._pushed = 0

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
        return _ITEMS.encode(to_dict(item))

    def seen_before(self, fingerprint: bytes) -> bool:
        return fingerprint in self._recent

    async def _load(self, db: aiosqlite.Connection) -> None:
        """Record this run (resuming the unfinished crawl or beginning one), then rebuild the
        host index from the file."""
        wall = time.time()
        begin = partial(
            runs.begin, fresh=self.fresh, pid=os.getpid(), wall=wall, path=str(self.path)
        )

        def start(conn: sqlite3.Connection) -> runs.RunStart:
            conn.execute("DELETE FROM pauses WHERE until <= ?", (wall,))
            return begin(conn)

        self._run = await transaction(db, start)
        try:
            await self._rebuild(db, wall)
        except BaseException:
            await self._abandon_run(db)
            raise

    async def _rebuild(self, db: aiosqlite.Connection, wall: float) -> None:
        """The counters, host index and pauses from the file (after the run is recorded)."""
        self._next_id = await scalar(db, "SELECT coalesce(max(id), 0) + 1 FROM requests") or 1
        self._seen = await scalar(db, "SELECT count(*) FROM seen")
        self._seq = await scalar(
            db, "SELECT max(coalesce((SELECT max(seq) FROM outbox), 0), "
            "coalesce((SELECT max(seq) FROM feeds), 0))"
        )  # fmt: skip
        await self._rebuild_index(db, wall)

    async def _abandon_run(self, db: aiosqlite.Connection) -> None:
        """Opening failed after the run was recorded: end its row as a configuration error
        (exit 2, as the crawl will), rather than leave it to look like a run that died."""
        if self._run.run is None:
            return
        counts = runs.RunProgress(pages=0, items=0, errors=0, in_flight=0, pending=0)
        work = partial(
            runs.end, run=self._run.run, counts=counts, wall=time.time(),
            finish_reason="config_error", exit_code=exitcodes.USAGE,
        )  # fmt: skip
        with contextlib.suppress(sqlite3.Error):
            await transaction(db, work)

    # -- queueing ----------------------------------------------------------------------------

    async def push(self, entries: Sequence[Entry], *, start: int | None = None) -> int:
        rows = self._rows(entries)
        work = PageWrite(rows, revisits=self._revisits(entries, rows), start=start)
        queued, _, _ = await self._write(work, lambda result: self._queued(*result, rows))
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

    def _queued(self, queued: list[Queued], seen: int, not_due: int, rows: list[Row]) -> None:
        if queued:
            records_of = {row[0]: row[4] for row in rows}
            for row, key, priority in queued:
                host = self._index.host(key)
                self._ahead.join(host, (-priority, row), records_of[row])
                self._index.queued(host, (-priority, row))
        self._pushed += len(queued)
        self._seen += seen
        self._not_due += not_due
        self._recent.add(row[1] for row in rows)  # each is in the file's seen now

    # -- hand-out ----------------------------------------------------------------------------

    async def lease(self, now: float) -> Lease | float:
        while True:
            if due := self._fire(now):
                await self._recount(due, now)
                continue
            got = self._take(now)
            if not isinstance(got, RowHost):
                return got
            await self._refill(got, now)

    def _take(self, now: float) -> Lease | float | RowHost:
        """Lease from memory: the best open host's head, when its read-ahead holds it.

        Otherwise return that host (still offered), whose next rows must be read first; or,
        with no host open, when one may be.
        """
        index = self._index
        host = index.pop_open()
        if host is None:
            return index.next_wake()
        if not host.can_take():
            index.advertise(host)
            return host
        rank, row, text = host.ahead[0]
        try:
            request = self._decode(row, text)
        except BaseException:
            index.advertise(host)  # offered again next call
            raise
        self._ahead.take(host)
        if len(host.ahead) == self._low_water and not host.complete and host.reading is None:
            self._read_early(host, now)
        host.leased.add(row)
        host.pending -= 1
        index.taken(host)
        lease = Lease(next(self._lease_ids), request, host.key)
        self._leases[lease.id] = (rank, row, text)
        return lease

    def _decode(self, row: int, text: str) -> Request:
        try:
            return records.decode(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise FrontierCorrupt(
                str(self.path), f"holding an unreadable request (row {row}: {exc})"
            ) from exc

    # -- ending a lease ----------------------------------------------------------------------

    async def commit(
        self,
        lease: Lease | None,
        new: Sequence[Entry],
        items: Sequence[PageItem] = (),
        *,
        fetched: Fetched | None = None,
        start: int | None = None,
    ) -> int:
        rows = self._rows(new)
        texts = [p.record if p.record is not None else self.encode_item(p.item) for p in items]
        remember = None
        if fetched is not None and self.recrawl_after > 0:
            remember = (fetched.fingerprint, time.time(), fetched.etag, fetched.last_modified)
        row = None if lease is None else self._ending_now(lease)[1]
        # Numbered now, in call order: the group commit writes (and delivers) in that order.
        first = self._seq + 1
        self._seq += len(items)
        stored = [
            (first + i, p.id, text) for i, (p, text) in enumerate(zip(items, texts, strict=True))
        ]
        work = PageWrite(
            rows,
            done=row,
            items=stored,
            revisits=self._revisits(new, rows),
            fetched=remember,
            start=start,
        )

        def committed(result: tuple[list[Queued], int, int]) -> None:
            if lease is not None:
                self._end(lease)  # only now: a failed transaction leaves the lease held
                host = self._index.host(lease.key)
                host.leased.discard(row)
                self._index.forget_if_idle(host)
            self._queued(*result, rows)
            self._deliver([OutboxItem(first + i, p.id, p.item) for i, p in enumerate(items)])

        try:
            queued, _, _ = await self._write(work, committed)
        finally:
            if lease is not None:
                self._ending.discard(lease.id)
        return len(queued)

    async def retry(self, lease: Lease, not_before: float) -> None:
        text = records.encode(lease.request)  # as it is now: its meta counts the attempts
        _, row, _ = self._ending_now(lease)
        sql = "UPDATE requests SET not_before = ?, record = ? WHERE id = ?"
        args = (not_before + self._offset, text, row)

        def retried(_: None) -> None:
            self._end(lease)  # only now: a failed transaction leaves the lease held
            host = self._index.host(lease.key)
            host.leased.discard(row)
            before = host.waits()
            host.pending += 1
            self._index.pending += 1
            host.later += 1
            host.due = not_before if host.due is None else min(host.due, not_before)
            self._index.settle(host, before)

        try:
            await self._write(partial(statement, sql=sql, args=args), retried)
        finally:
            self._ending.discard(lease.id)

    async def release(self, lease: Lease) -> None:
        self._ending_now(lease)
        rank, row, text = self._end(lease)
        host = self._index.host(lease.key)
        host.leased.discard(row)
        self._ahead.join(host, (rank, row), text)
        self._index.queued(host, (rank, row))

    def _ending_now(self, lease: Lease) -> Held:
        """The leased row, marked as being ended; LookupError if it was ended (or is being)."""
        held = self._leases.get(lease.id)
        if held is None or lease.id in self._ending:
            raise LookupError(f"lease {lease.id} ({lease.request.url}) was already ended")
        self._ending.add(lease.id)
        return held

    def _end(self, lease: Lease) -> Held:
        self._ending.discard(lease.id)
        return self._leases.pop(lease.id)

    # -- host gates --------------------------------------------------------------------------

    async def pause(self, key: str, until: float) -> None:
        host = self._index.hosts.get(key)
        if host is not None and until <= host.paused_until:
            return
        sql = (
            "INSERT INTO pauses (key, until) VALUES (?, ?) ON CONFLICT (key) "
            "DO UPDATE SET until = max(until, excluded.until)"
        )
        args = (key, until + self._offset)

        def paused(_: None) -> None:
            host = self._index.host(key)
            if until > host.paused_until:
                self._index.pause(host, until)

        await self._write(partial(statement, sql=sql, args=args), paused)

    async def close_gate(self, key: str, until: float) -> None:
        self._index.close_gate(key, until)

    async def open_gate(self, key: str) -> None:
        self._index.open_gate(key)

    def _seen_count(self) -> int:
        return self._seen
