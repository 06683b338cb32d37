"""In-process frontier: per-host queues and leases in RAM. Lost when the process ends.

Each host keeps `ready` (requests whose not-before has come, best first) and `later` (retries,
by not-before time), both heaps. Its gate, the heap of open hosts and the timers are the host
index's (hosts.py), shared with the SQLite backend; this module owns the queues and leases.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Self

import structlog

from scrapekit.request import Request
from scrapekit.scheduler.frontier.base import Entry, Fetched, Lease, OutboxItem, PageItem
from scrapekit.scheduler.frontier.hosts import Host, HostIndex, IndexedFrontier, Place

if TYPE_CHECKING:
    from scrapekit.settings import Settings

log = structlog.get_logger(__name__)


class _Host(Host):
    """One host's queues: every request it has that is not leased."""

    __slots__ = ("later", "ready")

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.ready: list[tuple[int, int, Request]] = []  # (-priority, order, request)
        self.later: list[tuple[float, int, int, Request]] = []  # (not_before, order, -priority, …)

    @property
    def head(self) -> Place | None:
        return self.ready[0][:2] if self.ready else None

    def next_due(self) -> float | None:
        return self.later[0][0] if self.later else None

    def counts(self) -> tuple[int, int]:
        return len(self.ready), len(self.later)

    def holds(self) -> bool:
        return bool(self.ready or self.later)


class MemoryFrontier(IndexedFrontier):
    """The frontier for tests and one-off runs: fast, and gone at exit."""

    backend = "memory"

    def __init__(self) -> None:
        self._index = HostIndex(_Host)
        self._order = itertools.count()
        self._lease_ids = itertools.count(1)
        # lease id -> the request's place in its queue, so a release puts it back there
        self._leases: dict[int, Place] = {}
        self._seen: set[bytes] = set()
        self._pushed = 0
        self._seq = 0

    @classmethod
    def from_settings(cls, settings: Settings, spider_name: str) -> Self:
        """A fresh frontier; says so when RECRAWL_AFTER asks for a history it cannot keep."""
        if float(settings["RECRAWL_AFTER"]) > 0:
            log.warning(
                "recrawl after ignored",
                reason="the memory frontier keeps no fetch history across runs",
                fix='set FRONTIER = "sqlite"',
            )
        return cls()

    # -- queueing ----------------------------------------------------------------------------

    async def push(self, entries: Sequence[Entry], *, start: int | None = None) -> int:
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
            self._enqueue(entry.key, request, -request.priority, next(self._order))
            queued += 1
        self._pushed += queued
        return queued

    def _enqueue(self, key: str, request: Request, rank: int, order: int) -> None:
        host = self._index.host(key)
        heapq.heappush(host.ready, (rank, order, request))
        self._index.queued(host, (rank, order))

    # -- hand-out ----------------------------------------------------------------------------

    async def lease(self, now: float) -> Lease | float:
        index = self._index
        for due, before in index.fire(now):  # gates that passed, retries now due
            while due.later and due.later[0][0] <= now:
                _, order, rank, request = heapq.heappop(due.later)
                heapq.heappush(due.ready, (rank, order, request))
            index.settle(due, before)
        host = index.pop_open()
        if host is None:
            return index.next_wake()
        rank, order, request = heapq.heappop(host.ready)
        index.taken(host)
        lease = Lease(next(self._lease_ids), request, host.key)
        self._leases[lease.id] = (rank, order)
        return lease

    # -- ending a lease ----------------------------------------------------------------------

    async def commit(
        self,
        lease: Lease | None,
        new: Sequence[Entry],
        items: Sequence[PageItem] = (),
        *,
        fetched: Fetched | None = None,
        start: int | None = None,
    ) -> int:
        # Nothing outlives the process: no fetch history to keep (`fetched` is ignored).
        if lease is not None:
            self._end(lease)
        queued = self._push(new)
        if items:
            first = self._seq + 1
            self._seq += len(items)
            self._deliver([OutboxItem(first + i, p.id, p.item) for i, p in enumerate(items)])
        return queued

    @property
    def last_seq(self) -> int:
        return self._seq

    async def retry(self, lease: Lease, not_before: float) -> None:
        # Once due, a retry takes back its place in line: it is older than what came after it.
        _, order = self._end(lease)
        host = self._index.host(lease.key)
        before = host.waits()
        item = (not_before, order, -lease.request.priority, lease.request)
        heapq.heappush(host.later, item)
        self._index.pending += 1
        self._index.settle(host, before)

    async def release(self, lease: Lease) -> None:
        rank, order = self._end(lease)
        self._enqueue(lease.key, lease.request, rank, order)

    def _end(self, lease: Lease) -> Place:
        place = self._leases.pop(lease.id, None)
        if place is None:
            raise LookupError(f"lease {lease.id} ({lease.request.url}) was already ended")
        return place

    # -- host gates --------------------------------------------------------------------------

    async def pause(self, key: str, until: float) -> None:
        host = self._index.host(key)
        if until > host.paused_until:
            self._index.pause(host, until)

    async def close_gate(self, key: str, until: float) -> None:
        self._index.close_gate(key, until)

    async def open_gate(self, key: str) -> None:
        self._index.open_gate(key)

    def _seen_count(self) -> int:
        return len(self._seen)
