"""SQLite frontier, group commit: the writes of many callers share one transaction.

A page's commit is a few small statements; what costs is the transaction around them and the
hop to aiosqlite's thread. So each write (a work function over the connection, as
sqlite_queries.py has them, and the change it makes to memory once it is durable) joins a
queue, and the queue goes to the thread as batches: one transaction and one hop per batch. A
batch is sent once the one before it has landed and either FULL writes are queued or the
first of them has waited HOLD (3 ms), so under load the batches grow by themselves, and a lone
write waits for little more than its own transaction.

Each caller awaits its own write. The works of a batch run in the order they were submitted,
and their memory changes are made in that order too, once the batch is durable. If the batch
fails, nothing of it is applied: each of its callers gets the error, as a transaction of its
own would have given it. The write belongs to the queue once submitted: a caller cancelled
while it waits stops waiting, and its write still lands (or fails) with its batch.

Reads and batches. The frontier reads the file under its lock, and no batch is sent while the
lock is held (`kick()` again once it is released). A batch sent before a read lands before
the read's answer is seen, since the thread answers in order; so a read always finds the file
as memory knows it.

Latency matters more than it seems: a worker waits for its page's commit before it takes the
next page, and under load every hop between tasks costs a whole turn of the event loop. So
there is no task here: the thread hands the batch's outcome straight to `_landed` on the
loop, which applies it and wakes the callers: two turns from the thread's answer to a caller
running again, where a task awaiting the thread would take four.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]
#: (True, results) of a batch that committed, or (False, the error) of one rolled back.
Outcome = tuple[bool, Any]
#: Sends the works to the thread, to run in one transaction; calls back with the outcome.
Send = Callable[[list[Work], Callable[[Outcome], None]], None]

#: Writes in one transaction at most; the rest go in the next one.
BATCH_LIMIT = 256
#: A batch smaller than FULL waits up to HOLD seconds for more writes before it is sent,
#: when the batch before it had company (two writes or more). Every batch costs the event
#: loop a few GIL hand-offs with the thread, whatever its size; waiting 3 ms halves the
#: batches of a busy crawl, whose pages do not wait for their commits (the workers fetch on
#: meanwhile), while a lone writer that awaits each write (start() read into the frontier)
#: is not slowed down.
FULL = 16
HOLD = 0.003


@dataclass(slots=True)
class _Write(Generic[T]):
    work: Callable[[sqlite3.Connection], T]
    apply: Callable[[T], None]
    done: asyncio.Future[T]


class GroupCommit:
    """A queue of writes, sent to the database's thread as batches, each one transaction.

    Args:
        lock: the frontier's read lock: no batch is sent while it is held.
        send: runs the works in one transaction in the database's thread (see `Send`).
    """

    def __init__(
        self,
        lock: asyncio.Lock,
        send: Send,
        *,
        limit: int = BATCH_LIMIT,
        full: int = FULL,
        hold: float = HOLD,
    ) -> None:
        self._lock = lock
        self._send = send
        self._limit = limit
        self._full = full
        self._hold = hold
        self._timer: asyncio.TimerHandle | None = None  # the hold of a small batch
        self._held = False  # the hold is over: send what is queued
        self._company = False  # the last batch sent had two writes or more
        self._queue: list[_Write[Any]] = []
        self._sent: list[_Write[Any]] | None = None  # the batch in the thread
        self._quiet = asyncio.Event()  # nothing queued and nothing sent
        self._quiet.set()
        self.batches = 0  # transactions run (committed or not)

    async def submit(
        self, work: Callable[[sqlite3.Connection], T], apply: Callable[[T], None]
    ) -> T:
        """Queue `work`; once its batch is durable, `apply(result)` runs and this returns."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Write(work, apply, done))
        self._quiet.clear()
        self.kick()
        return await done

    def kick(self) -> None:
        """Send the next batch, unless one is in the thread, a read holds the lock, or it is
        small and held (see HOLD)."""
        if self._sent is not None or not self._queue or self._lock.locked():
            return
        if self._company and len(self._queue) < self._full and self._hold > 0 and not self._held:
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self._hold, self._end_hold)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._held = False
        batch = self._sent = self._queue[: self._limit]
        self._company = len(batch) > 1
        del self._queue[: self._limit]
        try:
            self._send([write.work for write in batch], self._landed)
        except Exception as exc:  # the connection is closed: the writes fail, not the loop
            self._landed((False, exc))

    def _end_hold(self) -> None:
        self._timer = None
        self._held = True
        self.kick()

    async def drain(self) -> None:
        """Wait until every write submitted so far has been committed or has failed."""
        await self._quiet.wait()

    def _landed(self, outcome: Outcome) -> None:
        batch, self._sent = self._sent or [], None
        self.batches += 1
        try:
            ok, value = outcome
            if not ok:
                for write in batch:
                    _fail(write.done, value)
                return
            for i, (write, result) in enumerate(zip(batch, value, strict=True)):
                try:
                    write.apply(result)
                except BaseException as exc:  # a bug: say so to each caller left
                    for rest in batch[i:]:
                        _fail(rest.done, exc)
                    raise
                if not write.done.done():  # else its caller was cancelled
                    write.done.set_result(result)
        finally:
            self.kick()
            if self._sent is None and not self._queue:
                self._quiet.set()


def _fail(done: asyncio.Future[Any], exc: BaseException) -> None:
    if not done.done():
        done.set_exception(exc)
