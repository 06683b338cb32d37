"""The engine end to end through the Python API: stats, events, lazy start requests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from scrapekit import Request, Response, Spider, crawl, crawl_async
from scrapekit.demo import DemoSite


class Catalogue(Spider):
    """Follows listing pages and yields one item per product page."""

    name = "catalogue"
    allowed_domains = ["127.0.0.1"]

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="article.product h3 a", callback=self.product)
        yield from response.follow_all(css="ul.pager li.next a")
        yield from response.follow_all(css="footer a, ul.categories a")

    def product(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"title": response.css_first("h1").text(strip=True)}


def test_crawl_returns_and_writes_the_stats(demo_site: DemoSite, tmp_path: Path) -> None:
    """crawl() returns the stats record and writes the same record to STATS_FILE."""
    stats_file = tmp_path / "stats" / "crawl.json"
    stats = crawl(
        Catalogue,
        {"STATS_FILE": str(stats_file), "LOG_LEVEL": "WARNING", "CLOSESPIDER_ITEMCOUNT": 0},
        start_urls=[demo_site.url + "/catalogue/page-1.html"],
    )
    assert json.loads(stats_file.read_text()) == stats
    assert stats["items"] == len(demo_site.products)
    assert stats["requests"] == stats["pages"] == sum(stats["responses_by_status"].values())
    assert stats["pages_per_second"] > 0
    assert stats["elapsed"] > 0
    dropped = stats["dropped"]["requests"]
    # The demo pages carry mailto:, tel:, javascript: and malformed links: each is counted.
    assert {"link scheme mailto", "link scheme tel", "link scheme javascript"} <= dropped.keys()
    assert dropped["link malformed"] >= 1
    assert dropped["duplicate"] > 0


async def test_response_events_carry_the_request_fields(
    httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """At DEBUG each response is logged with spider, method, url, status and elapsed."""
    httpserver.expect_request("/p").respond_with_data("<p>x</p>", content_type="text/html")

    class One(Spider):
        name = "one"
        start_urls = [httpserver.url_for("/p")]

        def parse(self, response: Response) -> None:
            return None

    await crawl_async(One, {"LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"})
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    response = next(e for e in events if e["event"] == "response")
    assert response["spider"] == "one"
    assert (response["method"], response["url"], response["status"]) == (
        "GET",
        httpserver.url_for("/p"),
        200,
    )
    assert 0 < response["elapsed"] < 5
    assert events[-1]["event"] == "crawl finished"


async def test_start_requests_are_pulled_lazily(httpserver: HTTPServer) -> None:
    """start() is consumed as the frontier drains, not all at once."""
    httpserver.expect_request("/n").respond_with_data("ok", content_type="text/plain")
    pulled_before_first_page: list[int] = []
    state = {"yielded": 0}

    class Many(Spider):
        name = "many"

        async def start(self) -> AsyncIterator[Request]:
            for i in range(500):
                state["yielded"] += 1
                yield Request(httpserver.url_for("/n"), params={"i": i})

        def parse(self, response: Response) -> None:
            if not pulled_before_first_page:
                pulled_before_first_page.append(state["yielded"])

    stats = await crawl_async(Many, {"CONCURRENCY": 2, "LOG_LEVEL": "WARNING"})
    assert stats["pages"] == 500
    assert pulled_before_first_page[0] <= 10  # about 2 x CONCURRENCY, not 500
