"""The HTTP cache's backend interface: stored responses by request fingerprint.

Part of the development loop (HTTPCACHE_ENABLED): a backend only keeps entries; what is
stored, when an entry is too old and which requests may use the cache is `policy.py`'s job,
so a Redis or other backend is a sibling module implementing `HttpCache` alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from scrapekit._resource import AsyncResource


@dataclass(frozen=True, slots=True)
class CachedEntry:
    """One stored response, with the request it answered: plain data, no pickle."""

    fingerprint: bytes
    """The request's fingerprint (scheduler/fingerprint.py): the entry's key."""
    method: str
    request_url: str
    url: str
    """The response's URL (the last redirect target, if it was redirected)."""
    status: int
    headers: Sequence[tuple[str, str]]
    """Every header in order, repeats kept, Set-Cookie left out (see policy.py)."""
    body: bytes
    http_version: str
    redirect_urls: Sequence[str]
    stored_at: float
    """Wall-clock time (time.time()) the response was stored."""


class HttpCache(AsyncResource, ABC):
    """Where responses are kept between runs. scrapekit calls it; backends implement it.

    Entering the backend (`__aenter__`) opens and checks its storage, so a corrupt cache
    stops the crawl before anything is fetched. One crawl uses a backend at a time.
    """

    backend: ClassVar[str]

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the entries are kept, for log lines: a file path, or a server."""

    @abstractmethod
    async def get(self, fingerprint: bytes) -> CachedEntry | None:
        """Return the entry stored under `fingerprint`, however old, or None if there is none.

        Raises:
            HttpCacheError: the backend could not be read (the caller treats it as a miss).
        """

    @abstractmethod
    async def put(self, entry: CachedEntry) -> None:
        """Store `entry`, replacing any entry under the same fingerprint; durable on return.

        Raises:
            HttpCacheError: the backend could not be written; nothing was stored.
        """
