"""SQLite frontier, the host index: memory's picture of the file's hosts, and the reads behind it.

The requests are rows; a lease must not read the file for each of them. So `SqliteIndex`
keeps, per host, what the file holds (hosts.py's index of `RowHost`s: counts, gate, best
ready row) and a bounded read-ahead of its next rows (sqlite_ahead.py), and owns every read
that brings them in step with the file:

- at open, the index is rebuilt from the whole file (`_rebuild_index`);
- a host leased from has its next ready rows read once its read-ahead runs low (`_refill`,
  started early in a task so that leases rarely wait for it);
- when a host's retries come due, what still waits is counted again (`_fire`, `_recount`).

The queue operations that change hosts as they write (push, lease, commit, retry, release,
pause) are sqlite.py's `SqliteFrontier`, built on this; the file itself is sqlite_store.py.
"""

from __future__ import annotations

import asyncio
import math
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite

from scrapekit.scheduler.frontier import sqlite_ahead
from scrapekit.scheduler.frontier.hosts import HostIndex
from scrapekit.scheduler.frontier.sqlite_ahead import ReadAhead, RowHost
from scrapekit.scheduler.frontier.sqlite_queries import (
    READY,
    fetch,
    first_ready,
    in_thread,
    recount,
)
from scrapekit.scheduler.frontier.sqlite_store import SqliteStore


class SqliteIndex(SqliteStore):
    """The frontier file with its host index and read-ahead in memory, read in step with it.

    Args:
        path: the database file; its folder is created owner-only if missing.
        busy_timeout: seconds to wait for another process's write lock.
        read_ahead: ready rows read at a time for a host being leased from.
        read_ahead_cap: rows held read ahead across all hosts, about.
    """

    _index: HostIndex[RowHost]

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 10.0,
        read_ahead: int = sqlite_ahead.PER_HOST,
        read_ahead_cap: int = sqlite_ahead.CAP,
    ) -> None:
        super().__init__(path, busy_timeout=busy_timeout)
        self._index = HostIndex(RowHost)
        self._ahead = ReadAhead(max(read_ahead, 2), max(read_ahead_cap, 2))
        # A host's next rows are read once its read-ahead is down to this many (in a task of
        # `_early`), so its leases rarely find it empty.
        self._low_water = max(self._ahead.per_host // 4, 1)
        self._early: set[asyncio.Task[None]] = set()

    async def _rebuild_index(self, db: aiosqlite.Connection, wall: float) -> None:
        """The host index and pauses from the file (at open, after the run is recorded)."""
        now = wall - self._offset
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
        heads = await in_thread(db, partial(first_ready, keys=list(self._index.hosts), wall=wall))
        for key, row, priority in heads:
            self._index.hosts[key].head = (-int(priority), int(row))
        for key, until in await db.execute_fetchall("SELECT key, until FROM pauses"):
            self._index.host(key).paused_until = until - self._offset
        for host in list(self._index.hosts.values()):
            self._index.settle(host, 0)

    async def aclose(self) -> None:
        for task in list(self._early):
            task.cancel()
        await asyncio.gather(*self._early, return_exceptions=True)
        await super().aclose()

    # -- a host's next rows ------------------------------------------------------------------

    async def _refill(self, host: RowHost, now: float) -> None:
        """Read the host's next ready rows into its read-ahead.

        One read per host at a time: the other workers leasing from the host wait for that
        read to land and then all lease from it, rather than queueing on the lock one loop
        turn each (a dozen workers made that a 50 ms stall).
        """
        if host.reading is not None:
            await host.reading.wait()
            return
        landed = host.reading = asyncio.Event()
        try:
            async with self._reading():  # the file says what memory says
                if self._index.hosts.get(host.key) is not host:
                    return  # the host is gone
                if host.complete or (host.can_take() and len(host.ahead) > self._low_water):
                    return  # another lease read them
                db = await self._connect()
                limit = len(host.leased) + self._ahead.per_host
                args = (host.key, now + self._offset, limit)
                rows = await self._read(db, partial(fetch, sql=READY, args=args))
                if self._index.hosts.get(host.key) is host:
                    self._fill(host, rows, limit, host.waits())
        finally:
            host.reading = None
            landed.set()

    def _read_early(self, host: RowHost, now: float) -> None:
        """Start reading the host's next rows while it still has some read ahead, so that
        its leases do not wait for the read when the last of them is taken."""
        task = asyncio.get_running_loop().create_task(self._refill(host, now))
        self._early.add(task)
        task.add_done_callback(self._early_done)

    def _early_done(self, task: asyncio.Task[None]) -> None:
        self._early.discard(task)
        if not task.cancelled():
            task.exception()  # a failed read fails again, and is raised, in the lease that needs it

    def _fill(self, host: RowHost, rows: list[Any], limit: int, before: int) -> None:
        """Hold the ready rows a read gave (`limit` asked for), then settle the host (`before`:
        its `waits()` before the read's news). A changed head is offered anew; one the file no
        longer has is healed, not failed on."""
        free = [(-int(p), int(r), str(t)) for r, p, t in rows if r not in host.leased]
        self._ahead.fill(host, free, complete=len(rows) < limit)
        if host.advertised != host.head:
            host.advertised = None
        self._index.settle(host, before)

    # -- retries coming due ------------------------------------------------------------------

    def _fire(self, now: float) -> list[RowHost]:
        """Apply the host timers due by `now` (gates that passed); the hosts whose retries came
        due, to be counted again from the file."""
        timers = self._index.timers
        if not timers or timers[0][0] > now:  # the common case, on every lease: none due
            return []
        fired = list(self._index.fire(now))  # settled after: a due host's timer stays due
        for host, before in fired:
            self._index.settle(host, before)
        return [host for host, _ in fired if host.due is not None and host.due <= now]

    async def _recount(self, hosts: list[RowHost], now: float) -> None:
        """Some hosts' retries came due: count what still waits, read their best rows."""
        async with self._reading():
            db = await self._connect()
            wall = now + self._offset
            for host in hosts:
                if (
                    self._index.hosts.get(host.key) is not host
                    or host.due is None
                    or host.due > now
                ):
                    continue  # gone, or counted by another lease meanwhile
                limit = len(host.leased) + self._ahead.per_host
                work = partial(recount, key=host.key, wall=wall, limit=limit)
                count, due, best = await self._read(db, work)
                before = host.waits()
                host.later = count
                # Never at or before `now`: a time that rounding moved back would wake it
                # forever.
                host.due = (
                    None if due is None else max(due - self._offset, math.nextafter(now, math.inf))
                )
                self._fill(host, best, limit, before)
