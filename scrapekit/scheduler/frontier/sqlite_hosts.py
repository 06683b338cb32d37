"""SQLite frontier, the host index: what the frontier keeps in memory about each host.

One small `Host` per host with requests (its counts, its gate, the rank of its best ready row),
a heap of open hosts by their best row and a heap of host timers (gates that pass, retries
that come due). It never touches the file: the frontier (sqlite.py) reads the rows and tells
the index what changed, under its lock, so the two stay in step.
"""

from __future__ import annotations

import heapq
import math

NONE = -math.inf  # an unset gate time: before every `now`
_SLACK = 64  # stale heap entries tolerated beyond the live ones before a rebuild


class Host:
    """One host's counts and gate; its requests are rows in the file."""

    __slots__ = (
        "advertised",
        "closed_until",
        "due",
        "head",
        "key",
        "later",
        "leased",
        "paused_until",
        "pending",
        "shut",
        "timer",
    )

    def __init__(self, key: str) -> None:
        self.key = key
        self.pending = 0  # rows not leased, ready or later
        self.later = 0  # rows whose not-before time has not come
        self.due: float | None = None  # the earliest not-before among them (monotonic)
        self.head: tuple[int, int] | None = None  # (-priority, id) of the best ready row
        self.leased: set[int] = set()
        self.paused_until = NONE
        self.closed_until = NONE
        self.advertised: tuple[int, int] | None = None
        self.timer: float | None = None
        self.shut = False

    @property
    def gate(self) -> float:
        return max(self.paused_until, self.closed_until)

    def waits(self) -> int:
        return self.later + (self.pending - self.later if self.shut else 0)

    def idle(self) -> bool:
        return not self.pending and not self.leased and self.gate == NONE


class HostIndex:
    """The hosts with pending or leased requests, and which of them may hand one out next."""

    def __init__(self) -> None:
        self.hosts: dict[str, Host] = {}
        self.open: list[tuple[int, int, str]] = []  # (rank, row id, key) of advertised heads
        self.timers: list[tuple[float, str]] = []  # (when, key) of host timers
        self.pending = 0  # rows not leased, in every host
        self.waiting = 0  # of them, rows held back by a gate or a not-before time

    def put_ready(self, host: Host, place: tuple[int, int]) -> None:
        """A ready row joined the host: count it, and advertise it if it is the new best."""
        if host.shut:
            self.waiting += 1
        if host.head is None or place < host.head:
            host.head = place
            if host.gate == NONE:
                self.advertise(host)

    def host(self, key: str) -> Host:
        """The host's record, made on first use (`settle` drops it once idle)."""
        host = self.hosts.get(key)
        if host is None:
            host = self.hosts[key] = Host(key)
        return host

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

    def settle(self, host: Host, before: int) -> None:
        """After a host's gate or counts changed: recount, advertise or hide it, set its timer.

        `before` is `host.waits()` from before the change.
        """
        gate = host.gate
        host.shut = NONE < gate < math.inf
        self.waiting += host.waits() - before
        wake: float | None
        if gate == NONE:
            if host.head is not None and host.advertised != host.head:
                self.advertise(host)
            wake = host.due if host.later else None
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
        if host.idle():
            del self.hosts[host.key]

    def advertise(self, host: Host) -> None:
        assert host.head is not None
        host.advertised = host.head
        heapq.heappush(self.open, (*host.head, host.key))
        if len(self.open) > 2 * len(self.hosts) + _SLACK:
            self.open = [
                (*h.advertised, k) for k, h in self.hosts.items() if h.advertised is not None
            ]
            heapq.heapify(self.open)
