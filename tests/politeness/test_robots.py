"""RobotsCache over real loopback HTTP: fetch rules, status handling, single-flight, caching."""

from __future__ import annotations

import asyncio
import gzip
import os
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from structlog.testing import capture_logs
from werkzeug import Request as WsgiRequest
from werkzeug import Response as WsgiResponse

from scrapekit.politeness.robots import (
    MAX_AGE_SECONDS,
    MAX_ROBOTS_BYTES,
    RobotsCache,
    RobotsStatistics,
    decode_robots,
    origin_of,
)
from scrapekit.request import Request
from scrapekit.response import Response
from scrapekit.session import Session
from scrapekit.settings import Settings
from scrapekit.settings.defaults import DEFAULTS

UA = "scrapekit"


def settings(**overrides: Any) -> Settings:
    """Default settings with a few overridden."""
    return Settings.load(project_file=None, spider_cls=None, env={}, overrides=overrides)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    """A real session with a short timeout."""
    async with Session.from_settings(settings(DOWNLOAD_TIMEOUT=2.0)) as s:
        yield s


def serve_robots(server: HTTPServer, body: str | bytes, status: int = 200) -> None:
    """Answer /robots.txt on `server` with `body`."""
    server.expect_request("/robots.txt").respond_with_data(
        body, status=status, content_type="text/plain"
    )


def robots_hits(server: HTTPServer) -> int:
    """How many times `server` was asked for /robots.txt."""
    return sum(1 for request, _ in server.log if request.path == "/robots.txt")


async def ask(cache: RobotsCache, server: HTTPServer, path: str, **kwargs: Any) -> bool:
    """cache.allowed() for `path` on `server`."""
    return await cache.allowed(Request(server.url_for(path), **kwargs))


async def test_disallow_and_allow_rules(httpserver: HTTPServer, session: Session) -> None:
    """Disallow blocks a path prefix and a longer Allow reopens part of it."""
    serve_robots(httpserver, "User-agent: *\nDisallow: /private\nAllow: /private/ok\n")
    cache = RobotsCache(session.fetch, user_agent=UA)
    assert await ask(cache, httpserver, "/public")
    assert not await ask(cache, httpserver, "/private")
    assert not await ask(cache, httpserver, "/private/x?q=1")
    assert await ask(cache, httpserver, "/private/ok/page")


@pytest.mark.parametrize(
    ("user_agent", "mine", "everyone"),
    [
        pytest.param("scrapekit", False, True, id="our-group"),
        pytest.param("ScrapeKit", False, True, id="case-insensitive"),
        pytest.param("otherbot", True, False, id="star-group"),
    ],
)
async def test_user_agent_group_matching(
    httpserver: HTTPServer, session: Session, user_agent: str, mine: bool, everyone: bool
) -> None:
    """Our token's group applies to us instead of `*`; other agents fall back to `*`."""
    serve_robots(
        httpserver,
        "User-agent: scrapekit\nDisallow: /mine\n\nUser-agent: *\nDisallow: /everyone\n",
    )
    cache = RobotsCache(session.fetch, user_agent=user_agent)
    assert await ask(cache, httpserver, "/mine") is mine
    assert await ask(cache, httpserver, "/everyone") is everyone


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param({}, "scrapekit", id="product-token"),
        pytest.param({"USER_AGENT": "MyBot/2.0 (+https://x.test)"}, "MyBot", id="custom-ua"),
        pytest.param({"ROBOTSTXT_USER_AGENT": "special"}, "special", id="explicit"),
    ],
)
def test_from_settings_user_agent(values: dict[str, Any], expected: str) -> None:
    """ROBOTSTXT_USER_AGENT wins, else the product token of USER_AGENT is matched."""

    async def never(request: Request) -> Response:
        raise AssertionError("not fetched")

    assert RobotsCache.from_settings(settings(**values), never).user_agent == expected


@pytest.mark.parametrize("status", [401, 403, 404, 410])
async def test_4xx_allows_all(httpserver: HTTPServer, session: Session, status: int) -> None:
    """A 4xx robots.txt (even 401/403, as Google does) means no rules: everything is allowed."""
    serve_robots(httpserver, "User-agent: *\nDisallow: /\n", status=status)
    cache = RobotsCache(session.fetch, user_agent=UA)
    assert await ask(cache, httpserver, "/anything")
    assert await ask(cache, httpserver, "/else")
    assert robots_hits(httpserver) == 1


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_5xx_disallows_all_then_refetches(
    httpserver: HTTPServer, session: Session, status: int
) -> None:
    """A 5xx (or 429) disallows everything for retry_seconds; then the file is fetched anew."""
    clock = FakeClock()
    httpserver.expect_ordered_request("/robots.txt").respond_with_data("", status=status)
    serve_robots(httpserver, "User-agent: *\nDisallow: /private\n")
    cache = RobotsCache(
        session.fetch, user_agent=UA, retry_seconds=60.0, timeout=600.0, clock=clock
    )
    assert not await ask(cache, httpserver, "/public")
    clock.now += 59.0
    assert not await ask(cache, httpserver, "/public")
    assert robots_hits(httpserver) == 1
    clock.now += 1.0
    assert await ask(cache, httpserver, "/public")
    assert not await ask(cache, httpserver, "/private")
    assert robots_hits(httpserver) == 2


async def test_rules_expire_after_a_day(httpserver: HTTPServer, session: Session) -> None:
    """Parsed rules are used for at most 24 hours (RFC 9309 2.4), then fetched again."""
    clock = FakeClock()
    serve_robots(httpserver, "User-agent: *\nDisallow: /x\n")
    cache = RobotsCache(session.fetch, user_agent=UA, clock=clock)
    assert not await ask(cache, httpserver, "/x")
    clock.now += MAX_AGE_SECONDS - 1
    assert not await ask(cache, httpserver, "/x")
    assert robots_hits(httpserver) == 1
    clock.now += 1
    assert not await ask(cache, httpserver, "/x")
    assert robots_hits(httpserver) == 2


async def test_connection_refused_disallows_all(unreachable_origin: str, session: Session) -> None:
    """An unreachable host (a FetchError) disallows everything and is counted as "error"."""
    cache = RobotsCache(session.fetch, user_agent=UA)
    assert not await cache.allowed(Request(unreachable_origin + "/page"))
    assert cache.statistics().by_status == {"error": 1}


async def test_timeout_disallows_all(httpserver: HTTPServer) -> None:
    """A robots.txt slower than DOWNLOAD_TIMEOUT disallows everything."""

    answered = threading.Event()

    def slow(request: WsgiRequest) -> WsgiResponse:
        time.sleep(0.5)
        answered.set()
        return WsgiResponse("User-agent: *\nAllow: /\n")

    httpserver.expect_request("/robots.txt").respond_with_handler(slow)
    async with Session.from_settings(settings(DOWNLOAD_TIMEOUT=0.1)) as session:
        cache = RobotsCache(session.fetch, user_agent=UA)
        assert not await ask(cache, httpserver, "/page")
    # The server answers one request at a time: let it finish before the next test uses it.
    assert await asyncio.to_thread(answered.wait, 5.0)


async def test_single_flight(httpserver: HTTPServer, session: Session) -> None:
    """Twenty concurrent callers for one origin cause exactly one robots.txt fetch."""

    def slow(request: WsgiRequest) -> WsgiResponse:
        time.sleep(0.2)  # keep the fetch in flight while the other callers arrive
        return WsgiResponse("User-agent: *\nDisallow: /odd\n", content_type="text/plain")

    httpserver.expect_request("/robots.txt").respond_with_handler(slow)
    cache = RobotsCache(session.fetch, user_agent=UA)
    paths = [f"/odd/{i}" if i % 2 else f"/even/{i}" for i in range(20)]
    verdicts = await asyncio.gather(*(ask(cache, httpserver, path) for path in paths))
    assert verdicts == [i % 2 == 0 for i in range(20)]
    assert robots_hits(httpserver) == 1


async def test_cancelled_fetcher_hands_over(httpserver: HTTPServer, session: Session) -> None:
    """When the caller doing the fetch is cancelled, a waiting caller fetches instead."""

    def slow(request: WsgiRequest) -> WsgiResponse:
        time.sleep(0.2)
        return WsgiResponse("User-agent: *\nDisallow: /no\n", content_type="text/plain")

    httpserver.expect_request("/robots.txt").respond_with_handler(slow)
    cache = RobotsCache(session.fetch, user_agent=UA)
    first = asyncio.create_task(ask(cache, httpserver, "/no"))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(ask(cache, httpserver, "/no"))
    await asyncio.sleep(0.05)
    first.cancel()
    assert not await second
    assert first.cancelled()


async def test_per_origin_cache(
    httpserver: HTTPServer, other_server: HTTPServer, session: Session
) -> None:
    """Each origin (two ports on one host) has its own robots.txt, fetched once."""
    serve_robots(httpserver, "User-agent: *\nDisallow: /a\n")
    serve_robots(other_server, "User-agent: *\nDisallow: /b\n")
    cache = RobotsCache(session.fetch, user_agent=UA)
    for _ in range(3):
        assert not await ask(cache, httpserver, "/a")
        assert await ask(cache, httpserver, "/b")
        assert await ask(cache, other_server, "/a")
        assert not await ask(cache, other_server, "/b")
    assert robots_hits(httpserver) == 1
    assert robots_hits(other_server) == 1


async def test_lru_limit(
    httpserver: HTTPServer, other_server: HTTPServer, session: Session
) -> None:
    """Past max_hosts the least recently used origin is forgotten and fetched again."""
    serve_robots(httpserver, "User-agent: *\nDisallow: /a\n")
    serve_robots(other_server, "User-agent: *\nDisallow: /b\n")
    cache = RobotsCache(session.fetch, user_agent=UA, max_hosts=1)
    assert not await ask(cache, httpserver, "/a")
    assert not await ask(cache, other_server, "/b")
    assert not await ask(cache, httpserver, "/a")
    assert robots_hits(httpserver) == 2
    assert robots_hits(other_server) == 1


async def test_crawl_delay_callback(httpserver: HTTPServer, session: Session) -> None:
    """A Crawl-delay for our agent is reported once per fetch, with the origin."""
    serve_robots(httpserver, "User-agent: *\nCrawl-delay: 2.5\nDisallow: /x\n")
    calls: list[tuple[str, float]] = []

    async def on_delay(origin: str, seconds: float) -> None:
        calls.append((origin, seconds))

    cache = RobotsCache(session.fetch, user_agent=UA, on_crawl_delay=on_delay)
    origin = origin_of(httpserver.url_for("/"))
    assert cache.crawl_delay(origin) is None
    for path in ("/a", "/b", "/x"):
        await ask(cache, httpserver, path)
    assert calls == [(origin, 2.5)]
    assert cache.crawl_delay(origin) == 2.5
    assert cache.crawl_delay(httpserver.url_for("/any/page")) == 2.5


async def test_crawl_delay_callback_failure_is_logged(
    httpserver: HTTPServer, session: Session
) -> None:
    """A failing Crawl-delay callback is logged and the rules still apply."""
    serve_robots(httpserver, "User-agent: *\nCrawl-delay: 1\nDisallow: /x\n")

    async def broken(origin: str, seconds: float) -> None:
        raise RuntimeError("limiter gone")

    cache = RobotsCache(session.fetch, user_agent=UA, on_crawl_delay=broken)
    with capture_logs() as logs:
        assert not await ask(cache, httpserver, "/x")
    assert [e["event"] for e in logs] == ["robots.txt error"]


async def test_meta_bypass(httpserver: HTTPServer, session: Session) -> None:
    """meta["dont_obey_robotstxt"] skips robots.txt entirely: nothing is fetched."""
    serve_robots(httpserver, "User-agent: *\nDisallow: /\n")
    cache = RobotsCache(session.fetch, user_agent=UA)
    assert await ask(cache, httpserver, "/page", meta={"dont_obey_robotstxt": True})
    assert robots_hits(httpserver) == 0
    assert not await ask(cache, httpserver, "/page")


async def test_robots_txt_itself_allowed(httpserver: HTTPServer, session: Session) -> None:
    """A request for /robots.txt is allowed without consulting the rules."""
    serve_robots(httpserver, "User-agent: *\nDisallow: /\n")
    cache = RobotsCache(session.fetch, user_agent=UA)
    assert await ask(cache, httpserver, "/robots.txt")
    assert robots_hits(httpserver) == 0


async def test_robots_request_shape(httpserver: HTTPServer, session: Session) -> None:
    """The robots.txt request bypasses the filters and robots.txt itself, and reads at most
    MAX_ROBOTS_BYTES of the file, cutting the rest off rather than failing."""
    serve_robots(httpserver, "User-agent: *\nDisallow: /\n")
    seen: list[Request] = []

    async def fetch(request: Request) -> Response:
        seen.append(request)
        return await session.fetch(request)

    cache = RobotsCache(fetch, user_agent=UA)
    await ask(cache, httpserver, "/page")
    [request] = seen
    assert request.url == httpserver.url_for("/robots.txt")
    assert request.dont_filter
    assert request.meta == {
        "dont_obey_robotstxt": True,
        "max_response_bytes": MAX_ROBOTS_BYTES,
        "truncate_body": True,
    }


async def test_huge_body_is_cut(httpserver: HTTPServer, session: Session) -> None:
    """Only the first 500 KiB of a robots.txt are parsed; rules after that are ignored."""
    head = "User-agent: *\nDisallow: /early\n"
    filler = "# padding padding padding padding padding padding padding\n" * 10_000
    body = head + filler + "Disallow: /late\n"
    assert len(head + filler) > MAX_ROBOTS_BYTES
    serve_robots(httpserver, body)
    cache = RobotsCache(session.fetch, user_agent=UA)
    assert not await ask(cache, httpserver, "/early")
    assert await ask(cache, httpserver, "/late")


async def test_bom_is_stripped(httpserver: HTTPServer, session: Session) -> None:
    """A UTF-8 byte-order mark before the first line does not hide its rules."""
    serve_robots(httpserver, b"\xef\xbb\xbfUser-agent: *\nDisallow: /x\n")
    cache = RobotsCache(session.fetch, user_agent=UA)
    assert not await ask(cache, httpserver, "/x")


@pytest.mark.parametrize(
    ("body", "text"),
    [
        pytest.param(b"\xef\xbb\xbfA", "A", id="bom"),
        pytest.param(b"\xef\xbbA", "A", id="partial-bom"),
        pytest.param(b"A\xffB", "A\ufffdB", id="invalid-utf8"),
        pytest.param(b"a\n" + b"x" * MAX_ROBOTS_BYTES, "a\n", id="cut-to-the-last-whole-line"),
    ],
)
def test_decode_robots(body: bytes, text: str) -> None:
    """Bodies decode as UTF-8 with replacement, without a (partial) BOM, cut at 500 KiB."""
    assert decode_robots(body) == text


async def test_redirect_is_followed(httpserver: HTTPServer, session: Session) -> None:
    """A redirected robots.txt is read where the redirect leads (the session follows it)."""
    httpserver.expect_request("/robots.txt").respond_with_data(
        "", status=301, headers={"Location": "/real-robots.txt"}
    )
    httpserver.expect_request("/real-robots.txt").respond_with_data("User-agent: *\nDisallow: /x\n")
    cache = RobotsCache(session.fetch, user_agent=UA)
    assert not await ask(cache, httpserver, "/x")
    assert await ask(cache, httpserver, "/y")


async def test_redirect_loop_allows_all(httpserver: HTTPServer, session: Session) -> None:
    """A robots.txt lost in redirects is unavailable, like a 404 (RFC 9309 2.3.1.2)."""
    httpserver.expect_request("/robots.txt").respond_with_data(
        "", status=302, headers={"Location": "/robots.txt"}
    )
    cache = RobotsCache(session.fetch, user_agent=UA)
    assert await ask(cache, httpserver, "/x")
    assert cache.statistics().by_status == {"3xx": 1}


async def test_broken_fetch_function_allows_and_logs(httpserver: HTTPServer) -> None:
    """An unexpected exception is logged as "robots.txt error" and treated as allow-all."""

    async def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    cache = RobotsCache(broken, user_agent=UA)
    with capture_logs() as logs:
        assert await ask(cache, httpserver, "/x")
    [entry] = logs
    assert entry["event"] == "robots.txt error"
    assert entry["origin"] == origin_of(httpserver.url_for("/"))
    assert "boom" in entry["error"]


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        pytest.param("http://Example.COM/a?b", "http://example.com", id="lower-case"),
        pytest.param("https://example.com:443/", "https://example.com", id="default-port"),
        pytest.param("http://example.com:8080/x", "http://example.com:8080", id="port"),
        pytest.param("http://[::1]:8000/", "http://[::1]:8000", id="ipv6"),
        pytest.param("http://bücher.de/", "http://xn--bcher-kva.de", id="idna"),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    """Origins are normalised so one host's URLs share one robots.txt."""
    assert origin_of(url) == origin


async def test_statistics(
    httpserver: HTTPServer,
    other_server: HTTPServer,
    third_server: HTTPServer,
    unreachable_origin: str,
    session: Session,
) -> None:
    """Statistics count fetches by status bucket and the requests turned away."""
    serve_robots(httpserver, "User-agent: *\nDisallow: /x\n")
    serve_robots(other_server, "", status=404)
    serve_robots(third_server, "", status=502)
    cache = RobotsCache(session.fetch, user_agent=UA)
    assert not await ask(cache, httpserver, "/x")
    assert await ask(cache, httpserver, "/y")
    assert await ask(cache, other_server, "/x")
    assert not await ask(cache, third_server, "/x")
    assert not await cache.allowed(Request(unreachable_origin + "/x"))
    assert cache.statistics() == RobotsStatistics(
        fetched=4, disallowed=3, by_status={"200": 1, "404": 1, "5xx": 1, "error": 1}
    )


async def test_unavailable_robots_txt_is_given_up_after_the_timeout(
    httpserver: HTTPServer, session: Session
) -> None:
    """Attempts and holds share one `timeout` budget; then the origin is given up, loudly."""
    clock = FakeClock()
    httpserver.expect_request("/robots.txt").respond_with_data("", status=503)
    cache = RobotsCache(session.fetch, user_agent=UA, retry_seconds=4.0, timeout=15.0, clock=clock)
    request = Request(httpserver.url_for("/page"))
    with capture_logs() as logs:
        assert not await cache.allowed(request)
        assert cache.hold_for(request) == 4.0  # retry_seconds, shorter than timeout / ATTEMPTS
        clock.now += 4.0
        assert not await cache.allowed(request)
        clock.now += 4.0
        assert not await cache.allowed(request)
        clock.now += 4.0
        assert not await cache.allowed(request)
        assert cache.hold_for(request) == 3.0  # the last hold ends at the deadline
        clock.now += 3.0
        assert not await cache.allowed(request)
        assert cache.hold_for(request) is None  # given up: drop, do not hold
        assert cache.unavailable(request)
        assert not await cache.allowed(request)
    assert robots_hits(httpserver) == 4
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert warning["origin"] == origin_of(request.url)
    assert warning["error"] == "HTTP 503"
    assert "ROBOTSTXT_OBEY=false" in warning["fix"]
    httpserver.clear()
    serve_robots(httpserver, "User-agent: *\nAllow: /\n")
    clock.now += 4.0  # given up for retry_seconds; then a new outage would start afresh
    assert await cache.allowed(request)
    assert cache.hold_for(request) is None
    assert not cache.unavailable(request)


async def test_a_transient_5xx_is_fetched_again_within_the_default_budget(
    httpserver: HTTPServer, session: Session
) -> None:
    """With the defaults (retry 300 s, timeout 30 s), one 503 is not the end: it is refetched."""
    clock = FakeClock()
    httpserver.expect_oneshot_request("/robots.txt").respond_with_data("", status=503)
    serve_robots(httpserver, "User-agent: *\nAllow: /\n")
    cache = RobotsCache(
        session.fetch,
        user_agent=UA,
        retry_seconds=DEFAULTS["ROBOTSTXT_RETRY_SECONDS"],
        timeout=DEFAULTS["ROBOTSTXT_TIMEOUT"],
        clock=clock,
    )
    request = Request(httpserver.url_for("/page"))
    assert not await cache.allowed(request)
    hold = cache.hold_for(request)
    assert hold is not None
    assert 0 < hold < DEFAULTS["ROBOTSTXT_TIMEOUT"]  # room for more attempts in the budget
    clock.now += hold
    assert await cache.allowed(request)  # the second attempt found the file
    assert robots_hits(httpserver) == 2


async def test_a_slow_robots_txt_fetch_is_cut_at_the_timeout(httpserver: HTTPServer) -> None:
    """An attempt gets what is left of the budget, even with a longer DOWNLOAD_TIMEOUT."""
    answered = threading.Event()

    def slow(request: WsgiRequest) -> WsgiResponse:
        time.sleep(1.0)
        answered.set()
        return WsgiResponse("User-agent: *\nAllow: /\n")

    httpserver.expect_request("/robots.txt").respond_with_handler(slow)
    async with Session.from_settings(settings(DOWNLOAD_TIMEOUT=30.0)) as session:
        cache = RobotsCache(session.fetch, user_agent=UA, timeout=0.2)
        started = time.monotonic()
        assert not await ask(cache, httpserver, "/page")
        assert time.monotonic() - started < 0.8
        assert cache.hold_for(Request(httpserver.url_for("/page"))) is None
    assert await asyncio.to_thread(answered.wait, 5.0)


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip-bomb"])
async def test_a_robots_txt_over_the_body_limit_is_read_up_to_500_kib(
    httpserver: HTTPServer, compressed: bool
) -> None:
    """RFC 9309 2.5: the first 500 KiB are parsed, whatever follows; the host is not lost."""
    rules = b"User-agent: *\nDisallow: /private\n"
    body = rules + b"#" * (4 * 1024 * 1024)  # a comment past every limit
    headers = {}
    if compressed:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    httpserver.expect_request("/robots.txt").respond_with_data(
        body, content_type="text/plain", headers=headers
    )
    async with Session.from_settings(settings(MAX_RESPONSE_BYTES=1024 * 1024)) as session:
        cache = RobotsCache(session.fetch, user_agent=UA)
        assert await ask(cache, httpserver, "/public")
        assert not await ask(cache, httpserver, "/private")
    assert cache.statistics().by_status == {"200": 1}


def test_a_robots_txt_cut_at_the_limit_loses_its_partial_last_line() -> None:
    """Cut mid-rule, "Disallow: /private" must not become "Disallow: /" (the whole host)."""
    head = b"User-agent: *\nAllow: /\n"
    rule = b"Disallow: /private\n"
    filler = b"#" * (MAX_ROBOTS_BYTES - len(head) - len(b"Disallow: /") - 1) + b"\n"
    text = decode_robots(head + filler + rule)
    assert text.endswith("#\n")
    assert "Disallow" not in text


async def test_a_twice_gzipped_robots_txt_over_the_limit_is_still_read(
    httpserver: HTTPServer,
) -> None:
    """A large robots.txt gzipped twice: the inner layer passes its cap, the rules still count."""
    rules = b"User-agent: *\nDisallow: /private\n"
    body = gzip.compress(gzip.compress(rules + os.urandom(3 * 1024 * 1024).hex().encode()))
    httpserver.expect_request("/robots.txt").respond_with_data(
        body, content_type="text/plain", headers={"Content-Encoding": "gzip, gzip"}
    )
    async with Session.from_settings(settings(MAX_RESPONSE_BYTES=1024 * 1024)) as session:
        cache = RobotsCache(session.fetch, user_agent=UA)
        assert await ask(cache, httpserver, "/public")
        assert not await ask(cache, httpserver, "/private")
    assert cache.statistics().by_status == {"200": 1}
