"""Scheduler: admits requests through the filters into the frontier and hands them to workers.

Stage 2 of the flow. It alone knows when a crawl is over: nothing pending, nothing in flight
and no producer (the spider's `start()`) still running. Every request it refuses is counted by
reason ("duplicate", "offsite", "depth", and the link reasons workers report).
Reads DEPTH_LIMIT (through DepthFilter) and the spider's allowed_domains (OffsiteFilter).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scrapekit.request import Request
from scrapekit.scheduler.filters import DepthFilter, OffsiteFilter
from scrapekit.scheduler.fingerprint import fingerprint
from scrapekit.scheduler.frontier.base import Frontier, FrontierStatistics


@dataclass(frozen=True, slots=True)
class SchedulerStatistics:
    """Requests admitted and dropped (by reason), and the frontier's own counters."""

    enqueued: int
    dropped: Mapping[str, int]
    in_flight: int
    frontier: FrontierStatistics


class Scheduler:
    """Decides what is fetched next; the only way requests reach workers."""

    def __init__(
        self,
        frontier: Frontier,
        *,
        offsite: OffsiteFilter | None = None,
        depth: DepthFilter | None = None,
    ) -> None:
        self.frontier = frontier
        self._offsite = offsite or OffsiteFilter(())
        self._depth = depth or DepthFilter(0)
        self._dropped: Counter[str] = Counter()
        self._enqueued = 0
        self._in_flight = 0
        self._producers = 0
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self.close_reason: str | None = None

    # -- admission ---------------------------------------------------------------------------

    def _passes(self, request: Request) -> bool:
        """Whether the off-site and depth filters keep the request (drops are counted)."""
        if not self._offsite.allows(request):
            self._dropped["offsite"] += 1
            return False
        if not self._depth.allows(request):
            self._dropped["depth"] += 1
            return False
        return True

    async def enqueue(self, request: Request) -> bool:
        """Filter a request into the frontier now; return whether it was admitted."""
        if not self._passes(request):
            return False
        if not await self.frontier.add(request, _key(request)):
            self._dropped["duplicate"] += 1
            return False
        self._enqueued += 1
        self._wakeup.set()
        return True

    def count_drops(self, reasons: Mapping[str, int]) -> None:
        """Count requests dropped before they reached the scheduler (e.g. unfollowable links)."""
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
        """Wait for the next request to fetch.

        Return None if and only if the crawl is over for this worker: the scheduler was closed,
        or nothing is pending, nothing is in flight and no producer is running.
        """
        while self.close_reason is None:
            # Cleared before the (possibly suspending) pop, so a wakeup set meanwhile is kept.
            self._wakeup.clear()
            request = await self.frontier.pop()
            if request is not None:
                self._in_flight += 1
                self._room.set()
                return request
            if not len(self.frontier) and not self._in_flight and not self._producers:
                self._wakeup.set()  # let every other waiting worker see the end too
                return None
            await self._wakeup.wait()
        return None

    async def done(self, request: Request, new_requests: Iterable[Request] = ()) -> None:
        """A request from next_request() is finished; queue the requests its page produced.

        The new requests pass the filters here and reach the frontier together with the
        acknowledgement, in one `Frontier.complete()` call.
        """
        candidates = [(new, _key(new)) for new in new_requests if self._passes(new)]
        admitted = await self.frontier.complete(request, candidates)
        if duplicates := len(candidates) - admitted:
            self._dropped["duplicate"] += duplicates
        self._enqueued += admitted
        self._in_flight -= 1
        if admitted or not self._in_flight:
            self._wakeup.set()

    async def release(self, request: Request) -> None:
        """A request from next_request() was abandoned (immediate stop): hand it back."""
        self._in_flight -= 1
        await self.frontier.release(request)

    async def wait_for_room(self, limit: int) -> bool:
        """Wait while `limit` or more requests are pending, so a producer stays lazy.

        A spider whose start() reads millions of URLs then holds only about `limit` of them in
        memory at a time. Return False if the scheduler is closed: the producer should stop.
        """
        while len(self.frontier) >= limit and self.close_reason is None:
            self._room.clear()
            await self._room.wait()
        return self.close_reason is None

    def close(self, reason: str) -> None:
        """Stop handing out requests (graceful stop); in-flight ones still finish."""
        if self.close_reason is None:
            self.close_reason = reason
        self._wakeup.set()
        self._room.set()

    # -- reporting ---------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Requests waiting in the frontier."""
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
