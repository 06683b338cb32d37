"""Hostile header values from a real loopback server: clamped, never raised out of a worker.

The issue: a `Retry-After` of 400 digits raised OverflowError out of the worker; the page was
lost, and its errback never ran.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import pytest

from scrapekit import FetchError, Request, Response, Spider, crawl_async
from scrapekit.politeness.robots import MAX_CRAWL_DELAY, RobotsCache, origin_of
from scrapekit.session import Session
from scrapekit.settings import Settings
from tests.hostile.servers import RawServer


class Busy(Spider):
    """Fetches one URL; records what its errback receives."""

    name = "busy"
    failures: ClassVar[list[FetchError]] = []

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = url

    async def start(self) -> AsyncIterator[Request]:
        yield Request(self.url, errback=self.failed)

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"url": response.url}

    def failed(self, failure: FetchError) -> Iterator[dict[str, Any]]:
        Busy.failures.append(failure)
        yield {"failed": failure.request.url if failure.request else None}


@pytest.mark.parametrize(
    "retry_after",
    [
        pytest.param("9" * 400, id="400-digits"),  # float(int()) overflows
        pytest.param("9" * 5000, id="5000-digits"),  # int() refuses past 4,300 digits
        pytest.param("Fri, 31 Dec 9999 23:59:59 GMT", id="year-9999"),
    ],
)
async def test_huge_retry_after_is_clamped_and_the_errback_gets_the_failure(
    retry_after: str,
) -> None:
    """503 + a huge Retry-After: retried after RETRY_AFTER_MAX (tiny here), never sooner nor
    later, then the errback receives the final 503; no worker error."""
    Busy.failures.clear()
    head = ["HTTP/1.1 503 Service Unavailable", f"Retry-After: {retry_after}"]
    async with RawServer(default=head, body=b"busy") as server:
        started = time.monotonic()
        stats = await crawl_async(
            Busy,
            {
                "LOG_LEVEL": "CRITICAL",
                "RETRY_TIMES": 2,
                "RETRY_AFTER_MAX": 0.2,
                "RETRY_BACKOFF_BASE": 0.0,
                "ROBOTSTXT_OBEY": False,
            },
            url=server.url(),
        )
        elapsed = time.monotonic() - started
    assert stats["errors"] == {"http 503": 1}  # no "internal" (worker error)
    assert [failure.response.status for failure in Busy.failures if failure.response] == [503]
    assert len(server.arrivals) == 3
    gaps = [b - a for a, b in zip(server.arrivals, server.arrivals[1:], strict=False)]
    assert all(0.18 <= gap < 1.0 for gap in gaps), gaps
    assert elapsed < 5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2.5", 2.5, id="ordinary"),
        pytest.param("1e300", MAX_CRAWL_DELAY, id="huge-finite"),
        pytest.param("9" * 400, None, id="400-digits"),
        pytest.param("-5", None, id="negative"),
        pytest.param("nan", None, id="nan"),
        pytest.param("inf", None, id="inf"),
    ],
)
async def test_hostile_crawl_delay_is_clamped_or_ignored(
    value: str, expected: float | None
) -> None:
    """A robots.txt Crawl-delay that would park a host for ever is cut to MAX_CRAWL_DELAY;
    one that is not a number >= 0 is ignored; the rules still apply either way."""
    body = f"User-agent: *\nCrawl-delay: {value}\nDisallow: /x\n".encode()
    head = ["HTTP/1.1 200 OK", "Content-Type: text/plain"]
    reported: list[float] = []

    async def on_delay(origin: str, seconds: float) -> None:
        reported.append(seconds)

    settings = Settings.load(project_file=None, spider_cls=None, env={}, overrides={})
    server = RawServer(default=head, body=body)
    async with server, Session.from_settings(settings) as session:
        cache = RobotsCache(session.fetch, user_agent="scrapekit", on_crawl_delay=on_delay)
        assert await cache.allowed(Request(server.url("/a")))
        assert not await cache.allowed(Request(server.url("/x")))
        assert cache.crawl_delay(origin_of(server.url())) == expected
    assert reported == ([] if expected is None else [expected])
