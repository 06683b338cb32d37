"""Admission filters: which requests the scheduler keeps, and why it drops the others.

Reads URL_LENGTH_LIMIT, DEPTH_LIMIT and the spider's `allowed_domains`. The duplicate filter
lives with the frontier (its seen-set must move with it to SQLite or Redis); these filters need
no state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import urlsplit

from scrapekit.request import Request


class OffsiteFilter:
    """Keeps requests whose host is an allowed domain or one of its subdomains.

    An entry with a port ("127.0.0.1:8000") also matches that port only; an empty list
    allows every host. `dont_filter=True` or `meta["allow_offsite"]` lets a request through.
    """

    def __init__(self, allowed_domains: Iterable[str]) -> None:
        hosts: list[str] = []
        self._netlocs: set[str] = set()
        for entry in allowed_domains:
            entry = entry.strip().lower()
            if "://" in entry:  # a URL where a domain was meant: keep its host
                entry = urlsplit(entry).netloc
            if not entry:
                continue
            if ":" in entry and not entry.startswith("["):
                self._netlocs.add(entry)
            else:
                hosts.append(re.escape(entry.strip("[]")))
        self._host_re = re.compile(rf"^(.*\.)?({'|'.join(hosts)})$") if hosts else None
        self.enabled = bool(hosts or self._netlocs)

    def allows(self, request: Request) -> bool:
        """Whether the request may be fetched under allowed_domains."""
        if not self.enabled or request.dont_filter or request.meta.get("allow_offsite"):
            return True
        parts = urlsplit(request.url)
        host = (parts.hostname or "").rstrip(".")
        if self._host_re is not None and self._host_re.match(host):
            return True
        return bool(self._netlocs) and parts.netloc.lower() in self._netlocs


class DepthFilter:
    """Drops requests deeper than DEPTH_LIMIT links from a start request (0 = no limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def allows(self, request: Request) -> bool:
        """Whether the request is within the depth limit."""
        return self.limit <= 0 or request.depth <= self.limit


class UrlLengthFilter:
    """Drops requests whose URL is longer than URL_LENGTH_LIMIT characters (0 = no limit).

    The scheduler asks it first, so an oversized URL never reaches the other filters or the
    fingerprint (and their caches); redirect hops are asked too. `dont_filter` does not bypass
    it: the limit is a memory bound, not a crawl policy. The crawl's filter is also `active()`
    for its tasks, so `Response.follow()` can skip an oversized link before urllib and Request
    parse (and cache) it.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def allows(self, request: Request) -> bool:
        """Whether the request's URL is within the length limit."""
        return self.allows_url(request.url)

    def allows_url(self, url: str) -> bool:
        """Whether `url` is within the length limit."""
        return self.limit <= 0 or len(url) <= self.limit

    @contextmanager
    def active(self) -> Iterator[UrlLengthFilter]:
        """Make this the filter `current()` returns, in this context and the tasks it starts."""
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    @staticmethod
    def current() -> UrlLengthFilter | None:
        """The running crawl's filter; None outside a crawl."""
        return _active.get()


_active: ContextVar[UrlLengthFilter | None] = ContextVar("scrapekit_url_length", default=None)
