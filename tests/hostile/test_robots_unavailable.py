"""robots.txt that never answers, or answers 5xx: the wait is bounded, loud, and counted."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from scrapekit import Request, Response, Spider, crawl_async
from tests.conftest import Project
from tests.hostile.servers import SilentServer

#: Compressed time: a budget far shorter than the fetch timeout and the retry interval, so an
#: unbounded wait (3 fetches of DOWNLOAD_TIMEOUT plus 2 holds of ROBOTSTXT_RETRY_SECONDS, as
#: before ROBOTSTXT_TIMEOUT) would take 25 s here instead of half a second.
BOUNDED = {
    "ROBOTSTXT_OBEY": True,
    "ROBOTSTXT_TIMEOUT": 0.5,
    "ROBOTSTXT_RETRY_SECONDS": 5.0,
    "DOWNLOAD_TIMEOUT": 5.0,
    "COOKIES_PERSIST": False,
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "INFO",
}


class Pages(Spider):
    """Five pages on one host."""

    name = "pages"

    def __init__(self, base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base

    async def start(self) -> Any:
        for n in range(5):
            yield Request(f"{self.base}/p/{n}")

    def parse(self, response: Response) -> Any:
        yield {"url": response.url}


def warnings(err: str) -> list[dict[str, Any]]:
    """The WARNING events of a JSON log."""
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [e for e in events if e.get("level") == "warning"]


def assert_given_up(stats: dict[str, Any], err: str, origin: str, error: str) -> None:
    """No page, five drops as unavailable, and one WARNING naming the host and the fix."""
    assert stats["pages"] == 0
    assert stats["dropped"]["requests"] == {"robots.txt unavailable": 5}
    (warning,) = warnings(err)
    assert warning["origin"] == origin
    assert error in warning["error"]
    assert "ROBOTSTXT_OBEY=false" in warning["fix"]


async def test_silent_robots_txt_is_given_up_after_robotstxt_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A server that accepts and never answers holds the host for ROBOTSTXT_TIMEOUT, no more."""
    async with SilentServer() as server:
        started = time.monotonic()
        stats = await crawl_async(Pages, BOUNDED, base=server.origin)
        elapsed = time.monotonic() - started
    assert elapsed < 3.0
    assert_given_up(stats, capsys.readouterr().err, server.origin, "ROBOTSTXT_TIMEOUT")
    assert stats["robots"]["fetched"] == 1  # the one attempt used the whole budget
    assert server.connections == 1  # and no page was requested


async def test_robots_txt_500_is_given_up_after_robotstxt_timeout(
    httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A robots.txt answering 500 holds the host for ROBOTSTXT_TIMEOUT, then its pages drop."""
    httpserver.expect_request("/robots.txt").respond_with_data("down", status=500)
    base = httpserver.url_for("").rstrip("/")
    started = time.monotonic()
    stats = await crawl_async(Pages, BOUNDED, base=base)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 3.0
    assert_given_up(stats, capsys.readouterr().err, base, "HTTP 500")
    assert all(request.path == "/robots.txt" for request, _ in httpserver.log)


async def test_robots_txt_that_recovers_within_the_budget_loses_nothing(
    httpserver: HTTPServer,
) -> None:
    """Two 503s, then the file: the held requests are all crawled, nothing dropped."""
    answers = iter([503, 503])

    def robots(_: Any) -> Any:
        from werkzeug import Response as WResponse

        status = next(answers, 200)
        return WResponse("User-agent: *\nAllow: /\n" if status == 200 else "", status=status)

    httpserver.expect_request("/robots.txt").respond_with_handler(robots)
    httpserver.expect_request("/p/0").respond_with_data("<p>ok</p>", content_type="text/html")
    base = httpserver.url_for("").rstrip("/")

    class One(Pages):
        async def start(self) -> Any:
            yield Request(f"{self.base}/p/0")

    settings = {**BOUNDED, "ROBOTSTXT_TIMEOUT": 5.0, "ROBOTSTXT_RETRY_SECONDS": 0.1}
    stats = await crawl_async(One, {**settings, "LOG_LEVEL": "CRITICAL"}, base=base)
    assert stats["items"] == 1
    assert stats["dropped"]["requests"] == {}
    assert stats["robots"]["by_status"] == {"5xx": 2, "200": 1}


PAGES_SPIDER = """
from scrapekit import Spider


class Pages(Spider):
    name = "pages"

    def __init__(self, base, **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [f"{base}/p/{n}" for n in range(3)]

    def parse(self, response):
        yield {"url": response.url}
"""


@pytest.mark.subprocess
def test_cli_exits_1_when_robots_txt_stays_unavailable(
    project: Project, httpserver: HTTPServer
) -> None:
    """Every page dropped because robots.txt stayed down: the crawl did not do its job."""
    httpserver.expect_request("/robots.txt").respond_with_data("down", status=503)
    project.write_settings(
        'SPIDER_MODULES = ["spiders"]\nROBOTSTXT_OBEY = true\nROBOTSTXT_TIMEOUT = 0.3\n'
    )
    project.add_spider("pages", PAGES_SPIDER)
    result = project.run("crawl", "pages", "-a", "base=" + httpserver.url_for("").rstrip("/"))
    assert "ROBOTSTXT_OBEY=false" in result.stderr
    assert result.returncode == 1
