"""ResponseCache: which of the crawl's responses are stored and replayed, and how they count.

The development loop (HTTPCACHE_ENABLED): rework a callback and run the crawl again without
hitting the site. It sits in front of the session for the crawl's pages only:

- the scheduler asks `lookup()` as it hands a request out; a fresh stored response is held
  for the request, which then skips its host's politeness slot (a replay never waits for
  the rate limiter, the delay or the per-host concurrency, and is no AutoThrottle signal);
- the worker `take()`s it instead of fetching, or fetches and `store()`s what came;
- robots.txt goes through `through()`, so a replayed crawl needs no network at all.

What never comes from the cache: the login lifecycle's requests (login(), LOGIN_CHECK_URL at
start and after each login) and the spider's own `session.get(...)` calls. They go straight
to the session, which has no cache, so a login is always real and always judged on a live
page. The other side of that rule: a replayed page is not judged by `is_logged_in` (a page
stored logged in says nothing about the session now, and a re-login could not refresh it),
and pages judged logged out are never stored in the first place (the worker stores only what
passed the login check).

What is stored: any response but 5xx, 408, 429, the statuses the retry policy retries
(RETRY_HTTP_CODES, so a replay never starts a retry loop) and HTTPCACHE_IGNORE_HTTP_CODES;
a request with `meta["dont_cache"]` neither reads nor writes the cache. Set-Cookie headers
are not stored: a replayed response never changes the cookie jar, and cookie values stay in
the jar's file alone. An entry older than HTTPCACHE_EXPIRATION_SECS (0 = never) is fetched
again and replaced. Reads HTTPCACHE_ENABLED, HTTPCACHE_EXPIRATION_SECS,
HTTPCACHE_IGNORE_HTTP_CODES, RETRY_ENABLED and RETRY_HTTP_CODES.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx2
import structlog

from scrapekit import state
from scrapekit._resource import AsyncResource
from scrapekit.exceptions import HttpCacheError
from scrapekit.httpcache.base import CachedEntry, HttpCache
from scrapekit.httpcache.sqlite import SqliteHttpCache
from scrapekit.response import Response
from scrapekit.scheduler.fingerprint import fingerprint

if TYPE_CHECKING:
    from scrapekit.request import Request
    from scrapekit.settings import Settings

log = structlog.get_logger(__name__)

#: Statuses never stored, whatever the settings: the server's trouble, not the page.
NEVER_STORED = frozenset({408, 429})
#: Request meta key that keeps one request out of the cache (Scrapy's name).
DONT_CACHE = "dont_cache"

Fetch = Callable[["Request"], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class HttpCacheStatistics:
    """How the cache served the crawl."""

    backend: str
    location: str
    hits: int
    """Responses replayed from the cache (no request sent)."""
    misses: int
    """Requests that could have been replayed but were fetched (not stored, or too old)."""
    stores: int
    """Responses stored (new, or replacing an expired entry)."""
    errors: int
    """Reads or writes the backend failed (each taken as a miss, or not stored)."""


class ResponseCache(AsyncResource):
    """The crawl's HTTP cache policy in front of one `HttpCache` backend."""

    def __init__(
        self,
        backend: HttpCache,
        *,
        expiration: float = 0.0,
        ignore_codes: Collection[int] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self._expiration = expiration
        self._ignored = frozenset(ignore_codes) | NEVER_STORED
        self._clock = clock
        # Responses `lookup` found for requests on their way to a worker, by request object.
        self._held: dict[int, Response] = {}
        self._hits = self._misses = self._stores = self._errors = 0

    @classmethod
    def from_settings(cls, settings: Settings, spider_name: str) -> ResponseCache | None:
        """The spider's SQLite cache, or None when HTTPCACHE_ENABLED is off."""
        if not settings["HTTPCACHE_ENABLED"]:
            return None
        ignored = set(settings["HTTPCACHE_IGNORE_HTTP_CODES"])
        if settings["RETRY_ENABLED"]:
            ignored |= set(settings["RETRY_HTTP_CODES"])
        return cls(
            SqliteHttpCache(state.httpcache_path(settings, spider_name)),
            expiration=float(settings["HTTPCACHE_EXPIRATION_SECS"]),
            ignore_codes=ignored,
        )

    async def __aenter__(self) -> ResponseCache:
        await self.backend.__aenter__()  # a corrupt cache stops the crawl here, before a fetch
        return self

    async def aclose(self) -> None:
        self._held.clear()
        await self.backend.aclose()

    # -- policy ------------------------------------------------------------------------------

    def storable(self, status: int) -> bool:
        """Whether a response with `status` is stored (and a stored one replayed)."""
        return status < 500 and status not in self._ignored

    @staticmethod
    def eligible(request: Request) -> bool:
        """Whether the request may use the cache at all (`meta["dont_cache"]` says no)."""
        return not request.meta.get(DONT_CACHE)

    # -- the crawl's path --------------------------------------------------------------------

    async def lookup(self, request: Request) -> bool:
        """Find a fresh stored response for `request` and hold it for `take`; return whether.

        The scheduler calls it for each request it is about to hand out: True means the
        request needs no politeness slot.
        """
        if not self.eligible(request):
            return False
        try:
            entry = await self.backend.get(fingerprint(request))
        except HttpCacheError as exc:
            self._failed("read", exc)
            return False
        if entry is None or not self.storable(entry.status) or self._expired(entry):
            return False
        self._held[id(request)] = _response(entry, request)
        return True

    def take(self, request: Request) -> Response | None:
        """The response `lookup` held for `request` (a hit), or None: fetch it (a miss)."""
        response = self._held.pop(id(request), None)
        if response is not None:
            self._hits += 1
        elif self.eligible(request):
            self._misses += 1
        return response

    def forget(self, request: Request) -> None:
        """Drop what `lookup` held for a request that will not be fetched (robots.txt said no)."""
        self._held.pop(id(request), None)

    async def store(self, request: Request, response: Response) -> None:
        """Store a response fetched from the network, if the policy keeps it.

        A backend that cannot write is logged and counted, never fatal: the crawl goes on.
        """
        if response.cached or not self.eligible(request) or not self.storable(response.status):
            return
        entry = CachedEntry(
            fingerprint=fingerprint(request),
            method=request.method,
            request_url=request.url,
            url=response.url,
            status=response.status,
            headers=[
                (name, value)
                for name, value in response.headers.multi_items()
                if name.lower() != "set-cookie"
            ],
            body=response.body,
            http_version=response.http_version,
            redirect_urls=list(response.redirect_urls),
            stored_at=self._clock(),
        )
        try:
            await self.backend.put(entry)
        except HttpCacheError as exc:
            self._failed("write", exc)
            return
        self._stores += 1

    def through(self, fetch: Fetch) -> Fetch:
        """`fetch` behind the cache: for requests outside the frontier (robots.txt)."""

        async def cached_fetch(request: Request) -> Response:
            await self.lookup(request)
            if (response := self.take(request)) is not None:
                return response
            response = await fetch(request)
            await self.store(request, response)
            return response

        return cached_fetch

    def statistics(self) -> HttpCacheStatistics:
        """A snapshot of the counters."""
        return HttpCacheStatistics(
            backend=self.backend.backend,
            location=self.backend.location,
            hits=self._hits,
            misses=self._misses,
            stores=self._stores,
            errors=self._errors,
        )

    # -- helpers -----------------------------------------------------------------------------

    def _expired(self, entry: CachedEntry) -> bool:
        return bool(self._expiration) and self._clock() - entry.stored_at >= self._expiration

    def _failed(self, action: str, error: HttpCacheError) -> None:
        self._errors += 1
        log.warning(f"HTTP cache {action} failed", error=str(error))


def _response(entry: CachedEntry, request: Request) -> Response:
    """The stored response as the callback receives it, flagged `cached`."""
    return Response(
        entry.url,
        status=entry.status,
        headers=httpx2.Headers(list(entry.headers)),
        body=entry.body,
        request=request,
        http_version=entry.http_version,
        redirect_urls=tuple(entry.redirect_urls),
        cached=True,
    )
