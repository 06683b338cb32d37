"""In-process frontier: a priority heap and a set of fingerprints. Lost when the process ends."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence

from scrapekit.request import Request
from scrapekit.scheduler.frontier.base import Frontier, FrontierStatistics


class MemoryFrontier(Frontier):
    """The default frontier: fast, and gone at exit (a durable one persists to SQLite)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Request]] = []
        self._order = itertools.count()
        self._seen: set[bytes] = set()
        self._pushed = 0

    async def add(self, request: Request, fingerprint: bytes | None) -> bool:
        return self._add(request, fingerprint)

    def _add(self, request: Request, fingerprint: bytes | None) -> bool:
        if fingerprint is not None:
            if fingerprint in self._seen:
                return False
            self._seen.add(fingerprint)
        self._push(request)
        return True

    def _push(self, request: Request) -> None:
        heapq.heappush(self._heap, (-request.priority, next(self._order), request))
        self._pushed += 1

    async def pop(self) -> Request | None:
        return heapq.heappop(self._heap)[2] if self._heap else None

    async def complete(
        self, request: Request, new_requests: Sequence[tuple[Request, bytes | None]]
    ) -> int:
        return sum(self._add(new, key) for new, key in new_requests)

    async def release(self, request: Request) -> None:
        self._push(request)

    def __len__(self) -> int:
        return len(self._heap)

    def statistics(self) -> FrontierStatistics:
        return FrontierStatistics(
            backend="memory", pending=len(self._heap), seen=len(self._seen), pushed=self._pushed
        )
