"""Politeness in real crawls: the server records when each request arrives."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import tracemalloc
import zlib
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request as WRequest
from werkzeug import Response as WResponse

from scrapekit import FetchError, Request, Response, Spider, crawl_async


class Arrivals:
    """When each request reached the server, per host and path."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.paths: list[str] = []

    def record(self, request: WRequest) -> None:
        with self.lock:
            self.times[request.host.split(":")[0]].append(time.monotonic())
            self.paths.append(request.full_path.rstrip("?"))


def ok_handler(arrivals: Arrivals, body: str = "<p>ok</p>") -> Any:
    """A handler that records the arrival and answers 200 HTML."""

    def handle(request: WRequest) -> WResponse:
        arrivals.record(request)
        return WResponse(body, content_type="text/html")

    return handle


def spaced(times: list[float], gap: float, jitter: float = 0.03) -> bool:
    """Whether arrivals keep `gap` apart: each pair within `jitter` of it (the server thread
    records an arrival a little late under load, which shortens the gap after it), and the
    whole run no shorter than its gaps (a burst cannot hide in the jitter)."""
    times = sorted(times)
    pairs = list(itertools.pairwise(times))
    return all(b - a >= gap - jitter for a, b in pairs) and (
        not pairs or times[-1] - times[0] >= gap * len(pairs) - jitter
    )


def max_in_window(times: list[float], window: float) -> int:
    """The most arrivals inside any sliding window of `window` seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


class Many(Spider):
    """Requests each of `urls`, one item per response."""

    name = "many"

    def __init__(self, urls: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = urls

    async def start(self) -> Any:
        for url in self.urls:
            yield Request(url, errback=self.failed)

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"url": response.url, "status": response.status}

    def failed(self, failure: FetchError) -> Iterator[dict[str, Any]]:
        assert failure.request is not None
        yield {
            "failed": failure.request.url,
            "status": failure.response.status if failure.response is not None else None,
            "attempts": failure.request.meta.get("retry_times", 0) + 1,
        }


QUIET = {"LOG_LEVEL": "CRITICAL", "COOKIES_PERSIST": False}


async def test_rate_is_never_exceeded_over_any_window(httpserver: HTTPServer) -> None:
    """At RATE=20, BURST=1 the host never sees more than 20 (+1) requests in any second."""
    arrivals = Arrivals()
    httpserver.expect_request("/p").respond_with_handler(ok_handler(arrivals))
    urls = [httpserver.url_for(f"/p?i={i}") for i in range(30)]
    stats = await crawl_async(Many, {**QUIET, "RATE": 20, "BURST": 1}, urls=urls)
    times = arrivals.times["localhost"]
    assert stats["items"] == 30
    assert max_in_window(times, 1.0) <= 21
    assert max_in_window(times, 0.25) <= 6
    assert times[-1] - times[0] >= 29 / 20 - 0.1  # the bucket really spaced them out


async def test_two_hosts_keep_their_own_rates_in_parallel(httpserver: HTTPServer) -> None:
    """localhost at 20/s and 127.0.0.1 at 10/s run side by side, each at its own pace."""
    arrivals = Arrivals()
    httpserver.expect_request("/p").respond_with_handler(ok_handler(arrivals))
    fast = [httpserver.url_for(f"/p?f={i}") for i in range(20)]
    slow = [u.replace("localhost", "127.0.0.1").replace("f=", "s=") for u in fast[:10]]

    class TwoRates(Many):
        name = "two-rates"

        async def start(self) -> Any:
            for url in fast:
                yield Request(url, meta={"rate": 20.0})
            for url in slow:
                yield Request(url, meta={"rate": 10.0})

    started = time.monotonic()
    stats = await crawl_async(TwoRates, QUIET, urls=[])
    elapsed = time.monotonic() - started
    assert stats["items"] == 30
    assert max_in_window(arrivals.times["localhost"], 0.5) <= 11
    assert max_in_window(arrivals.times["127.0.0.1"], 0.5) <= 6
    assert elapsed < 1.0 + 1.0 + 0.6  # in parallel: about max(1 s, 1 s), not their sum


async def test_retry_after_pauses_only_that_host(httpserver: HTTPServer) -> None:
    """A 429 with Retry-After: 1 holds that host for a second while the other host goes on."""
    arrivals = Arrivals()
    first = {"sent": False}

    def limited(request: WRequest) -> WResponse:
        arrivals.record(request)
        if request.host.startswith("localhost") and not first["sent"]:
            first["sent"] = True
            return WResponse("slow down", status=429, headers={"Retry-After": "1"})
        return WResponse("<p>ok</p>", content_type="text/html")

    httpserver.expect_request("/p").respond_with_handler(limited)
    a = [httpserver.url_for(f"/p?a={i}") for i in range(3)]
    b = [u.replace("localhost", "127.0.0.1").replace("a=", "b=") for u in a * 3]
    b = [f"{u}{i}" for i, u in enumerate(b)]
    stats = await crawl_async(
        Many, {**QUIET, "RATE": 10, "CONCURRENCY_PER_HOST": 1}, urls=[a[0], *b, *a[1:]]
    )
    assert stats["items"] == 3 + 9
    a_times, b_times = arrivals.times["localhost"], arrivals.times["127.0.0.1"]
    paused_from = a_times[0]
    # The other host kept going during the pause; this host waited it out.
    assert any(paused_from < t < paused_from + 0.9 for t in b_times)
    assert all(t >= paused_from + 0.95 for t in a_times[1:])
    assert stats["retries"]["retries_by_reason"] == {"http 429": 1}


async def test_flaky_server_yields_every_item_with_retries_counted(httpserver: HTTPServer) -> None:
    """Every URL fails once with 503 and then works: all items arrive, 20 retries counted."""
    seen: set[str] = set()
    lock = threading.Lock()

    def flaky(request: WRequest) -> WResponse:
        with lock:
            first_time = request.full_path not in seen
            seen.add(request.full_path)
        if first_time:
            return WResponse("busy", status=503)
        return WResponse("<p>ok</p>", content_type="text/html")

    httpserver.expect_request("/p").respond_with_handler(flaky)
    urls = [httpserver.url_for(f"/p?i={i}") for i in range(20)]
    stats = await crawl_async(Many, {**QUIET, "RETRY_BACKOFF_BASE": 0.01}, urls=urls)
    assert stats["items"] == 20
    assert stats["errors"] == {}
    assert stats["retries"]["retries"] == 20
    assert stats["responses_by_status"] == {"200": 20, "503": 20}


async def test_always_failing_server_exhausts_retries_then_errback(httpserver: HTTPServer) -> None:
    """RETRY_TIMES=2: three attempts, then the errback gets the last 500 response."""
    arrivals = Arrivals()

    def broken(request: WRequest) -> WResponse:
        arrivals.record(request)
        return WResponse("oops", status=500)

    httpserver.expect_request("/p").respond_with_handler(broken)
    items: list[dict[str, Any]] = []

    class Keep:
        def process_item(self, item: dict[str, Any], spider: Spider) -> dict[str, Any]:
            items.append(item)
            return item

    stats = await crawl_async(
        Many,
        {**QUIET, "RETRY_TIMES": 2, "RETRY_BACKOFF_BASE": 0.01, "PIPELINES": {Keep: 1}},
        urls=[httpserver.url_for("/p")],
    )
    assert len(arrivals.paths) == 3
    assert items == [{"failed": httpserver.url_for("/p"), "status": 500, "attempts": 3}]
    assert stats["errors"] == {"http 500": 1}
    assert stats["retries"]["gave_up_by_reason"] == {"http 500": 1}


async def test_post_is_not_replayed_after_a_read_timeout(httpserver: HTTPServer) -> None:
    """A POST whose response timed out may have been processed: it is not sent twice."""
    arrivals = Arrivals()

    def slow(request: WRequest) -> WResponse:
        arrivals.record(request)
        time.sleep(0.5)
        return WResponse("done")

    httpserver.expect_request("/order", method="POST").respond_with_handler(slow)

    class Order(Many):
        name = "order"

        async def start(self) -> Any:
            yield Request(
                httpserver.url_for("/order"), data={"qty": "1"},
                meta={"download_timeout": 0.2}, errback=self.failed,
            )  # fmt: skip

    stats = await crawl_async(Order, {**QUIET, "RETRY_BACKOFF_BASE": 0.01}, urls=[])
    await asyncio.sleep(0.4)  # let the server finish, in case a replay were on its way
    assert len(arrivals.paths) == 1
    assert stats["errors"] == {"timeout": 1}
    assert stats["retries"]["retries"] == 0


async def test_robots_txt_disallow_and_crawl_delay(httpserver: HTTPServer) -> None:
    """Disallowed paths are dropped and counted; Crawl-delay spaces the allowed ones."""
    arrivals = Arrivals()
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /private\nCrawl-delay: 0.3\n", content_type="text/plain"
    )
    httpserver.expect_request("/public").respond_with_handler(ok_handler(arrivals))
    httpserver.expect_request("/private").respond_with_handler(ok_handler(arrivals))
    urls = [httpserver.url_for(f"/public?i={i}") for i in range(4)]
    urls += [httpserver.url_for(f"/private?i={i}") for i in range(3)]
    stats = await crawl_async(
        Many, {**QUIET, "ROBOTSTXT_OBEY": True, "RANDOMIZE_DELAY": False}, urls=urls
    )
    assert stats["items"] == 4
    assert all(path.startswith("/public") for path in arrivals.paths)
    assert stats["dropped"]["requests"]["robots.txt"] == 3
    times = sorted(arrivals.times["localhost"])
    assert spaced(times, 0.3), [round(b - a, 3) for a, b in itertools.pairwise(times)]


@cache
def gzip_bomb() -> bytes:
    """1 GiB of zeros, gzip-compressed to about 1 MiB (built once)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return b"".join(compressor.compress(chunk) for _ in range(1024)) + compressor.flush()


async def test_gzip_bomb_is_cut_off_with_bounded_memory(httpserver: HTTPServer) -> None:
    """A 1 GiB gzip bomb fails at MAX_RESPONSE_BYTES; the crawl's memory stays small."""
    bomb = gzip_bomb()
    assert len(bomb) < 2 << 20
    httpserver.expect_request("/bomb").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip", "Content-Type": "text/html"}
    )
    tracemalloc.start()
    try:
        stats = await crawl_async(
            Many, {**QUIET, "MAX_RESPONSE_BYTES": 8 << 20}, urls=[httpserver.url_for("/bomb")]
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats["errors"] == {"response too large": 1}
    assert peak < 64 << 20  # far below the 1 GiB the body would inflate to


async def test_redirect_to_another_site_is_dropped(httpserver: HTTPServer) -> None:
    """A redirect off allowed_domains is dropped like an off-site link, not fetched."""
    arrivals = Arrivals()
    elsewhere = httpserver.url_for("/landing").replace("localhost", "127.0.0.1")
    httpserver.expect_request("/go").respond_with_data(
        "", status=302, headers={"Location": elsewhere}
    )
    httpserver.expect_request("/landing").respond_with_handler(ok_handler(arrivals))

    class Local(Many):
        name = "local"
        allowed_domains = ["localhost"]

    stats = await crawl_async(Local, QUIET, urls=[httpserver.url_for("/go")])
    assert arrivals.paths == []
    assert stats["dropped"]["requests"] == {"redirect offsite": 1}
    assert stats["error_count"] == 0


async def test_non_html_reaches_the_callback_unparsed(httpserver: HTTPServer) -> None:
    """An image reaches its callback as bytes; it is never decoded or parsed on the way."""
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    httpserver.expect_request("/logo.png").respond_with_data(png, content_type="image/png")
    seen: list[Response] = []

    class Images(Many):
        name = "images"

        def parse(self, response: Response) -> Iterator[dict[str, Any]]:
            seen.append(response)
            yield {"size": len(response.body)}

    stats = await crawl_async(Images, QUIET, urls=[httpserver.url_for("/logo.png")])
    assert stats["items"] == 1
    assert seen[0].body == png
    assert seen[0]._tree is None  # never parsed ...
    assert seen[0]._text is None  # ... nor decoded


async def test_autothrottle_backs_off_and_reports_each_hosts_rate(httpserver: HTTPServer) -> None:
    """503s halve the host's rate (counted as throttled); the stats show its final rate."""
    served = {"n": 0}
    lock = threading.Lock()

    def overloaded_at_first(request: WRequest) -> WResponse:
        with lock:
            served["n"] += 1
            n = served["n"]
        if n <= 6:
            return WResponse("busy", status=503)
        return WResponse("<p>ok</p>", content_type="text/html")

    httpserver.expect_request("/p").respond_with_handler(overloaded_at_first)
    urls = [httpserver.url_for(f"/p?i={i}") for i in range(20)]
    stats = await crawl_async(
        Many,
        {**QUIET, "AUTOTHROTTLE": True, "RATE_MAX": 40.0, "RATE_MIN": 1.0,
         "RETRY_BACKOFF_BASE": 0.01, "RETRY_TIMES": 5},
        urls=urls,
    )  # fmt: skip
    assert stats["items"] == 20
    slot = stats["rate_limits"]["slots"]["localhost"]
    assert slot["throttled"] >= 1
    assert 1.0 <= slot["rate"] < 40.0


async def test_retry_after_pauses_the_host_even_without_a_retry(httpserver: HTTPServer) -> None:
    """With retries off, a 429's Retry-After still holds the host's next requests."""
    arrivals = Arrivals()
    first = {"sent": False}

    def once_limited(request: WRequest) -> WResponse:
        arrivals.record(request)
        if not first["sent"]:
            first["sent"] = True
            return WResponse("slow down", status=429, headers={"Retry-After": "1"})
        return WResponse("<p>ok</p>", content_type="text/html")

    httpserver.expect_request("/p").respond_with_handler(once_limited)
    urls = [httpserver.url_for(f"/p?i={i}") for i in range(4)]
    stats = await crawl_async(
        Many, {**QUIET, "RETRY_ENABLED": False, "CONCURRENCY_PER_HOST": 1}, urls=urls
    )
    times = arrivals.times["localhost"]
    assert stats["errors"] == {"http 429": 1}
    assert all(t >= times[0] + 0.95 for t in times[1:])


async def test_bad_meta_drops_one_request_not_the_crawl(httpserver: HTTPServer) -> None:
    """A negative download_delay in one request's meta drops it, counted; the rest go on."""
    httpserver.expect_request("/p").respond_with_handler(ok_handler(Arrivals()))

    class BadMeta(Many):
        name = "bad-meta"

        async def start(self) -> Any:
            yield Request(httpserver.url_for("/p?bad"), meta={"download_delay": -1})
            yield Request(httpserver.url_for("/p?good"))

    stats = await crawl_async(BadMeta, QUIET, urls=[])
    assert stats["items"] == 1
    assert stats["dropped"]["requests"] == {"bad meta": 1}


async def test_robots_txt_5xx_holds_the_host_then_crawls_it(httpserver: HTTPServer) -> None:
    """A robots.txt that fails once with 503 delays the host's requests instead of losing them."""
    answers = iter([WResponse("down", status=503)])

    def robots(request: WRequest) -> WResponse:
        return next(answers, WResponse("User-agent: *\nAllow: /\n", content_type="text/plain"))

    httpserver.expect_request("/robots.txt").respond_with_handler(robots)
    httpserver.expect_request("/p").respond_with_handler(ok_handler(Arrivals()))
    urls = [httpserver.url_for(f"/p?i={i}") for i in range(3)]
    stats = await crawl_async(
        Many, {**QUIET, "ROBOTSTXT_OBEY": True, "ROBOTSTXT_RETRY_SECONDS": 0.5}, urls=urls
    )
    assert stats["items"] == 3
    assert stats["robots"]["by_status"] == {"5xx": 1, "200": 1}


async def test_concurrency_per_host_is_never_exceeded() -> None:
    """With CONCURRENCY_PER_HOST=2 a threaded server never sees three requests at once."""
    state = {"now": 0, "most": 0}
    lock = threading.Lock()

    def slow(request: WRequest) -> WResponse:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return WResponse("<p>ok</p>", content_type="text/html")

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        server.expect_request("/p").respond_with_handler(slow)
        urls = [server.url_for(f"/p?i={i}") for i in range(12)]
        stats = await crawl_async(Many, {**QUIET, "CONCURRENCY_PER_HOST": 2}, urls=urls)
    finally:
        server.clear()
        server.stop()
    assert stats["items"] == 12
    assert state["most"] == 2


async def test_pages_fetched_again_after_a_relogin_pass_the_rate_gate(
    httpserver: HTTPServer,
) -> None:
    """The pages that met an expired session go out again at the host's rate, not at once."""
    arrivals = Arrivals()
    session = {"valid": "none", "served": 0, "logins": 0}
    lock = threading.Lock()

    def login(request: WRequest) -> WResponse:
        with lock:
            session["logins"] += 1
            session["valid"] = f"s{session['logins']}"
            response = WResponse("", status=302, headers={"Location": "/home"})
        response.set_cookie("sid", session["valid"])
        return response

    def page(request: WRequest) -> WResponse:
        arrivals.record(request)
        with lock:
            session["served"] += 1
            if session["served"] == 6:  # the server ends the session mid-crawl
                session["valid"] = "expired"
            logged_in = request.cookies.get("sid") == session["valid"]
        if not logged_in:
            return WResponse("", status=302, headers={"Location": "/signin"})
        return WResponse("<p class=member>ok</p>", content_type="text/html")

    httpserver.expect_request("/login", method="POST").respond_with_handler(login)
    httpserver.expect_request("/home").respond_with_data("home")
    httpserver.expect_request("/signin").respond_with_data("<form>sign in</form>")
    httpserver.expect_request("/p").respond_with_handler(page)

    class Member(Many):
        name = "member"

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.login_url = httpserver.url_for("/signin")

        async def login(self, session: Any) -> None:
            await session.post(httpserver.url_for("/login"), data={"u": "me"})

    urls = [httpserver.url_for(f"/p?i={i}") for i in range(14)]
    stats = await crawl_async(
        Member, {**QUIET, "RATE": 10, "BURST": 1, "CONCURRENCY_PER_HOST": 4}, urls=urls
    )
    assert stats["items"] == 14
    assert stats["login"]["relogins"] == 1
    times = sorted(arrivals.times["localhost"])
    assert len(times) > 14  # some pages were fetched twice
    assert spaced(times, 0.1), [round(b - a, 3) for a, b in itertools.pairwise(times)]  # 10/s


async def test_a_host_slot_is_free_while_its_last_page_is_parsed(httpserver: HTTPServer) -> None:
    """CONCURRENCY_PER_HOST counts requests on the wire, as in Scrapy: with one slot, the
    host's next request goes out while the callback of the page before it still runs (here
    the callback waits for that request to arrive; holding the slot through it would time
    out)."""
    arrivals = Arrivals()
    second_arrived = threading.Event()

    def handle(request: WRequest) -> WResponse:
        arrivals.record(request)
        if request.path == "/b":
            second_arrived.set()
        return WResponse("<p>ok</p>", content_type="text/html")

    httpserver.expect_request("/a").respond_with_handler(handle)
    httpserver.expect_request("/b").respond_with_handler(handle)
    waited: list[bool] = []

    class Slow(Spider):
        name = "slow"
        start_urls = [httpserver.url_for("/a"), httpserver.url_for("/b")]

        async def parse(self, response: Response) -> Any:
            if response.url.endswith("/a"):
                waited.append(await asyncio.to_thread(second_arrived.wait, 5.0))
            yield {"url": response.url}

    stats = await crawl_async(
        Slow, {**QUIET, "CONCURRENCY": 4, "CONCURRENCY_PER_HOST": 1, "RATE": 0}
    )
    assert waited == [True]
    assert stats["items"] == 2
    assert arrivals.paths[:2] == ["/a", "/b"]
