"""A slow or paused host never holds up another, and its backlog stays in the frontier.

Two real loopback hosts: 127.0.0.1 and 127.0.0.2 are different hosts to the rate limiter
(slots key by host name, not port), both on this machine.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request as WRequest
from werkzeug import Response as WResponse

from scrapekit import CloseSpider, Request, Response, Spider, crawl_async
from scrapekit.scheduler import Scheduler

QUIET = {"LOG_LEVEL": "CRITICAL", "COOKIES_PERSIST": False}


class Host:
    """A threaded loopback HTTP host that answers every path with `status` and `headers`,
    recording when each request arrived (time.monotonic())."""

    def __init__(self, address: str, status: int = 200, headers: dict[str, str] | None = None):
        self.status = status
        self.headers = headers or {}
        self.arrivals: list[float] = []
        self._lock = threading.Lock()
        self.server = HTTPServer(host=address, port=0, threaded=True)
        self.server.expect_request("").respond_with_handler(self._answer)

    def _answer(self, request: WRequest) -> WResponse:
        with self._lock:
            self.arrivals.append(time.monotonic())
        return WResponse("ok", status=self.status, headers=self.headers)

    def url(self, path: str) -> str:
        return self.server.url_for(path)

    def __enter__(self) -> Host:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.clear()
        if self.server.is_running():
            self.server.stop()


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host]]:
    """A host that answers 429 with Retry-After: 30, and a healthy one on another address."""
    with (
        Host("127.0.0.1", 429, {"Retry-After": "30"}) as paused,
        Host("127.0.0.2") as healthy,
    ):
        yield paused, healthy


class TwoHosts(Spider):
    """start(): `first` URLs of the slow host, then `second` of the healthy one; the crawl
    stops once every healthy page has been parsed."""

    name = "two_hosts"

    def __init__(
        self, slow: Host, healthy: Host, first: int, second: int, slow_meta: dict[str, Any]
    ) -> None:
        super().__init__()
        self.slow, self.healthy = slow, healthy
        self.first, self.second = first, second
        self.slow_meta = slow_meta
        self.healthy_done: list[float] = []

    async def start(self) -> AsyncIterator[Request]:
        for i in range(self.first):
            yield Request(self.slow.url(f"/s/{i}"), meta=dict(self.slow_meta))
        for i in range(self.second):
            yield Request(self.healthy.url(f"/h/{i}"))

    def parse(self, response: Response) -> Any:
        if "/h/" in response.url:
            self.healthy_done.append(time.monotonic())
            if len(self.healthy_done) == self.second:
                raise CloseSpider("healthy_done")
        yield {"url": response.url}


async def test_a_paused_host_queued_first_does_not_delay_a_healthy_host(
    hosts: tuple[Host, Host],
) -> None:
    """300 URLs of a host paused by 429 + Retry-After: 30 come first in start(); the 50 URLs
    of a second, healthy host are all fetched within seconds, long before the pause ends."""
    paused, healthy = hosts
    spider_args = {"first": 300, "second": 50, "slow_meta": {}}
    began = time.monotonic()
    stats = await crawl_async(
        TwoHosts,
        {**QUIET, "CONCURRENCY": 4, "CLOSESPIDER_TIMEOUT": 10},
        slow=paused,
        healthy=healthy,
        **spider_args,
    )
    assert stats["finish_reason"] == "healthy_done"
    assert len(healthy.arrivals) == 50
    assert max(healthy.arrivals) - began < 5  # the pause would end at 30 s
    assert len(paused.arrivals) <= 4  # the first in flight at the 429; then nothing
    assert stats["scheduler"]["frontier"]["paused_hosts"] == 1


async def test_start_keeps_being_read_while_one_host_is_throttled(
    hosts: tuple[Host, Host],
) -> None:
    """A host limited to 1 request/s with 100 URLs first in start() does not stop start()
    from being read: the healthy host's 20 pages that follow are fetched at once."""
    _, healthy = hosts
    with Host("127.0.0.1") as slow:
        began = time.monotonic()
        stats = await crawl_async(
            TwoHosts,
            {**QUIET, "CONCURRENCY": 4, "CLOSESPIDER_TIMEOUT": 10},
            slow=slow,
            healthy=healthy,
            first=100,
            second=20,
            slow_meta={"rate": 1.0},
        )
        slow_hits = len(slow.arrivals)
    assert stats["finish_reason"] == "healthy_done"
    assert len(healthy.arrivals) == 20
    assert max(healthy.arrivals) - began < 3
    assert slow_hits <= 4  # about one a second meanwhile


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc for RSS")
async def test_a_huge_backlog_on_one_throttled_host_keeps_memory_and_the_loop_steady(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """200,000 URLs for one host at 2 requests/s, fed through start(): start() is read ahead
    into the frontier only (the scheduler holds no more than its requests in flight), memory
    stops growing once the read-ahead is full, and the event loop never stalls 100 ms while
    crawling (a heartbeat every 10 ms records how late it runs)."""
    schedulers: list[Scheduler] = []
    # Small enough to fill well inside the 4 s on a slow, shared machine; 200,000 is far beyond.
    READAHEAD = 3_000

    class Watched(Scheduler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            schedulers.append(self)

    monkeypatch.setattr("scrapekit.engine.Scheduler", Watched)
    pulled = [0]
    reading: list[float] = []  # when start() was first read: the crawl is set up

    with Host("127.0.0.1") as host:
        base = host.url("/n")

        class Backlog(Spider):
            name = "backlog"

            async def start(self) -> AsyncIterator[Request]:
                reading.append(asyncio.get_running_loop().time())
                for i in range(200_000):
                    pulled[0] += 1
                    yield Request(f"{base}?i={i}")

            def parse(self, response: Response) -> None:
                return None

        loop = asyncio.get_running_loop()
        worst = [0.0]
        held = [0]  # the most requests the scheduler itself held at once
        rss: list[tuple[float, int]] = []
        period = 0.01

        def beat(expected: float) -> None:
            now = loop.time()
            if reading and expected > reading[0]:  # setting the crawl up is not under test
                worst[0] = max(worst[0], now - expected)
            if schedulers:
                held[0] = max(held[0], sum(map(len, schedulers[0]._slots._leases.values())))
            rss.append((now, _rss_bytes()))
            handle[0] = loop.call_later(period, beat, now + period)

        handle = [loop.call_later(period, beat, loop.time() + period)]
        began = loop.time()
        try:
            stats = await crawl_async(
                Backlog,
                {
                    **QUIET,
                    "RATE": 2,
                    "CONCURRENCY": 8,
                    "CLOSESPIDER_TIMEOUT": 4,
                    "START_READAHEAD": READAHEAD,
                },
            )
        finally:
            handle[0].cancel()
        fetched = len(host.arrivals)

    assert stats["finish_reason"] == "closespider_timeout"
    assert fetched <= 12  # 2/s for 4 s
    frontier = stats["scheduler"]["frontier"]
    assert frontier["pending"] >= READAHEAD - 12  # read ahead into the frontier...
    assert pulled[0] <= READAHEAD + 64  # ... and no further
    assert held[0] <= 8
    settled = [size for at, size in rss if at - began >= 2.0]
    assert settled, "the crawl ended before memory could be sampled"
    assert max(settled) - min(settled) < 16 << 20  # flat once the read-ahead is full
    assert worst[0] < 0.1, f"the event loop stalled {worst[0] * 1000:.0f} ms"
