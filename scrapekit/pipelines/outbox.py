"""OutboxReader: takes committed items from the frontier's outbox to the pipelines, in seq order.

The items stage of the flow, between the frontier and the pipelines. Workers commit a page's
items with its acknowledgement (`Frontier.commit`); once a commit succeeds the frontier hands
its items here (`deliver_to`), and one task runs them through the pipeline chain in the order
they were committed. Normal path: the objects the callback yielded. After a crash, a resumed
crawl first replays the rows still in the outbox, read back from the file: those items reach
the pipelines as the dicts that were stored, and each feed skips those it already holds.

With a durable frontier the reader syncs the feeds in batches (every SYNC_EVERY seconds while
items flow, when it runs idle, and at close): each feed flushes and fsyncs, and one
transaction records every feed's mark and deletes the outbox rows they all passed. So the
feeds get each item exactly once; a custom pipeline at least once (`current_item_id()` names
the item to dedupe on).

The backlog of committed, unprocessed items is bounded (BACKLOG): a worker waits for `room()`
before it commits, so a slow pipeline slows the crawl instead of growing memory. Counts the
items, stops the crawl at CLOSESPIDER_ITEMCOUNT and when a feed cannot be written.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Self

import structlog

from scrapekit._resource import AsyncResource
from scrapekit.exceptions import PipelineError, ScrapekitError
from scrapekit.items import _CURRENT
from scrapekit.scheduler.frontier.base import FeedMark, Frontier, OutboxItem

if TYPE_CHECKING:
    from scrapekit.pipelines.manager import PipelineManager
    from scrapekit.stats import CrawlStats

log = structlog.get_logger(__name__)

#: Committed items held in memory for the pipelines before commits wait (backpressure).
BACKLOG = 1000
#: Seconds between feed syncs while items flow.
SYNC_EVERY = 0.5
#: Outbox rows read back per query when a resumed crawl replays them.
_REPLAY_CHUNK = 500


class OutboxReader(AsyncResource):
    """The one task that hands committed items to the pipelines and records the feeds' marks.

    An async resource: entered after the pipelines opened (it records their first marks and
    replays what a crashed run left), closed before they close (it delivers the backlog and
    records the final marks, before a JSON feed writes its `]`).
    """

    def __init__(
        self,
        frontier: Frontier,
        pipelines: PipelineManager,
        stats: CrawlStats,
        *,
        stop: Callable[[str], None],
        count_error: Callable[[str], None],
        max_items: int = 0,
        backlog: int = BACKLOG,
        sync_every: float = SYNC_EVERY,
    ) -> None:
        self.frontier = frontier
        self.pipelines = pipelines
        self.stats = stats
        self._stop = stop
        self._count_error = count_error
        self._max_items = max_items
        self._limit = backlog
        self._sync_every = sync_every
        self._durable = frontier.durable
        self._backlog: collections.deque[OutboxItem] = collections.deque()
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._replay_upto = 0
        self._delivered = 0  # the last seq the chain has processed
        self._synced = 0  # the last seq whose marks are recorded
        self._synced_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._broken = False  # a sync failed: marks stop moving, the crawl is stopping
        self._draining = False  # the crawl is ending: sync as soon as the backlog is empty

    async def __aenter__(self) -> Self:
        frontier = self.frontier
        self._replay_upto = frontier.last_seq
        if self._durable:
            await self._sync()  # each feed's starting point, before any item reaches it
        frontier.deliver_to(self._arrive)
        self._task = asyncio.create_task(self._run(), name="scrapekit-outbox")
        return self

    async def aclose(self) -> None:
        """Deliver the committed backlog, record the feeds' marks, stop the task."""
        self.frontier.deliver_to(None)
        task, self._task = self._task, None
        if task is None:
            return
        try:
            if not task.done():
                await self.drain()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._dirty():
            await self._sync()

    @property
    def delivered(self) -> int:
        """The seq of the last item the pipeline chain has processed."""
        return self._delivered

    # -- the workers' side -------------------------------------------------------------------

    def _arrive(self, items: Sequence[OutboxItem]) -> None:
        """The frontier's sink: a commit's items, in seq order, right after the commit."""
        self._backlog.extend(items)
        self._idle.clear()
        self._arrived.set()
        if len(self._backlog) >= self._limit:
            self._room.clear()

    async def room(self) -> None:
        """Wait while the backlog is full: a worker calls this before it commits items."""
        while not self._room.is_set():
            task = self._task
            if task is None or task.done():
                return  # nothing would make room: never block a worker for good
            await self._room.wait()

    async def drain(self) -> None:
        """Wait until every item committed so far has been through the pipelines."""
        task = self._task
        if task is None or task.done():
            return
        self._draining = True
        self._arrived.set()
        idle = asyncio.create_task(self._idle.wait())
        try:
            await asyncio.wait({idle, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()

    # -- the reader task ---------------------------------------------------------------------

    async def _run(self) -> None:
        await self._replay()
        backlog = self._backlog
        while True:
            if backlog:
                await self._process(backlog.popleft())
                if len(backlog) < self._limit:
                    self._room.set()
                if self._sync_due():
                    await self._sync()
                continue
            self._arrived.clear()
            if self._dirty():
                wait = self._synced_at + self._sync_every - time.monotonic()
                if wait <= 0 or self._draining:
                    await self._sync()
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._arrived.wait()
                continue
            self._idle.set()
            await self._arrived.wait()

    async def _replay(self) -> None:
        """Deliver what a crashed run committed and the feeds may not hold (as stored dicts)."""
        after, upto = 0, self._replay_upto
        replayed = 0
        while True:
            rows = await self.frontier.outbox_rows(after, upto, _REPLAY_CHUNK)
            if not rows:
                break
            for row in rows:
                await self._process(row)
            replayed += len(rows)
            after = rows[-1].seq
        if replayed:
            log.info("outbox replayed", items=replayed, upto=upto)

    def _dirty(self) -> bool:
        """Whether items went through since the last marks were recorded (and can be)."""
        return self._durable and not self._broken and self._delivered > self._synced

    def _sync_due(self) -> bool:
        return self._dirty() and time.monotonic() - self._synced_at >= self._sync_every

    async def _process(self, row: OutboxItem) -> None:
        pipelines = self.pipelines
        errors_before = pipelines.error_count
        token = _CURRENT.set((row.seq, row.id))
        try:
            result: Any = await pipelines.process_item(row.item)
        except PipelineError as exc:
            self._feed_failed(exc)
            return
        finally:
            _CURRENT.reset(token)
            self._delivered = max(self._delivered, row.seq)
        if pipelines.error_count != errors_before:
            self._count_error("pipeline")
        if result is None:
            return
        stats = self.stats
        stats.items += 1
        if self._max_items and stats.items >= self._max_items:
            self._stop("closespider_itemcount")

    def _feed_failed(self, exc: ScrapekitError | OSError) -> None:
        self._count_error("feed")
        log.error("feed error", error=str(exc))
        if self.stats.finish_reason != "feed_error":
            self.stats.finish_reason = "feed_error"
            self.stats.failure = str(exc)
        self._stop("feed_error")

    async def _sync(self) -> None:
        """Flush and fsync every feed, then record all their marks in one transaction."""
        if self._broken:
            return
        delivered = self._delivered
        try:
            marks: list[FeedMark] = []
            for feed in self.pipelines.feeds:
                mark = feed.mark(delivered)
                fd = feed.fileno()
                if mark is None or fd is None:
                    continue
                await asyncio.to_thread(os.fsync, fd)
                marks.append(mark)
            marks.extend(self.pipelines.missed_marks(delivered))
            await self.frontier.record_marks(marks, delivered)
        except (OSError, ScrapekitError) as exc:
            self._broken = True
            self._feed_failed(
                PipelineError(
                    f"feed marks cannot be recorded: {exc}; the crawl stops so that no more "
                    "items are lost"
                )
            )
            return
        finally:
            self._synced_at = time.monotonic()
        self._synced = delivered
