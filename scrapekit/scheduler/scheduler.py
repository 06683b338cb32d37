"""Scheduler: admits requests into the frontier and hands each to a worker when it may go.

Stage 2 of the flow, and where all waiting happens. A request goes out only when its host's
politeness gate (rate, delay, per-host concurrency, a Retry-After pause) is open; until then it
is parked here, not in a worker, and requests for other hosts go ahead. Retries wait here too,
until their not-before time. The scheduler alone knows when a crawl is over: nothing pending,
parked, delayed or in flight, and no producer (the spider's `start()`) still running. Every
request it refuses is counted by reason ("url too long", "duplicate", "offsite", "depth", and
the reasons workers report). Reads URL_LENGTH_LIMIT, DEPTH_LIMIT and allowed_domains (through
the filters).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from scrapekit.request import Request, shorten_url
from scrapekit.scheduler.filters import DepthFilter, OffsiteFilter, UrlLengthFilter
from scrapekit.scheduler.fingerprint import fingerprint
from scrapekit.scheduler.frontier.base import Frontier, FrontierStatistics

if TYPE_CHECKING:
    from scrapekit.politeness.ratelimit import RateLimiter

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SchedulerStatistics:
    """Requests admitted, dropped (by reason), waiting, and the frontier's own counters."""

    enqueued: int
    dropped: Mapping[str, int]
    in_flight: int
    parked: int
    delayed: int
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
    ) -> None:
        self.frontier = frontier
        self.limiter = limiter
        self._url_length = url_length or UrlLengthFilter(0)
        self._offsite = offsite or OffsiteFilter(())
        self._depth = depth or DepthFilter(0)
        self._clock = clock
        self._dropped: Counter[str] = Counter()
        self._enqueued = 0
        self._in_flight = 0
        self._producers = 0
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._order = itertools.count()
        # Requests waiting for their host's gate, by slot key, highest priority first.
        self._parked: dict[str, list[tuple[int, int, Request]]] = {}
        self._parked_count = 0
        # (time the slot may open, order, key): slots worth asking again at that time, at
        # most one live entry per key (`_gate_at`); stale heap entries are skipped.
        self._gates: list[tuple[float, int, str]] = []
        self._gate_at: dict[str, float] = {}
        # (not-before time, order, request): retries waiting out their backoff.
        self._delayed: list[tuple[float, int, Request]] = []
        # The slot each in-flight request holds, released when it is done (a list: the same
        # Request object may be in flight twice with dont_filter).
        self._slots: dict[int, list[str]] = {}
        # With robots.txt on, a host's first request goes alone: the robots.txt it fetches
        # (and its Crawl-delay) is known before the host's other requests are let through.
        self._probe = probe_new_hosts and limiter is not None
        self._probing: set[str] = set()
        self._known: set[str] = set()
        self.close_reason: str | None = None

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

    async def enqueue(self, request: Request) -> bool:
        """Filter a start request into the frontier now; return whether it was admitted."""
        if not self._passes(request, start=True):
            return False
        if not await self.frontier.add(request, _key(request)):
            self._dropped["duplicate"] += 1
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
        """Wait for the next request that may be fetched now.

        Return None if and only if the crawl is over for this worker: the scheduler was closed,
        or nothing is pending, parked, delayed or in flight and no producer is running.
        """
        while self.close_reason is None:
            # Cleared before the (possibly suspending) pops, so a wakeup set meanwhile is kept.
            self._wakeup.clear()
            now = self._clock()
            self._release_due_retries(now)
            request = await self._opened_gate(now)
            if request is None:
                request = await self.frontier.pop()
                if request is not None and not await self._admit_now(request, now):
                    continue  # parked until its host's gate opens; look for another
            if request is not None:
                self._in_flight += 1
                self._room.set()
                return request
            if self._finished():
                self._wakeup.set()  # let every other waiting worker see the end too
                return None
            await self._sleep_until_next_event(now)
        return None

    def _release_due_retries(self, now: float) -> None:
        """Retries whose backoff is over queue at their host's gate, like any request."""
        while self._delayed and self._delayed[0][0] <= now:
            request = heapq.heappop(self._delayed)[2]
            self._park(self._slot_key(request), request, 0.0, now)

    async def _admit_now(self, request: Request, now: float) -> bool:
        """Take the request's politeness slot now, or park it until the gate may open."""
        if self.limiter is None:
            return True
        key = self._slot_key(request)
        if key in self._parked or key in self._probing:
            # Keep the host's order (wait behind its parked requests), and let a new host's
            # first request finish before the next goes.
            self._park(key, request, None, now)
            return False
        if self._probe and key not in self._known:
            self._probing.add(key)
        wait = await self._acquire(key, request, now)
        if wait is None:
            self._probing.discard(key)
            return False
        if wait > 0:
            self._park(key, request, wait, now)
            return False
        self._take_slot(request, key)
        return True

    async def _acquire(self, key: str, request: Request, now: float) -> float | None:
        """The limiter's answer, or None (request dropped) when its meta overrides are bad."""
        assert self.limiter is not None
        try:
            return await self.limiter.acquire(key, request, now)
        except ValueError as exc:
            self._dropped["bad meta"] += 1
            log.error("request dropped", url=request.url, reason="bad meta", error=str(exc))
            return None

    def _take_slot(self, request: Request, key: str) -> None:
        self._slots.setdefault(id(request), []).append(key)

    def _slot_key(self, request: Request) -> str:
        return self.limiter.key_for(request) if self.limiter is not None else ""

    def _park(self, key: str, request: Request, wait: float | None, now: float) -> None:
        queue = self._parked.get(key)
        if queue is None:
            queue = self._parked[key] = []
        heapq.heappush(queue, (-request.priority, next(self._order), request))
        self._parked_count += 1
        if wait is not None and wait != float("inf"):
            self._gate(key, now + wait)

    def _gate(self, key: str, when: float) -> None:
        """Ask the slot again at `when`, unless it is already due to be asked sooner."""
        current = self._gate_at.get(key)
        if current is None or when < current:
            self._gate_at[key] = when
            heapq.heappush(self._gates, (when, next(self._order), key))

    async def _opened_gate(self, now: float) -> Request | None:
        """The first parked request whose slot is open now, if any."""
        while self._gates and self._gates[0][0] <= now:
            when, _, key = heapq.heappop(self._gates)
            if self._gate_at.get(key) != when:
                continue  # a stale entry: the key was re-gated since
            del self._gate_at[key]
            queue = self._parked.get(key)
            if not queue or key in self._probing:
                continue
            if self._probe and key not in self._known:
                self._probing.add(key)
            head = queue[0][2]
            wait = 0.0 if self.limiter is None else await self._acquire(key, head, now)
            if wait is None or wait > 0:
                if wait is None:  # bad meta: the head was dropped; try the next one now
                    self._probing.discard(key)
                    self._unpark(key)
                    wait = 0.0
                if wait != float("inf") and key in self._parked:
                    self._gate(key, now + wait)
                continue
            request = self._unpark(key)
            if key in self._parked:
                self._gate(key, now)
            if self.limiter is not None:
                self._take_slot(request, key)
            return request
        return None

    def _unpark(self, key: str) -> Request:
        queue = self._parked[key]
        request = heapq.heappop(queue)[2]
        self._parked_count -= 1
        if not queue:
            del self._parked[key]
        return request

    def _finished(self) -> bool:
        return not (
            len(self.frontier)
            or self._parked_count
            or self._delayed
            or self._in_flight
            or self._producers
        )

    async def _sleep_until_next_event(self, now: float) -> None:
        """Wait for a wakeup (new work, a finished request) or the next gate or retry time."""
        soonest = min(
            self._gates[0][0] if self._gates else float("inf"),
            self._delayed[0][0] if self._delayed else float("inf"),
        )
        if soonest == float("inf"):
            await self._wakeup.wait()
            return
        try:
            async with asyncio.timeout(max(soonest - now, 0.0)):
                await self._wakeup.wait()
        except TimeoutError:
            pass

    # -- completion --------------------------------------------------------------------------

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
        await self._finish(request)

    async def retry_later(self, request: Request, delay: float) -> None:
        """Fetch the request again after `delay` seconds (its attempt counter is in meta)."""
        await self.frontier.complete(request, ())
        heapq.heappush(self._delayed, (self._clock() + delay, next(self._order), request))
        await self._finish(request)

    async def release(self, request: Request) -> None:
        """A request from next_request() was abandoned (immediate stop): hand it back."""
        await self.frontier.release(request)
        await self._finish(request)

    async def _finish(self, request: Request) -> None:
        self._in_flight -= 1
        held = self._slots.get(id(request))
        key = held.pop() if held else None
        if held is not None and not held:
            del self._slots[id(request)]
        if key is not None and key in self._probing:
            self._probing.discard(key)
            self._known.add(key)
        if key is not None and self.limiter is not None:
            await self.limiter.release(key, self._clock())
            if key in self._parked:  # a slot freed: its parked requests may go now
                self._gate(key, self._clock())
        self._wakeup.set()

    # -- politeness feedback -----------------------------------------------------------------

    async def feedback(
        self, request: Request, *, status: int | None, latency: float | None, timed_out: bool
    ) -> None:
        """Tell the host's gate how a request went (AutoThrottle adapts the host's rate)."""
        if self.limiter is not None:
            await self.limiter.feedback(
                self._slot_key(request),
                status=status,
                latency=latency,
                timed_out=timed_out,
                now=self._clock(),
            )

    async def pause_host(self, request: Request, seconds: float) -> None:
        """Hold every request for the request's host for `seconds` (a Retry-After)."""
        if self.limiter is not None:
            await self.limiter.pause(self._slot_key(request), self._clock() + seconds)

    async def wait_for_room(self, limit: int) -> bool:
        """Wait while `limit` or more requests are pending, so a producer stays lazy.

        A spider whose start() reads millions of URLs then holds only about `limit` of them in
        memory at a time. Return False if the scheduler is closed: the producer should stop.
        """
        while len(self.frontier) + self._parked_count >= limit and self.close_reason is None:
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
        """Requests waiting: in the frontier, parked at their host's gate, or delayed."""
        return len(self.frontier) + self._parked_count + len(self._delayed)

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
            parked=self._parked_count,
            delayed=len(self._delayed),
            frontier=self.frontier.statistics(),
        )


def _key(request: Request) -> bytes | None:
    """What the duplicate filter compares: the fingerprint, or None to skip it (dont_filter)."""
    return None if request.dont_filter else fingerprint(request)
