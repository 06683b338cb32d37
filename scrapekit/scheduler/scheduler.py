"""Scheduler: admits requests into the frontier and hands each to a worker when it may go.

Stage 2 of the flow. The scheduler keeps three jobs and no queue of its own:

- admission: the filters (URL length, off-site, depth) and the fingerprint for the duplicate
  check, then `Frontier.push` into the request's host queue (its rate-limit key);
- hand-out: `Frontier.lease(now)` gives the best request of a host whose gate is open; the
  rate limiter then grants it a slot, or the lease goes back and the frontier keeps that
  host's gate shut for as long as the limiter says (see frontier/base.py for the split, and
  slots.py for the slots of the requests in flight). So a request the scheduler takes is one
  it sends: a throttled host's backlog stays in the frontier, and waiting for it costs
  nothing. A request the HTTP cache will answer (`cache.lookup`) goes without a slot: a
  replay sends nothing, so politeness does not apply (it still waits behind a gate that a
  live request of its host shut);
- the end of the crawl: nothing pending or in flight, and no producer (the spider's `start()`)
  still running.

A page's items go to the frontier with its acknowledgement (`done`), each with its stable
id (the page's fingerprint and the item's index: itemids.py); the frontier's outbox hands
them on to the pipelines once committed.

Retries and Retry-After pauses are frontier state (a request's not-before time, a host's
pause). Every request it refuses is counted by reason ("url too long", "duplicate",
"offsite", "depth", "unstorable request" (a durable frontier cannot store it), and the
reasons workers report); so is an item the frontier cannot store ("unstorable item"). Reads
URL_LENGTH_LIMIT, DEPTH_LIMIT and allowed_domains (through the filters) and START_READAHEAD
(through the engine).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from scrapekit.exceptions import UnstorableRequest
from scrapekit.request import Request, shorten_url
from scrapekit.scheduler.filters import DepthFilter, OffsiteFilter, UrlLengthFilter
from scrapekit.scheduler.fingerprint import fingerprint
from scrapekit.scheduler.frontier.base import (
    Entry,
    Fetched,
    Frontier,
    FrontierStatistics,
    Lease,
)
from scrapekit.scheduler.itemids import ItemIds
from scrapekit.scheduler.slots import BadMeta, CacheLookup, HostSlots

if TYPE_CHECKING:
    from scrapekit.politeness.ratelimit import RateLimiter

log = structlog.get_logger(__name__)

#: A response's (ETag, Last-Modified), either may be missing.
Validators = tuple[str | None, str | None]

# The loops that may go on without awaiting (a start() that never awaits, a run of refused
# leases) hand the event loop back this often, so nothing else waits longer than that.
_YIELD_EVERY = 0.005


@dataclass(frozen=True, slots=True)
class SchedulerStatistics:
    """Requests admitted, dropped (by reason), in flight, and the frontier's own counters."""

    enqueued: int
    dropped: Mapping[str, int]
    in_flight: int
    frontier: FrontierStatistics


class Scheduler:
    """Decides what is fetched next, and when; the only way requests reach workers."""

    def __init__(
        self,
        frontier: Frontier,
        *,
        offsite: OffsiteFilter | None = None,
        depth: DepthFilter | None = None,
        limiter: RateLimiter | None = None,
        probe_new_hosts: bool = False,
        clock: Callable[[], float] = time.monotonic,
        url_length: UrlLengthFilter | None = None,
        readahead: int = 0,
        cache: CacheLookup | None = None,
    ) -> None:
        self.frontier = frontier
        self.limiter = limiter
        self.cache = cache
        self._url_length = url_length or UrlLengthFilter(0)
        self._offsite = offsite or OffsiteFilter(())
        self._depth = depth or DepthFilter(0)
        self._clock = clock
        self._readahead = readahead
        self._dropped: Counter[str] = Counter()
        self._enqueued = 0
        self._in_flight = 0
        self._producers = 0
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._yielded_at = time.monotonic()
        self._items = ItemIds(frontier, self._dropped)
        self._slots = HostSlots(
            frontier,
            limiter,
            cache=cache,
            probe_new_hosts=probe_new_hosts,
            clock=clock,
            wake=self._wakeup.set,
        )
        self.close_reason: str | None = None
        #: How many of start()'s outputs were read, set by the start feeder before it hands
        #: one on; `enqueue` stores it with the start request (a resumed crawl skips those).
        self.start_read: int | None = None

    # -- admission ---------------------------------------------------------------------------

    def _passes(self, request: Request, *, start: bool = False) -> bool:
        """Whether the filters keep the request (drops are counted).

        The URL length goes first, before any check that caches by URL.
        """
        if not self._url_length.allows(request):
            self._dropped["url too long"] += 1
            # A start URL is the user's own: say so loudly. A link is the page's business.
            (log.warning if start else log.debug)(
                "request dropped",
                url=shorten_url(request.url),
                reason="url too long",
                limit=self._url_length.limit,
                hint="raise URL_LENGTH_LIMIT (0 = no limit) to fetch it",
            )
            return False
        if not self._offsite.allows(request):
            self._dropped["offsite"] += 1
            return False
        if not self._depth.allows(request):
            self._dropped["depth"] += 1
            return False
        return True

    def refusal(self, request: Request) -> str | None:
        """Why the filters would drop the request, or None (nothing is counted): redirect checks."""
        if not self._url_length.allows(request):
            return "url too long"
        if not self._offsite.allows(request):
            return "offsite"
        return None if self._depth.allows(request) else "depth"

    def _entry(self, request: Request) -> Entry | None:
        """The request as the frontier takes it, or None if it is a known duplicate or cannot
        be stored (counted)."""
        key = _key(request)
        if key is not None and self.frontier.seen_before(key):
            self._dropped["duplicate"] += 1
            return None
        try:
            record = self.frontier.encode(request)
        except UnstorableRequest as exc:
            self._dropped["unstorable request"] += 1
            log.error(
                "request dropped",
                url=shorten_url(request.url),
                reason="unstorable request",
                error=str(exc),
            )
            return None
        return Entry(request, key, self._slots.key_for(request), record)

    async def enqueue(self, request: Request) -> bool:
        """Filter a start request into the frontier now; return whether it was admitted."""
        if not self._passes(request, start=True):
            return False
        entry = self._entry(request)
        if entry is None:
            return False
        if not await self.frontier.push([entry], start=self.start_read):
            self._dropped["duplicate"] += 1  # never "not due": RECRAWL_AFTER spares depth 0
            return False
        self._enqueued += 1
        self._wakeup.set()
        return True

    def count_drops(self, reasons: Mapping[str, int]) -> None:
        """Count requests dropped outside the scheduler (unfollowable links, robots.txt)."""
        self._dropped.update(reasons)

    # -- hand-out ----------------------------------------------------------------------------

    def producer_started(self) -> None:
        """A producer (the start-request feeder) may still enqueue: the crawl is not over."""
        self._producers += 1

    def producer_finished(self) -> None:
        """A producer is done; if nothing else is left the crawl can finish."""
        self._producers -= 1
        self._wakeup.set()

    async def next_request(self) -> Request | None:
        """Wait for the next request that may be fetched now, and take its host slot.

        Return None if and only if the crawl is over for this worker: the scheduler was closed,
        or nothing is pending or in flight and no producer is running.
        """
        while self.close_reason is None:
            # Cleared before the (possibly suspending) lease, so a wakeup set meanwhile is kept.
            self._wakeup.clear()
            now = self._clock()
            got = await self.frontier.lease(now)
            if isinstance(got, Lease):
                if self._closed():  # closed while this lease was read
                    await self.frontier.release(got)
                    break
                if await self._admit(got, now):
                    self._in_flight += 1
                    self._slots.hold(got)
                    self._room.set()
                    if self._closed():  # closed while it was admitted
                        await self.release(got.request)
                        break
                    return got.request
                # Refused: that host's gate is now shut in the frontier, so the next lease
                # comes from another host (each host is refused at most once per opening).
                await self._breathe()
                continue
            if self._finished():
                self._wakeup.set()  # let every other waiting worker see the end too
                return None
            await self._sleep_until(got, now)
        return None

    async def _admit(self, lease: Lease, now: float) -> bool:
        """Take the leased request's politeness slot (see `HostSlots.take`), or hand the lease
        back with its host's gate shut; a request whose meta the limiter cannot read is dropped.

        Returns whether the request may go now.
        """
        try:
            grant = await self._slots.take(lease, now)
        except BadMeta as exc:
            self._dropped["bad meta"] += 1
            log.error("request dropped", url=lease.request.url, reason="bad meta", error=str(exc))
            await self.frontier.commit(lease, ())
            self._wakeup.set()  # it may have been the last request
            return False
        if grant == "throttled":
            self._room.set()  # the host's backlog now waits: start() may read on
        return grant == "go"

    def _closed(self) -> bool:
        """Whether close() was called: a method, since any await may have called it."""
        return self.close_reason is not None

    def _finished(self) -> bool:
        return not (len(self.frontier) or self._in_flight or self._producers)

    async def _sleep_until(self, when: float, now: float) -> None:
        """Wait for a wakeup (new work, a finished request) or until `when` (a host opens)."""
        if when == math.inf:
            await self._wakeup.wait()
            return
        try:
            async with asyncio.timeout(max(when - now, 0.0)):
                await self._wakeup.wait()
        except TimeoutError:
            pass

    async def _breathe(self) -> None:
        """Hand the event loop back if this task has held it for a while."""
        now = time.monotonic()
        if now - self._yielded_at >= _YIELD_EVERY:
            self._yielded_at = now
            await asyncio.sleep(0)

    # -- completion --------------------------------------------------------------------------

    async def done(
        self,
        request: Request,
        new_requests: Iterable[Request] = (),
        items: Sequence[Any] = (),
        *,
        validators: Validators | None = None,
    ) -> None:
        """A request from next_request() is finished; queue the requests its page produced.

        The new requests pass the filters here and reach the frontier together with the
        acknowledgement and the page's items, in one `Frontier.commit()` call. Item ids are
        the page's fingerprint (hex) and the item's index: the same for a refetch of the page.
        `validators` (the response's ETag and Last-Modified) say the page was fetched: a
        frontier that keeps a fetch history for RECRAWL_AFTER remembers it with them.
        """
        lease = self._slots.lease_of(request)
        candidates = [
            entry
            for new in new_requests
            if self._passes(new) and (entry := self._entry(new)) is not None
        ]
        frontier = self.frontier
        # The page's fingerprint only when something needs it (not on every page): its
        # items' ids, or the fetch a frontier with RECRAWL_AFTER remembers.
        kept = validators if frontier.remembers_fetches else None
        needed = items or (kept is not None and not request.dont_filter)
        page = fingerprint(request) if needed else None
        fetched = Fetched(page, *kept) if kept is not None and page is not None else None
        stored = self._items.of_page(page, items)
        not_due = frontier.not_due
        admitted = await frontier.commit(lease, candidates, stored, fetched=fetched)
        self._count_refused(len(candidates) - admitted, not_due)
        self._enqueued += admitted
        await self._finish(lease)

    def _count_refused(self, refused: int, not_due_before: int) -> None:
        """Split the requests a push refused into duplicates and pages not due (RECRAWL_AFTER)."""
        if not refused:
            return
        not_due = self.frontier.not_due - not_due_before
        if not_due:
            self._dropped["not due"] += not_due
        if refused - not_due:
            self._dropped["duplicate"] += refused - not_due

    async def add_items(self, items: Sequence[Any], *, start: int | None = None) -> None:
        """Commit items that start() yielded (no page to commit them with).

        `start`: how many of start()'s outputs have been read, these items (its last ones)
        included. Each item's id is then `start:<n>`, n its index among start()'s outputs
        (requests count too), the same in a resumed run that skips what is stored; and the
        position is recorded, so a resumed run does not read these items again (without it
        they would be read again, and delivered twice, up to the next start request stored).
        Without `start` the ids number the items in the order given.
        """
        stored = self._items.of_start(items, start)
        if stored or start is not None:
            # One step: the items and how far start() is stored (a durable frontier).
            await self.frontier.commit(None, (), stored, start=start)

    async def retry_later(self, request: Request, delay: float) -> None:
        """Fetch the request again after `delay` seconds (its attempt counter is in meta).

        The attempt's end and the request's return to its host queue, with its not-before
        time, are one frontier step.
        """
        lease = self._slots.lease_of(request)
        await self.frontier.retry(lease, self._clock() + delay)
        await self._finish(lease)

    async def release(self, request: Request) -> None:
        """A request from next_request() was abandoned (immediate stop): hand it back."""
        lease = self._slots.lease_of(request)
        if self.cache is not None:
            self.cache.forget(request)  # a response held for it would outlive the request
        await self.frontier.release(lease)
        await self._finish(lease)

    async def free_slot(self, request: Request) -> None:
        """The request's response came (its Retry-After, if any, already applied): free its
        host slot for the host's next request while the page is parsed and committed, as
        Scrapy frees a download slot when the download ends. The page stays leased and in
        flight until `done`. Called at most once per request; `done` frees it otherwise."""
        await self._slots.free(request)

    async def _finish(self, lease: Lease) -> None:
        self._in_flight -= 1
        await self._slots.finish(lease)
        self._wakeup.set()

    # -- politeness feedback -----------------------------------------------------------------

    async def feedback(
        self, request: Request, *, status: int | None, latency: float | None, timed_out: bool
    ) -> None:
        """Tell the host's gate how a request went (AutoThrottle adapts the host's rate)."""
        if self.limiter is not None:
            await self.limiter.feedback(
                self._slots.key_for(request),
                status=status,
                latency=latency,
                timed_out=timed_out,
                now=self._clock(),
            )

    async def pause_host(self, request: Request, seconds: float) -> None:
        """Hold every request for the request's host for `seconds` (a Retry-After).

        The pause is frontier state (a durable frontier keeps it across runs); the limiter
        hears of it too, as the authority on the host's gate and for its statistics.
        """
        if self.limiter is None:
            return
        key = self._slots.key_for(request)
        until = self._clock() + seconds
        await self.limiter.pause(key, until)
        await self.frontier.pause(key, until)
        self._room.set()  # the host's backlog now waits: start() may read on

    async def wait_for_room(self, limit: int) -> bool:
        """Wait while `limit` or more requests could go soon, so a producer stays lazy.

        Requests that wait for a known time (a paused or throttled host, a retry's backoff)
        do not count, so a throttled host's backlog never stops start() from being read and
        the other hosts from being crawled; START_READAHEAD bounds how many pending requests
        that may pile up in all. A spider whose start() reads millions of URLs then holds only
        a bounded number of them at a time. Return False if the scheduler is closed: the
        producer should stop.
        """
        frontier = self.frontier
        cap = self._readahead
        while self.close_reason is None and (
            len(frontier) - frontier.waiting >= limit or (cap and len(frontier) >= cap)
        ):
            self._room.clear()
            await self._room.wait()
            self._yielded_at = time.monotonic()
        await self._breathe()  # a start() that never awaits must not hold the event loop
        return self.close_reason is None

    def close(self, reason: str) -> None:
        """Stop handing out requests (graceful stop); in-flight ones still finish.

        Pending requests, retries and pauses stay in the frontier (a durable one keeps them).
        """
        if self.close_reason is None:
            self.close_reason = reason
        self._wakeup.set()
        self._room.set()

    # -- reporting ---------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Requests waiting in the frontier (for a worker, their host's gate, or a retry)."""
        return len(self.frontier)

    @property
    def in_flight(self) -> int:
        """Requests handed to workers and not yet done."""
        return self._in_flight

    def statistics(self) -> SchedulerStatistics:
        """A snapshot of the scheduler's counters."""
        return SchedulerStatistics(
            enqueued=self._enqueued,
            dropped=dict(self._dropped),
            in_flight=self._in_flight,
            frontier=self.frontier.statistics(),
        )


def _key(request: Request) -> bytes | None:
    """What the duplicate filter compares: the fingerprint, or None to skip it (dont_filter)."""
    return None if request.dont_filter else fingerprint(request)
