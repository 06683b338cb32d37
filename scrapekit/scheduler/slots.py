"""Host slots: which request in flight holds a slot of its host, and when the slot is freed.

The scheduler hands out a request only with a slot its host's rate limiter
(politeness/ratelimit.py) grants, or with none when the HTTP cache will answer it (a replay
sends nothing). This is that bookkeeping, apart from what the scheduler decides (what goes
next, when the crawl is over): the lease of every request in flight, whether it still holds
its slot, and freeing the slot once, when the response comes (`free`) or else when the page
is done (`finish`), which reopens the host's gate in the frontier. A lease the limiter refuses
goes back with its host's gate shut for as long as the limiter says. With robots.txt on, a
host's first request goes alone (a probe): the robots.txt it fetches (and its Crawl-delay) is
known before the host's other requests are let through.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol

from scrapekit.request import Request
from scrapekit.scheduler.frontier.base import Frontier, Lease

if TYPE_CHECKING:
    from scrapekit.politeness.ratelimit import RateLimiter

#: How `HostSlots.take` went: the request may go now; or its lease went back because its host
#: is being probed, or because the host has no slot free yet ("throttled").
Grant = Literal["go", "probing", "throttled"]


class CacheLookup(Protocol):
    """What the scheduler asks the HTTP cache (httpcache/policy.py `ResponseCache`)."""

    async def lookup(self, request: Request) -> bool:
        """Whether a stored response will answer `request` (held for the worker)."""
        ...

    def forget(self, request: Request) -> None:
        """Drop the response held for `request`, which will not be processed now."""
        ...


class BadMeta(Exception):
    """The limiter cannot read a value in the request's meta: the request is dropped."""


class HostSlots:
    """The leases of the requests in flight and the host slot each holds."""

    def __init__(
        self,
        frontier: Frontier,
        limiter: RateLimiter | None,
        *,
        cache: CacheLookup | None,
        probe_new_hosts: bool,
        clock: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self.frontier = frontier
        self.limiter = limiter
        self.cache = cache
        self._clock = clock
        # Called when a freed slot reopened a host's gate: waiting workers look again.
        self._wake = wake
        # The leases of the requests in flight, by request (a list: the same Request object
        # may be in flight twice with dont_filter). At most CONCURRENCY entries.
        self._leases: dict[int, list[Lease]] = {}
        # The frontier keeps a probed host's gate shut until its first request is done.
        self._probe = probe_new_hosts and limiter is not None
        self._probing: set[str] = set()
        self._known: set[str] = set()
        # Leases whose host slot was freed when their response came (free).
        self._slot_freed: set[int] = set()
        # Leases that took no host slot: answered by the HTTP cache.
        self._no_slot: set[int] = set()

    def key_for(self, request: Request) -> str:
        """The request's host queue: its rate-limit key ("" without a limiter)."""
        return self.limiter.key_for(request) if self.limiter is not None else ""

    async def take(self, lease: Lease, now: float) -> Grant:
        """Take the leased request's politeness slot, or hand the lease back and shut the gate.

        Raises BadMeta, the lease still out, if the limiter cannot read the request's meta.
        """
        key = lease.key
        cache = self.cache
        if cache is not None and key not in self._probing and await cache.lookup(lease.request):
            self._no_slot.add(lease.id)
            return "go"
        limiter = self.limiter
        if limiter is None:
            return "go"
        frontier = self.frontier
        # On a refusal the gate is shut before the lease goes back: the frontier applies calls
        # in the order they are made, so a slot freed meanwhile (open_gate) reopens it after.
        if key in self._probing:  # a lease taken before the probe shut the gate
            await frontier.close_gate(key, math.inf)
            await frontier.release(lease)
            return "probing"
        try:
            wait = await limiter.acquire(key, lease.request, now)
        except ValueError as exc:
            raise BadMeta(str(exc)) from exc
        if wait > 0:
            await frontier.close_gate(key, now + wait)
            await frontier.release(lease)
            return "throttled"
        if self._probe and key not in self._known:
            self._probing.add(key)
            await frontier.close_gate(key, math.inf)
        return "go"

    def hold(self, lease: Lease) -> None:
        """Keep the lease of a request handed out: it is in flight."""
        self._leases.setdefault(id(lease.request), []).append(lease)

    def lease_of(self, request: Request) -> Lease:
        """Take back the lease of a request in flight (its page is done or handed back)."""
        leases = self._leases[id(request)]
        lease = leases.pop()
        if not leases:
            del self._leases[id(request)]
        return lease

    async def free(self, request: Request) -> None:
        """The request's response came: free its host slot (at most once; see `finish`)."""
        leases = self._leases.get(id(request))
        if leases and (lease := leases[-1]).id not in self._slot_freed:
            self._slot_freed.add(lease.id)
            if lease.id not in self._no_slot:
                await self._free(lease.key)

    async def finish(self, lease: Lease) -> None:
        """The lease is over: free its host slot unless its response freed it already."""
        if lease.id in self._slot_freed:
            self._slot_freed.discard(lease.id)
        elif lease.id not in self._no_slot:
            await self._free(lease.key)
        self._no_slot.discard(lease.id)

    async def _free(self, key: str) -> None:
        if key in self._probing:
            self._probing.discard(key)
            self._known.add(key)
        if self.limiter is not None:
            await self.limiter.release(key, self._clock())
            await self.frontier.open_gate(key)  # a slot freed: the host may go again
            self._wake()
