"""The Frontier interface: where pending requests and seen fingerprints live.

The scheduler calls it; backends implement it (in memory now; SQLite and Redis beside it).
Every method is async so a backend may do I/O; the in-memory one never suspends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from scrapekit._resource import AsyncResource
from scrapekit.request import Request


@dataclass(frozen=True, slots=True)
class FrontierStatistics:
    """What a frontier reports at the end of a crawl."""

    backend: str
    pending: int
    seen: int
    pushed: int


class Frontier(AsyncResource, ABC):
    """Pending requests ordered by priority, plus the set of fingerprints already seen."""

    @abstractmethod
    async def add(self, request: Request, fingerprint: bytes | None) -> bool:
        """Queue a request unless its fingerprint was seen before, and record the fingerprint.

        Return True if and only if the request was queued. A None fingerprint (dont_filter)
        always queues and records nothing. Recording and queueing are one step, so a crash
        can never leave a URL marked seen but not queued.
        """

    @abstractmethod
    async def pop(self) -> Request | None:
        """Take the highest-priority request (FIFO among equal priorities).

        Return None if and only if no request is pending right now. The request is then in
        flight until `complete()` or `release()`.
        """

    @abstractmethod
    async def complete(
        self, request: Request, new_requests: Sequence[tuple[Request, bytes | None]]
    ) -> int:
        """A popped request is done (fetched, or failed for good); queue what it produced.

        Each new request is queued as by `add(new, fingerprint)`. Return how many were queued
        (the rest were duplicates). A durable backend commits the acknowledgement and the new
        requests together, so a page's outcome is never half saved.
        """

    @abstractmethod
    async def release(self, request: Request) -> None:
        """Hand back a popped request that did not finish (the crawl was stopped at once).

        It will be popped again (by a persisted backend: in the next run).
        """

    @abstractmethod
    def __len__(self) -> int:
        """The number of pending (not popped) requests."""

    @abstractmethod
    def statistics(self) -> FrontierStatistics:
        """A snapshot of the frontier's counters."""

    async def aclose(self) -> None:
        """Release the backend's resources. Pending requests are kept if the backend persists."""
