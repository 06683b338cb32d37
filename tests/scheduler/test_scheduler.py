"""Scheduler: admission filters, priority order, and knowing when the crawl is over."""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from scrapekit import Request
from scrapekit.scheduler import (
    DepthFilter,
    MemoryFrontier,
    OffsiteFilter,
    Scheduler,
    UrlLengthFilter,
)
from scrapekit.scheduler.frontier.sqlite import SqliteFrontier


def make(allowed: list[str] | None = None, depth: int = 0) -> Scheduler:
    """A scheduler over an in-memory frontier."""
    return Scheduler(
        MemoryFrontier(), offsite=OffsiteFilter(allowed or []), depth=DepthFilter(depth)
    )


async def test_duplicates_are_dropped_unless_dont_filter() -> None:
    """The second request for a canonical URL is counted as a duplicate; dont_filter passes."""
    scheduler = make()
    assert await scheduler.enqueue(Request("http://shop.test/a?x=1&y=2"))
    assert not await scheduler.enqueue(Request("http://SHOP.test/a?y=2&x=1#frag"))
    assert await scheduler.enqueue(Request("http://shop.test/a?x=1&y=2", dont_filter=True))
    assert scheduler.statistics().dropped == {"duplicate": 1}
    assert scheduler.pending == 2


async def test_offsite_requests_are_dropped() -> None:
    """Only allowed domains and their subdomains pass; ports in entries are honoured."""
    scheduler = make(["shop.test", "127.0.0.1:8000"])
    urls = {
        "http://shop.test/": True,
        "http://www.shop.test/": True,
        "http://evilshop.test/": False,
        "http://shop.test.evil.test/": False,
        "http://127.0.0.1:8000/": True,
        "http://127.0.0.1:9000/": False,
    }
    for url, expected in urls.items():
        assert await scheduler.enqueue(Request(url)) is expected, url
    assert await scheduler.enqueue(Request("http://other.test/", meta={"allow_offsite": True}))
    assert scheduler.statistics().dropped == {"offsite": 3}


async def test_depth_limit_drops_deeper_requests() -> None:
    """Requests deeper than DEPTH_LIMIT are counted as depth drops."""
    scheduler = make(depth=2)
    assert await scheduler.enqueue(Request("http://shop.test/2", depth=2))
    assert not await scheduler.enqueue(Request("http://shop.test/3", depth=3))
    assert scheduler.statistics().dropped == {"depth": 1}


async def test_overlong_urls_are_dropped_before_any_other_filter() -> None:
    """URL_LENGTH_LIMIT drops first (an off-site long URL counts as "url too long" only): a
    start URL with a WARNING naming it, a page's link quietly (DEBUG), dont_filter or not."""
    scheduler = Scheduler(
        MemoryFrontier(), offsite=OffsiteFilter(["shop.test"]), url_length=UrlLengthFilter(50)
    )
    start = "http://shop.test/" + "s" * 40
    with capture_logs() as logs:
        assert not await scheduler.enqueue(Request(start))
        assert await scheduler.enqueue(Request("http://shop.test/" + "a" * 33))  # exactly 50
        page = await scheduler.next_request()
        assert page is not None
        await scheduler.done(
            page,
            [
                Request("http://far.test/" + "l" * 40, depth=1),
                Request("http://shop.test/" + "d" * 40, depth=1, dont_filter=True),
            ],
        )
    assert scheduler.statistics().dropped == {"url too long": 3}
    assert [(log["log_level"], log["reason"]) for log in logs] == [
        ("warning", "url too long"),
        ("debug", "url too long"),
        ("debug", "url too long"),
    ]
    assert logs[0]["url"] == start
    assert "URL_LENGTH_LIMIT" in logs[0]["hint"]


async def test_higher_priority_first_then_fifo() -> None:
    """next_request() hands out higher priorities first, in arrival order among equals."""
    scheduler = make()
    for name, priority in [("a", 0), ("b", 5), ("c", 0), ("d", 5)]:
        await scheduler.enqueue(Request(f"http://shop.test/{name}", priority=priority))
    order = []
    for _ in range(4):
        request = await scheduler.next_request()
        assert request is not None
        order.append(request.url[-1])
        await scheduler.done(request)
    assert order == ["b", "d", "a", "c"]


async def test_next_request_waits_for_in_flight_work_then_ends() -> None:
    """A waiting worker gets requests enqueued by in-flight ones and None once all is done."""
    scheduler = make()
    await scheduler.enqueue(Request("http://shop.test/1"))
    first = await scheduler.next_request()
    assert first is not None
    waiter = asyncio.create_task(scheduler.next_request())
    await asyncio.sleep(0.01)
    assert not waiter.done()  # the in-flight request may still produce work
    await scheduler.enqueue(Request("http://shop.test/2"))
    second = await asyncio.wait_for(waiter, 1)
    assert second is not None
    assert second.url.endswith("/2")
    await scheduler.done(first)
    late = asyncio.create_task(scheduler.next_request())
    await asyncio.sleep(0.01)
    assert not late.done()
    await scheduler.done(second)
    assert await asyncio.wait_for(late, 1) is None


async def test_a_running_producer_keeps_the_crawl_open() -> None:
    """While start() may still yield, an empty scheduler does not end the crawl."""
    scheduler = make()
    scheduler.producer_started()
    waiter = asyncio.create_task(scheduler.next_request())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    scheduler.producer_finished()
    assert await asyncio.wait_for(waiter, 1) is None


async def test_close_stops_handing_out_requests() -> None:
    """After close() pending requests stay queued and next_request() returns None."""
    scheduler = make()
    await scheduler.enqueue(Request("http://shop.test/1"))
    scheduler.close("shutdown")
    assert await scheduler.next_request() is None
    assert scheduler.pending == 1
    assert scheduler.close_reason == "shutdown"


async def test_a_delayed_host_costs_linear_gate_checks() -> None:
    """With DOWNLOAD_DELAY on one host, each request is checked a bounded number of times."""
    from scrapekit.politeness import LocalRateLimiter

    class Counting(LocalRateLimiter):
        calls = 0

        async def acquire(self, key: str, request: Request, now: float) -> float:
            Counting.calls += 1
            return await super().acquire(key, request, now)

    scheduler = Scheduler(MemoryFrontier(), limiter=Counting(delay=0.002, randomize_delay=False))
    for i in range(150):
        await scheduler.enqueue(Request(f"http://shop.test/{i}"))

    async def worker() -> None:
        while (request := await scheduler.next_request()) is not None:
            await scheduler.done(request)

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(8))), 10)
    assert scheduler.statistics().in_flight == 0
    assert Counting.calls < 150 * 4


async def test_requests_waiting_at_a_full_host_keep_their_priority() -> None:
    """Requests queued at a full host in low-then-high order leave it highest priority first,
    and wait in the frontier, not in the scheduler."""
    from scrapekit.politeness import LocalRateLimiter

    scheduler = Scheduler(MemoryFrontier(), limiter=LocalRateLimiter(concurrency_per_host=1))
    first = Request("http://shop.test/first")
    await scheduler.enqueue(first)
    assert await scheduler.next_request() is first
    waiter = asyncio.create_task(scheduler.next_request())
    await scheduler.enqueue(Request("http://shop.test/low", priority=0))
    await asyncio.sleep(0.01)  # the waiter leases "low", is refused a slot, hands it back
    await scheduler.enqueue(Request("http://shop.test/high", priority=9))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    stats = scheduler.statistics()
    assert (stats.in_flight, stats.frontier.pending, stats.frontier.leased) == (1, 2, 1)
    await scheduler.done(first)
    taken = await asyncio.wait_for(waiter, 1)
    assert taken is not None
    assert taken.url.endswith("/high")


async def test_a_paused_hosts_backlog_stays_in_the_frontier_and_start_reads_on() -> None:
    """A paused host's 300 requests are never taken out of the frontier, do not count against
    the room start() is read into, and a later request of another host goes at once."""
    from scrapekit.politeness import LocalRateLimiter

    scheduler = Scheduler(MemoryFrontier(), limiter=LocalRateLimiter())
    scheduler.producer_started()
    await scheduler.enqueue(Request("http://slow.test/0"))
    first = await scheduler.next_request()
    assert first is not None
    await scheduler.pause_host(first, 30.0)  # a 429 with Retry-After: 30
    await scheduler.retry_later(first, 0.0)
    for i in range(1, 300):
        await scheduler.enqueue(Request(f"http://slow.test/{i}"))
    waiter = asyncio.create_task(scheduler.next_request())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    assert scheduler.statistics().frontier.pending == 300
    assert await asyncio.wait_for(scheduler.wait_for_room(4), 1)
    await scheduler.enqueue(Request("http://fast.test/"))
    taken = await asyncio.wait_for(waiter, 1)
    assert taken is not None
    assert taken.url == "http://fast.test/"


async def test_readahead_bounds_what_start_may_pile_up_behind_a_paused_host() -> None:
    """With every pending request waiting, start() may still be read, but only up to
    START_READAHEAD pending requests: then wait_for_room waits."""
    from scrapekit.politeness import LocalRateLimiter

    scheduler = Scheduler(MemoryFrontier(), limiter=LocalRateLimiter(), readahead=50)
    await scheduler.enqueue(Request("http://slow.test/0"))
    first = await scheduler.next_request()
    assert first is not None
    await scheduler.pause_host(first, 30.0)
    await scheduler.retry_later(first, 0.0)
    for i in range(1, 49):
        await scheduler.enqueue(Request(f"http://slow.test/{i}"))
    assert await asyncio.wait_for(scheduler.wait_for_room(4), 1)
    await scheduler.enqueue(Request("http://slow.test/49"))
    room = asyncio.create_task(scheduler.wait_for_room(4))
    await asyncio.sleep(0.01)
    assert not room.done()
    scheduler.close("shutdown")
    assert await asyncio.wait_for(room, 1) is False


async def test_a_lease_read_while_the_scheduler_closes_is_handed_back(tmp_path: Path) -> None:
    """A worker whose lease was being read when a limit closed the scheduler gets no request:
    `--max-pages 1` fetches one page, not one per worker, and the lease stays pending."""
    async with SqliteFrontier(tmp_path / "frontier.db") as frontier:
        scheduler = Scheduler(frontier)
        for i in range(3):
            assert await scheduler.enqueue(Request(f"http://a.test/{i}"))
        reading = asyncio.create_task(scheduler.next_request())  # reads the file: suspends
        await asyncio.sleep(0)
        scheduler.close("closespider_pagecount")
        assert await reading is None
        assert (len(frontier), frontier.leased) == (3, 0)


class HeldResponses:
    """An HTTP cache that answers every request and holds its response until taken."""

    def __init__(self) -> None:
        self.held: set[int] = set()

    async def lookup(self, request: Request) -> bool:
        self.held.add(id(request))
        return True

    def forget(self, request: Request) -> None:
        self.held.discard(id(request))


async def test_a_released_request_lets_go_of_its_cached_response() -> None:
    """A request handed back (a stop, a lost login) will not be processed now: the response
    the cache held for it is dropped, not kept for whatever object reuses its id."""
    cache = HeldResponses()
    scheduler = Scheduler(MemoryFrontier(), cache=cache)
    assert await scheduler.enqueue(Request("http://a.test/1"))
    request = await scheduler.next_request()
    assert request is not None
    assert cache.held == {id(request)}
    await scheduler.release(request)
    assert cache.held == set()
