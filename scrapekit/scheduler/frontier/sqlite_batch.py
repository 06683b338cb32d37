"""SQLite frontier, group commit: the writes of many callers share one transaction.

A page's commit is a few small statements; what costs is the transaction around them and the
hop to aiosqlite's thread. So each write (a work function over the connection, as
sqlite_queries.py has them, and the change it makes to memory once it is durable) joins a
queue, and one task runs the queue as batches: one transaction and one hop per batch. A batch
starts as soon as the one before it has finished, so under load the batches grow by
themselves, and a lone write waits for nothing but its own transaction.

Each caller awaits its own write. The works of a batch run in the order they were submitted,
and their memory changes are made in that order too, after the batch is durable and before
anything else reads the file (the frontier's lock is held throughout). If the batch fails,
nothing of it is applied: each of its callers gets the error, as a transaction of its own
would have given it. The write belongs to the queue once submitted: a caller cancelled while
it waits stops waiting, and its write still lands (or fails) with its batch.

Latency matters more than it seems: a worker waits for its page's commit before it takes the
next page, and under load every hop between tasks costs a whole turn of the event loop. So a
write costs three hops (the task that runs the queue starts, the thread answers, the caller
wakes), and no helper task is made per write or per batch.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]

#: Writes in one transaction at most; the rest go in the next one.
BATCH_LIMIT = 256


@dataclass(slots=True)
class _Write(Generic[T]):
    work: Callable[[sqlite3.Connection], T]
    apply: Callable[[T], None]
    done: asyncio.Future[T]


class GroupCommit:
    """A queue of writes, run as batches by one task, each batch one transaction.

    Args:
        lock: held while a batch runs and its changes are applied (the frontier holds it
            for its reads too, so a read never sees a batch whose changes memory lacks).
        run: runs the works in one transaction (in the database's thread), returns their
            results in order, or raises and rolls everything back.
    """

    def __init__(
        self,
        lock: asyncio.Lock,
        run: Callable[[list[Work]], Awaitable[list[Any]]],
        *,
        limit: int = BATCH_LIMIT,
    ) -> None:
        self._lock = lock
        self._run = run
        self._limit = limit
        self._queue: list[_Write[Any]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # transactions run, for the statistics of a bench or a test
        self.writes = 0

    async def submit(
        self, work: Callable[[sqlite3.Connection], T], apply: Callable[[T], None]
    ) -> T:
        """Queue `work`; once its batch is durable, `apply(result)` runs and this returns."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Write(work, apply, done))
        if self._task is None:
            self._task = asyncio.create_task(self._drain_queue())
        return await done

    async def drain(self) -> None:
        """Wait until every write submitted so far has been committed or has failed."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _drain_queue(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._limit]
                del self._queue[: self._limit]
                await self._commit(batch)
        finally:
            self._task = None

    async def _commit(self, batch: list[_Write[Any]]) -> None:
        try:
            async with self._lock:
                results = await self._run([write.work for write in batch])
                self.batches += 1
                self.writes += len(batch)
                for i, (write, result) in enumerate(zip(batch, results, strict=True)):
                    try:
                        write.apply(result)
                    except BaseException as exc:  # a bug: say so to each caller left
                        for rest in batch[i:]:
                            _fail(rest.done, exc)
                        raise
                    if not write.done.done():  # else its caller was cancelled
                        write.done.set_result(result)
        except Exception as exc:
            for write in batch:
                _fail(write.done, exc)
        except BaseException:  # cancelled with the loop: nobody is left to tell
            for write in batch + self._queue:
                write.done.cancel()
            self._queue.clear()
            raise


def _fail(done: asyncio.Future[Any], exc: BaseException) -> None:
    if not done.done():
        done.set_exception(exc)
