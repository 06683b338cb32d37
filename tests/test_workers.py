"""Workers in real crawls: status handling, errbacks, limits, depth and off-site filtering."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request as WRequest
from werkzeug import Response as WResponse

from scrapekit import CloseSpider, DropItem, FetchError, Request, Response, Spider, crawl_async
from scrapekit.scheduler.frontier.memory import MemoryFrontier

LINKS = "<html><body>{}</body></html>"


def page(*hrefs: str) -> str:
    """An HTML page linking to each href."""
    return LINKS.format("".join(f'<a href="{h}">{h}</a>' for h in hrefs))


class Follow(Spider):
    """Yields one item per page and follows every link."""

    name = "follow"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url, "depth": response.request.depth}
        yield from response.follow_all(css="a")


async def test_non_2xx_goes_to_the_errback_with_the_response(httpserver: HTTPServer) -> None:
    """A 404 is not parsed; the errback gets an HttpStatusError carrying the response."""
    httpserver.expect_request("/missing").respond_with_data("nope", status=404)
    failures: list[FetchError] = []

    class Errbacks(Spider):
        name = "errbacks"

        async def start(self) -> Any:
            yield Request(httpserver.url_for("/missing"), errback=self.failed)

        def failed(self, failure: FetchError) -> Iterator[Any]:
            failures.append(failure)
            yield {"failed": failure.request.url if failure.request else None}

    stats = await crawl_async(Errbacks, {"LOG_LEVEL": "WARNING"})
    assert len(failures) == 1
    assert failures[0].response is not None
    assert failures[0].response.status == 404
    assert stats["items"] == 1  # items from an errback flow like any other
    assert stats["responses_by_status"] == {"404": 1}
    assert stats["errors"] == {"http 404": 1}


async def test_allowed_codes_reach_the_callback(httpserver: HTTPServer) -> None:
    """HTTPERROR_ALLOWED_CODES and meta['handle_httpstatus_list'] let error pages through."""
    httpserver.expect_request("/gone").respond_with_data(page(), status=410)
    httpserver.expect_request("/teapot").respond_with_data(page(), status=418)

    class Statuses(Follow):
        name = "statuses"

        async def start(self) -> Any:
            yield Request(httpserver.url_for("/gone"))
            yield Request(httpserver.url_for("/teapot"), meta={"handle_httpstatus_list": [418]})

    stats = await crawl_async(Statuses, {"HTTPERROR_ALLOWED_CODES": [410], "LOG_LEVEL": "WARNING"})
    assert stats["items"] == 2
    assert stats["error_count"] == 0


async def test_connection_failure_without_errback_is_logged_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A request that cannot connect is counted and logged with its URL and reason."""

    class Refused(Spider):
        name = "refused"
        start_urls = ["http://127.0.0.1:9/"]  # the discard port: nothing listens

        def parse(self, response: Response) -> None:
            raise AssertionError("never called")

    stats = await crawl_async(Refused, {"LOG_FORMAT": "json"})
    assert stats["errors"] == {"transport error": 1}
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    failed = [e for e in events if e["event"] == "request failed"]
    assert len(failed) == 1
    assert failed[0]["url"] == "http://127.0.0.1:9/"


def serve_chain(httpserver: HTTPServer, length: int) -> None:
    """/0 -> /1 -> ... -> /length, each page linking to the next (and back to /0)."""
    for i in range(length + 1):
        httpserver.expect_request(f"/{i}").respond_with_data(
            page(f"/{i + 1}", "/0"), content_type="text/html"
        )
    httpserver.expect_request(f"/{length + 1}").respond_with_data(page(), content_type="text/html")


async def test_depth_limit_in_a_crawl(httpserver: HTTPServer) -> None:
    """DEPTH_LIMIT=2 fetches the start page and two levels of links, and counts the drops."""
    serve_chain(httpserver, 5)
    stats = await crawl_async(
        Follow, {"DEPTH_LIMIT": 2, "LOG_LEVEL": "WARNING"}, start_urls=[httpserver.url_for("/0")]
    )
    assert stats["pages"] == 3
    assert stats["scheduler"]["dropped"] == {"depth": 2, "duplicate": 2}


async def test_offsite_links_are_dropped(httpserver: HTTPServer) -> None:
    """Links to hosts outside allowed_domains are counted and never fetched."""
    httpserver.expect_request("/").respond_with_data(
        page("http://elsewhere.test/x", "mailto:a@b.c", "/"), content_type="text/html"
    )

    class Local(Follow):
        name = "local"
        allowed_domains = ["localhost", "127.0.0.1"]

    stats = await crawl_async(Local, {"LOG_LEVEL": "WARNING"}, start_urls=[httpserver.url_for("/")])
    assert stats["pages"] == 1
    assert stats["scheduler"]["dropped"] == {
        "offsite": 1,
        "duplicate": 1,
        "link scheme mailto": 1,
    }


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        pytest.param({"CLOSESPIDER_PAGECOUNT": 3}, "closespider_pagecount", id="pages"),
        pytest.param({"CLOSESPIDER_ITEMCOUNT": 2}, "closespider_itemcount", id="items"),
    ],
)
async def test_closespider_limits_stop_the_crawl(
    httpserver: HTTPServer, setting: dict[str, int], reason: str
) -> None:
    """A CLOSESPIDER_* limit stops scheduling and is the finish reason."""
    serve_chain(httpserver, 30)
    stats = await crawl_async(
        Follow,
        {**setting, "CONCURRENCY": 1, "LOG_LEVEL": "WARNING"},
        start_urls=[httpserver.url_for("/0")],
    )
    assert stats["finish_reason"] == reason
    assert stats["pages"] < 10


async def test_close_spider_from_a_callback(httpserver: HTTPServer) -> None:
    """Raising CloseSpider ends the crawl with its reason."""
    serve_chain(httpserver, 30)

    class Stopper(Follow):
        name = "stopper"

        def parse(self, response: Response) -> Iterator[Any]:
            if response.url.endswith("/3"):
                raise CloseSpider("enough")
            yield from super().parse(response)

    stats = await crawl_async(
        Stopper, {"CONCURRENCY": 1, "LOG_LEVEL": "WARNING"}, start_urls=[httpserver.url_for("/0")]
    )
    assert stats["finish_reason"] == "enough"
    assert stats["pages"] == 4


async def test_pipelines_run_in_order_and_drops_are_counted(httpserver: HTTPServer) -> None:
    """Lower order numbers run first; a DropItem keeps the item out of later stages."""
    serve_chain(httpserver, 4)
    trail: list[str] = []

    class Tag:
        def process_item(self, item: dict[str, Any], spider: Spider) -> dict[str, Any]:
            trail.append("tag")
            item["tag"] = True
            return item

    class Validate:
        async def process_item(self, item: dict[str, Any], spider: Spider) -> dict[str, Any]:
            trail.append("validate")
            assert item["tag"]
            if item["url"].endswith("/0"):
                raise DropItem("start page")
            return item

    stats = await crawl_async(
        Follow,
        {"PIPELINES": {Validate: 200, Tag: 100}, "CONCURRENCY": 1, "LOG_LEVEL": "WARNING"},
        start_urls=[httpserver.url_for("/0")],
    )
    assert trail[:2] == ["tag", "validate"]
    assert stats["items"] == 5
    assert stats["pipelines"]["dropped"] == {"start page": 1}


async def test_progress_event_under_cron(
    httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a terminal, a `progress` event is logged every LOG_STATS_INTERVAL seconds."""

    def slow(_: Any) -> Any:
        import time

        from werkzeug import Response as WResponse

        time.sleep(0.35)
        return WResponse(page(), content_type="text/html")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    await crawl_async(
        Follow,
        {"LOG_STATS_INTERVAL": 0.1, "LOG_FORMAT": "json"},
        start_urls=[httpserver.url_for("/slow")],
    )
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    progress = [e for e in events if e["event"] == "progress"]
    assert len(progress) >= 2
    assert {"pages", "items", "errors", "queue", "pages_per_second", "elapsed"} <= progress[
        0
    ].keys()


async def test_links_httpx_cannot_send_never_kill_the_crawl(httpserver: HTTPServer) -> None:
    """A host with a zero-width space or a path with a control character is one counted drop."""
    httpserver.expect_request("/").respond_with_data(
        page("http://ex\u200bample.test/", "/a\x01b", "/ok"), content_type="text/html"
    )
    httpserver.expect_request("/ok").respond_with_data(page(), content_type="text/html")
    stats = await crawl_async(Follow, {"LOG_LEVEL": "ERROR"}, start_urls=[httpserver.url_for("/")])
    assert stats["pages"] == 2
    assert stats["finish_reason"] == "finished"
    assert stats["dropped"]["requests"]["link malformed"] == 2


async def test_unknown_callback_name_is_an_error_not_a_crash(httpserver: HTTPServer) -> None:
    """A Request naming a missing spider method is logged and counted; the crawl goes on."""
    httpserver.expect_request("/a").respond_with_data("a")
    httpserver.expect_request("/b").respond_with_data("b")

    class Typo(Spider):
        name = "typo"

        async def start(self) -> Any:
            yield Request(httpserver.url_for("/a"), callback="parse_itme")
            yield Request(httpserver.url_for("/b"))

        def parse(self, response: Response) -> Iterator[Any]:
            yield {"ok": response.url}

    stats = await crawl_async(Typo, {"LOG_LEVEL": "CRITICAL"})
    assert (stats["items"], stats["errors"]) == (1, {"callback": 1})


async def test_lazy_start_stops_pulling_once_the_crawl_is_closed(httpserver: HTTPServer) -> None:
    """After a CLOSESPIDER limit, a huge start() is not drained: it stops at once."""
    httpserver.expect_request("/n").respond_with_data("ok")
    pulled = {"n": 0}

    class Huge(Spider):
        name = "huge"

        async def start(self) -> Any:
            for i in range(1_000_000):
                pulled["n"] += 1
                yield Request(httpserver.url_for("/n"), params={"i": i})

        def parse(self, response: Response) -> None:
            return None

    stats = await crawl_async(Huge, {"CLOSESPIDER_PAGECOUNT": 5, "LOG_LEVEL": "WARNING"})
    assert stats["finish_reason"] == "closespider_pagecount"
    assert pulled["n"] < 200
    assert stats["scheduler"]["frontier"]["pending"] < 200


async def test_start_that_fails_at_once_fails_the_crawl() -> None:
    """A start() that raises before its first request finishes as start_failed."""

    class Broken(Spider):
        name = "broken"

        async def start(self) -> Any:
            raise ConnectionError("cannot reach the API")
            yield  # pragma: no cover - makes this an async generator

    stats = await crawl_async(Broken, {"LOG_LEVEL": "CRITICAL"})
    assert stats["finish_reason"] == "start_failed"
    assert stats["errors"] == {"callback": 1}


async def test_a_feed_that_cannot_write_stops_the_crawl(httpserver: HTTPServer) -> None:
    """An exporter write error (a full disk) closes the crawl as feed_error, not item by item."""
    serve_chain(httpserver, 400)  # enough items to fill the exporter's write buffer
    stats = await crawl_async(
        Follow,
        {"FEEDS": {"/dev/full": {"format": "jsonl"}}, "CONCURRENCY": 2, "LOG_LEVEL": "CRITICAL"},
        start_urls=[httpserver.url_for("/0")],
    )
    assert stats["finish_reason"] == "feed_error"
    assert stats["errors"]["feed"] >= 1
    assert stats["pages"] < 401


async def test_a_worker_fetches_on_while_its_last_page_commits(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one worker, the second page is fetched while the first page's commit has not
    landed yet (a durable frontier's group commit takes a few ms); the commit then lands,
    and the crawl ends only once every commit has."""
    seen_b = threading.Event()

    def handle(request: WRequest) -> WResponse:
        if request.path == "/b":
            seen_b.set()
        return WResponse("<p>ok</p>", content_type="text/html")

    httpserver.expect_request("/a").respond_with_handler(handle)
    httpserver.expect_request("/b").respond_with_handler(handle)
    landed_before_b: list[bool] = []
    commit = MemoryFrontier.commit

    async def slow_commit(self: MemoryFrontier, lease: Any, *args: Any, **kwargs: Any) -> int:
        if lease is not None and lease.request.url.endswith("/a"):
            # Held until /b reached the server: a worker waiting for this commit never
            # sends /b, and the wait times out.
            landed_before_b.append(not await asyncio.to_thread(seen_b.wait, 5.0))
        return await commit(self, lease, *args, **kwargs)

    monkeypatch.setattr(MemoryFrontier, "commit", slow_commit)

    class Two(Spider):
        name = "two"
        start_urls = [httpserver.url_for("/a"), httpserver.url_for("/b")]

        def parse(self, response: Response) -> Iterator[Any]:
            yield {"url": response.url}

    stats = await crawl_async(
        Two, {"LOG_LEVEL": "CRITICAL", "FRONTIER": "memory", "CONCURRENCY": 1}
    )
    assert landed_before_b == [False]
    assert stats["items"] == 2
    assert stats["finish_reason"] == "finished"
