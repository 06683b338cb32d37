"""The host index every frontier backend keeps in memory: gates, open hosts and timers.

Every operation is O(log n), whatever the backlog of a waiting host: heaps with lazy deletion.

- `Host` owns one host's gate (paused or closed until a time) and what the index holds for
  it (its advertised head, its timer). Where its queued requests live is the backend's: a
  subclass says only what the index asks of them, through `head`, `next_due`, `counts` and
  `holds` (memory.py keeps them in RAM, sqlite.py counts rows in the file).
- `HostIndex` owns the hosts with requests or a gate, the pending and waiting counts, `open`
  (one entry per open host with a ready request, ranked by that request's (rank, order), so
  a lease takes the best request across hosts without looking at any waiting host) and
  `timers` (one entry per host waiting for a known time: its gate, or, when open, the
  next not-before time among its requests).
- `IndexedFrontier` is the base of every backend built on the index: its counts and
  statistics read off the index, so the backends report alike.

An entry whose host has changed since (a new head, a new gate) is stale: it is skipped when it
surfaces, and a heap is rebuilt once its stale entries outnumber its live ones.
"""

from __future__ import annotations

import heapq
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sized
from typing import Any, ClassVar, Generic, TypeVar

from scrapekit.scheduler.frontier.base import Frontier, FrontierStatistics

NONE = -math.inf  # an unset gate time: before every `now`
_SLACK = 64  # stale heap entries tolerated beyond the live ones before a rebuild

#: (rank, order) of a queued request: (-priority, insertion order), best first.
Place = tuple[int, int]


class Host(ABC):
    """One host's gate and its entries in the index; a backend's subclass holds its requests."""

    __slots__ = ("advertised", "closed_until", "key", "paused_until", "shut", "timer")

    def __init__(self, key: str) -> None:
        self.key = key
        self.paused_until = NONE
        self.closed_until = NONE
        self.advertised: Place | None = None  # the head `open` holds for this host
        self.timer: float | None = None  # the live `timers` entry's time
        self.shut = False  # closed until a known time: its ready requests are waiting too

    @property
    @abstractmethod
    def head(self) -> Place | None:
        """The (rank, order) of the host's best ready request, None if it has none."""

    @abstractmethod
    def next_due(self) -> float | None:
        """When the earliest of its not-yet-due requests comes due, None if it has none."""

    @abstractmethod
    def counts(self) -> tuple[int, int]:
        """How many of its requests are queued (not leased): (ready, not yet due)."""

    @abstractmethod
    def holds(self) -> bool:
        """Whether it still has a request, queued or leased."""

    @property
    def gate(self) -> float:
        """When the host opens: NONE if open now, math.inf if only `open_gate` opens it."""
        return max(self.paused_until, self.closed_until)

    def waits(self) -> int:
        """Its share of the index's `waiting`."""
        ready, later = self.counts()
        return later + (ready if self.shut else 0)

    def idle(self) -> bool:
        """Whether forgetting the host loses nothing (no request and no gate)."""
        return self.gate == NONE and not self.holds()


H = TypeVar("H", bound=Host)


class HostIndex(Generic[H]):
    """The hosts with requests or a gate, and which of them may hand one out next.

    The backend changes a host's requests, then tells the index (`queued`, `taken`,
    `settle`), so the two stay in step.
    """

    def __init__(self, make: Callable[[str], H]) -> None:
        self._make = make
        self.hosts: dict[str, H] = {}
        self.open: list[tuple[int, int, str]] = []  # (rank, order, key) of advertised heads
        self.timers: list[tuple[float, str]] = []  # (when, key) of host timers
        self.pending = 0  # requests not leased, in every host
        self.waiting = 0  # of them, those held back by a gate or a not-before time

    def host(self, key: str) -> H:
        """The host's record, made on first use (dropped again once idle)."""
        host = self.hosts.get(key)
        if host is None:
            host = self.hosts[key] = self._make(key)
        return host

    def forget_if_idle(self, host: H) -> None:
        if host.idle():
            del self.hosts[host.key]

    # -- requests ----------------------------------------------------------------------------

    def queued(self, host: H, place: Place) -> None:
        """A ready request joined the host at `place` (the backend holds it already): count
        it, and advertise it if it is the host's new best."""
        self.pending += 1
        if host.shut:
            self.waiting += 1
        elif host.gate == NONE and host.head == place:
            self.advertise(host)

    def pop_open(self) -> H | None:
        """The open host with the best head, taken off `open` (stale entries dropped on the
        way); None if no host is open. `taken` or `advertise` must follow."""
        heap = self.open
        while heap:
            rank, order, key = heapq.heappop(heap)
            host = self.hosts.get(key)
            if host is not None and host.advertised == (rank, order):
                host.advertised = None
                return host
            # stale: the host's head or gate changed since
        return None

    def taken(self, host: H) -> None:
        """The backend leased the host's best request: advertise its next, or forget it."""
        self.pending -= 1
        if host.head is not None:
            self.advertise(host)
        else:
            self.forget_if_idle(host)

    def advertise(self, host: H) -> None:
        head = host.head
        assert head is not None
        host.advertised = head
        heapq.heappush(self.open, (*head, host.key))
        if len(self.open) > 2 * len(self.hosts) + _SLACK:
            self.open = [
                (*h.advertised, k) for k, h in self.hosts.items() if h.advertised is not None
            ]
            heapq.heapify(self.open)

    # -- gates and timers --------------------------------------------------------------------

    def pause(self, host: H, until: float) -> None:
        """Pause the host until `until` (the caller checked it is later than its pause)."""
        before = host.waits()
        host.paused_until = until
        self.settle(host, before)

    def close_gate(self, key: str, until: float) -> None:
        host = self.host(key)
        before = host.waits()
        host.closed_until = until
        self.settle(host, before)

    def open_gate(self, key: str) -> None:
        host = self.hosts.get(key)
        if host is not None and host.closed_until == math.inf:
            before = host.waits()
            host.closed_until = NONE
            self.settle(host, before)

    def fire(self, now: float) -> Iterator[tuple[H, int]]:
        """Each host whose timer is due by `now`, with the gates that passed opened, and its
        `waits()` from before; the caller makes its due requests ready, then `settle`s it."""
        while self.timers and self.timers[0][0] <= now:
            when, key = heapq.heappop(self.timers)
            host = self.hosts.get(key)
            if host is None or host.timer != when:
                continue
            host.timer = None
            before = host.waits()
            if host.paused_until <= now:
                host.paused_until = NONE
            if host.closed_until <= now:
                host.closed_until = NONE
            yield host, before

    def next_wake(self) -> float:
        """When the next live timer fires, math.inf if none; stale entries are dropped."""
        timers = self.timers
        while timers:
            when, key = timers[0]
            host = self.hosts.get(key)
            if host is not None and host.timer == when:
                return when
            heapq.heappop(timers)
        return math.inf

    def settle(self, host: H, before: int) -> None:
        """After a host's gate or requests changed: recount, advertise or hide it, set its timer.

        `before` is `host.waits()` from before the change.
        """
        gate = host.gate
        host.shut = NONE < gate < math.inf
        self.waiting += host.waits() - before
        wake: float | None
        if gate == NONE:
            head = host.head
            if head is not None and host.advertised != head:
                self.advertise(host)
            wake = host.next_due()
        else:
            host.advertised = None
            wake = gate if gate < math.inf else None
        if wake != host.timer:
            host.timer = wake
            if wake is not None:
                heapq.heappush(self.timers, (wake, host.key))
                if len(self.timers) > 2 * len(self.hosts) + _SLACK:
                    self.timers = [
                        (h.timer, k) for k, h in self.hosts.items() if h.timer is not None
                    ]
                    heapq.heapify(self.timers)
        self.forget_if_idle(host)

    # -- reporting ---------------------------------------------------------------------------

    def paused_hosts(self) -> int:
        return sum(h.paused_until != NONE for h in self.hosts.values())


class IndexedFrontier(Frontier):
    """A backend whose hosts live in a `HostIndex`: its counts and statistics read off the
    index, whatever holds the requests themselves (RAM, a file)."""

    #: The backend's name in FRONTIER and in the statistics.
    backend: ClassVar[str]
    _index: HostIndex[Any]
    _leases: Sized
    _pushed: int
    _not_due = 0  # requests RECRAWL_AFTER kept out (a durable backend counts them)

    @abstractmethod
    def _seen_count(self) -> int:
        """Fingerprints seen so far."""

    def __len__(self) -> int:
        return self._index.pending

    @property
    def waiting(self) -> int:
        return self._index.waiting

    @property
    def leased(self) -> int:
        return len(self._leases)

    @property
    def not_due(self) -> int:
        return self._not_due

    def statistics(self) -> FrontierStatistics:
        return FrontierStatistics(
            backend=self.backend,
            pending=self._index.pending,
            leased=len(self._leases),
            waiting=self._index.waiting,
            hosts=len(self._index.hosts),
            paused_hosts=self._index.paused_hosts(),
            seen=self._seen_count(),
            pushed=self._pushed,
            not_due=self._not_due,
        )
