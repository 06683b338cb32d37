"""In-process frontier: per-host queues, gates and leases in RAM. Lost when the process ends.

Every operation is O(log n), whatever the backlog of a waiting host: heaps with lazy deletion.

- Each host keeps `ready` (requests whose not-before has come, best first) and `later`
  (retries, by not-before time).
- `_open` holds one entry per open host that has a ready request, ranked by that request, so
  `lease()` takes the best request across hosts without looking at any waiting host.
- `_timers` holds one entry per host waiting for a known time: its gate (a pause, a closed
  gate), or, when open, its next not-before.

An entry whose host has changed since (a new head, a new gate) is stale: it is skipped when it
surfaces, and a heap is rebuilt once its stale entries outnumber its live ones.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence

from scrapekit.request import Request
from scrapekit.scheduler.frontier.base import Entry, Frontier, FrontierStatistics, Lease

_NONE = -math.inf  # an unset gate time: before every `now`
_SLACK = 64  # stale heap entries tolerated beyond the live ones before a rebuild


class _Host:
    """One host's queue and gate; `waits()` is its share of the frontier's `waiting`."""

    __slots__ = (
        "advertised",
        "closed_until",
        "key",
        "later",
        "paused_until",
        "ready",
        "shut",
        "timer",
    )

    def __init__(self, key: str) -> None:
        self.key = key
        self.ready: list[tuple[int, int, Request]] = []  # (-priority, order, request)
        self.later: list[tuple[float, int, int, Request]] = []  # (not_before, order, -priority, …)
        self.paused_until = _NONE
        self.closed_until = _NONE
        self.advertised: tuple[int, int] | None = None  # the head `_open` holds for this host
        self.timer: float | None = None  # the live `_timers` entry's time
        self.shut = False  # closed until a known time: its ready requests are waiting too

    @property
    def gate(self) -> float:
        """When the host opens: _NONE if open now, math.inf if only `open_gate` opens it."""
        return max(self.paused_until, self.closed_until)

    def waits(self) -> int:
        return len(self.later) + (len(self.ready) if self.shut else 0)

    def idle(self) -> bool:
        """Whether forgetting the host loses nothing (no request and no gate)."""
        return not self.ready and not self.later and self.gate == _NONE


class MemoryFrontier(Frontier):
    """The frontier for tests and one-off runs: fast, and gone at exit."""

    def __init__(self) -> None:
        self._hosts: dict[str, _Host] = {}
        self._open: list[tuple[int, int, str]] = []
        self._timers: list[tuple[float, str]] = []
        self._order = itertools.count()
        self._lease_ids = itertools.count(1)
        # lease id -> the request's place in its queue, so a release puts it back there
        self._leases: dict[int, tuple[int, int]] = {}
        self._seen: set[bytes] = set()
        self._pending = 0
        self._waiting = 0
        self._pushed = 0

    # -- queueing ----------------------------------------------------------------------------

    async def push(self, entries: Sequence[Entry]) -> int:
        return self._push(entries)

    def _push(self, entries: Sequence[Entry]) -> int:
        queued = 0
        seen = self._seen
        for entry in entries:
            fingerprint = entry.fingerprint
            if fingerprint is not None:
                if fingerprint in seen:
                    continue
                seen.add(fingerprint)
            request = entry.request
            self._enqueue(self._host(entry.key), request, -request.priority, next(self._order))
            queued += 1
        self._pushed += queued
        return queued

    def _host(self, key: str) -> _Host:
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(key)
        return host

    def _enqueue(self, host: _Host, request: Request, rank: int, order: int) -> None:
        heapq.heappush(host.ready, (rank, order, request))
        self._pending += 1
        if host.shut:
            self._waiting += 1
        elif host.gate == _NONE and host.ready[0][1] == order:
            self._advertise(host)  # a new best request for an open host

    # -- hand-out ----------------------------------------------------------------------------

    async def lease(self, now: float) -> Lease | float:
        self._wake(now)
        heap = self._open
        while heap:
            rank, order, key = heapq.heappop(heap)
            host = self._hosts.get(key)
            if host is None or host.advertised != (rank, order):
                continue  # stale: the host's head or gate changed since
            request = heapq.heappop(host.ready)[2]
            host.advertised = None
            self._pending -= 1
            if host.ready:
                self._advertise(host)
            elif host.idle():
                del self._hosts[key]
            lease = Lease(next(self._lease_ids), request, key)
            self._leases[lease.id] = (rank, order)
            return lease
        return self._next_wake()

    def _wake(self, now: float) -> None:
        """Apply every host timer due by `now`: gates that have passed, retries now due."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, key = heapq.heappop(timers)
            host = self._hosts.get(key)
            if host is None or host.timer != when:
                continue
            host.timer = None
            before = host.waits()
            if host.paused_until <= now:
                host.paused_until = _NONE
            if host.closed_until <= now:
                host.closed_until = _NONE
            while host.later and host.later[0][0] <= now:
                _, order, rank, request = heapq.heappop(host.later)
                heapq.heappush(host.ready, (rank, order, request))
            self._settle(host, before)

    def _next_wake(self) -> float:
        timers = self._timers
        while timers:
            when, key = timers[0]
            host = self._hosts.get(key)
            if host is not None and host.timer == when:
                return when
            heapq.heappop(timers)
        return math.inf

    # -- ending a lease ----------------------------------------------------------------------

    async def commit(self, lease: Lease, new: Sequence[Entry]) -> int:
        self._end(lease)
        return self._push(new)

    async def retry(self, lease: Lease, not_before: float) -> None:
        # Once due, a retry takes back its place in line: it is older than what came after it.
        _, order = self._end(lease)
        host = self._host(lease.key)
        before = host.waits()
        item = (not_before, order, -lease.request.priority, lease.request)
        heapq.heappush(host.later, item)
        self._pending += 1
        self._settle(host, before)

    async def release(self, lease: Lease) -> None:
        rank, order = self._end(lease)
        self._enqueue(self._host(lease.key), lease.request, rank, order)

    def _end(self, lease: Lease) -> tuple[int, int]:
        place = self._leases.pop(lease.id, None)
        if place is None:
            raise LookupError(f"lease {lease.id} ({lease.request.url}) was already ended")
        return place

    # -- host gates --------------------------------------------------------------------------

    async def pause(self, key: str, until: float) -> None:
        host = self._host(key)
        if until > host.paused_until:
            before = host.waits()
            host.paused_until = until
            self._settle(host, before)

    async def close_gate(self, key: str, until: float) -> None:
        host = self._host(key)
        before = host.waits()
        host.closed_until = until
        self._settle(host, before)

    async def open_gate(self, key: str) -> None:
        host = self._hosts.get(key)
        if host is not None and host.closed_until == math.inf:
            before = host.waits()
            host.closed_until = _NONE
            self._settle(host, before)

    def _settle(self, host: _Host, before: int) -> None:
        """After a host's gate or `later` changed: recount, advertise or hide it, set its timer.

        `before` is `host.waits()` from before the change.
        """
        gate = host.gate
        host.shut = _NONE < gate < math.inf
        self._waiting += host.waits() - before
        wake: float | None
        if gate == _NONE:
            if host.ready and host.advertised != host.ready[0][:2]:
                self._advertise(host)
            wake = host.later[0][0] if host.later else None
        else:
            host.advertised = None
            wake = gate if gate < math.inf else None
        if wake != host.timer:
            host.timer = wake
            if wake is not None:
                heapq.heappush(self._timers, (wake, host.key))
                if len(self._timers) > 2 * len(self._hosts) + _SLACK:
                    self._timers = [
                        (h.timer, k) for k, h in self._hosts.items() if h.timer is not None
                    ]
                    heapq.heapify(self._timers)
        if host.idle():
            del self._hosts[host.key]

    def _advertise(self, host: _Host) -> None:
        rank, order, _ = host.ready[0]
        host.advertised = (rank, order)
        heapq.heappush(self._open, (rank, order, host.key))
        if len(self._open) > 2 * len(self._hosts) + _SLACK:
            self._open = [
                (*h.advertised, k) for k, h in self._hosts.items() if h.advertised is not None
            ]
            heapq.heapify(self._open)

    # -- reporting ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._pending

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def leased(self) -> int:
        return len(self._leases)

    def statistics(self) -> FrontierStatistics:
        return FrontierStatistics(
            backend="memory",
            pending=self._pending,
            leased=len(self._leases),
            waiting=self._waiting,
            hosts=len(self._hosts),
            paused_hosts=sum(h.paused_until != _NONE for h in self._hosts.values()),
            seen=len(self._seen),
            pushed=self._pushed,
        )
