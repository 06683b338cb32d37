"""The Frontier interface: where pending requests and seen fingerprints live.

The scheduler calls it; backends implement it (in memory now; SQLite and Redis beside it).
Every method is async so a backend may do I/O; the in-memory one never suspends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType

from scrapekit.request import Request


@dataclass(frozen=True, slots=True)
class FrontierStatistics:
    """What a frontier reports at the end of a crawl."""

    backend: str
    pending: int
    seen: int
    pushed: int


class Frontier(ABC):
    """Pending requests ordered by priority, plus the set of fingerprints already seen."""

    async def __aenter__(self) -> Frontier:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abstractmethod
    async def add_seen(self, fingerprint: bytes) -> bool:
        """Record a fingerprint; return True if and only if it had not been seen before."""

    @abstractmethod
    async def push(self, request: Request) -> None:
        """Store a request to be fetched later. The caller has already filtered it."""

    @abstractmethod
    async def pop(self) -> Request | None:
        """Take the highest-priority request (FIFO among equal priorities).

        Return None if and only if no request is pending right now; the request counts as
        in flight until `ack()`.
        """

    @abstractmethod
    async def ack(self, request: Request) -> None:
        """Mark a popped request as done: fetched, or failed for good, and its outputs routed."""

    @abstractmethod
    def __len__(self) -> int:
        """The number of pending (not popped) requests."""

    @abstractmethod
    def statistics(self) -> FrontierStatistics:
        """A snapshot of the frontier's counters."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook: nothing to release in memory
        """Release the backend's resources. Pending requests are kept if the backend persists."""
