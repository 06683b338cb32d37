"""Every kind of callback runs through a real crawl, and a failing callback never stops it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from scrapekit import Request, Response, Spider, crawl_async

PAGE = '<html><body><a href="/{0}">next</a><h1>{0}</h1></body></html>'


def serve_pages(httpserver: HTTPServer, *names: str) -> None:
    """Serve /<name> for each name as a tiny HTML page."""
    for name in names:
        httpserver.expect_request(f"/{name}").respond_with_data(
            PAGE.format(name), content_type="text/html"
        )


def json_events(err: str) -> list[dict[str, Any]]:
    """The JSON log events a crawl wrote to stderr."""
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


@dataclass
class Book:
    """A dataclass item."""

    title: str


class Kinds(Spider):
    """One callback of each kind, chained: function -> generator -> coroutine -> async gen."""

    name = "kinds"

    def parse(self, response: Response) -> list[Any]:
        return [{"kind": "function"}, Request(response.urljoin("/b"), callback=self.gen)]

    def gen(self, response: Response) -> Iterator[Any]:
        yield Book(title="generator")
        yield Request(response.urljoin("/c"), callback=self.coro)

    async def coro(self, response: Response) -> Request:
        self.collected.append({"kind": "coroutine"})
        return Request(response.urljoin("/d"), callback="agen")

    async def agen(self, response: Response) -> AsyncIterator[Any]:
        yield {"kind": "async generator", "h1": response.css_first("h1").text()}
        yield None  # ignored


async def test_every_callback_kind_produces_items_and_requests(
    httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Functions, generators, coroutines and async generators all feed the crawl."""
    serve_pages(httpserver, "a", "b", "c", "d")
    seen: list[Any] = []

    class Collect:
        def process_item(self, item: Any, spider: Spider) -> Any:
            seen.append(item)
            return item

    Kinds.collected = []  # type: ignore[attr-defined]
    stats = await crawl_async(
        Kinds,
        {"PIPELINES": {Collect: 100}, "LOG_FORMAT": "json"},
        start_urls=[httpserver.url_for("/a")],
    )
    assert seen == [
        {"kind": "function"},
        Book(title="generator"),
        {"kind": "async generator", "h1": "d"},
    ]
    assert Kinds.collected == [{"kind": "coroutine"}]  # type: ignore[attr-defined]
    assert stats["pages"] == 4
    assert stats["items"] == 3
    assert stats["error_count"] == 0


class Faulty(Spider):
    """A callback that yields an item and a link, then raises."""

    name = "faulty"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"page": response.url}
        yield from response.follow_all(css="a")
        if response.url.endswith("/a"):
            raise ValueError("broken page")


async def test_callback_exception_is_logged_counted_and_the_crawl_goes_on(
    httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a callback yielded before raising is kept; the error names the URL and traceback."""
    httpserver.expect_request("/a").respond_with_data(PAGE.format("b"), content_type="text/html")
    httpserver.expect_request("/b").respond_with_data(PAGE.format("a"), content_type="text/html")
    stats = await crawl_async(Faulty, {"LOG_FORMAT": "json"}, start_urls=[httpserver.url_for("/a")])
    assert stats["pages"] == 2  # the link yielded before the exception was followed
    assert stats["items"] == 2
    assert stats["errors"] == {"callback": 1}
    errors = [e for e in json_events(capsys.readouterr().err) if e["event"] == "callback error"]
    assert len(errors) == 1
    assert errors[0]["url"] == httpserver.url_for("/a")
    assert "ValueError: broken page" in errors[0]["exception"]
    assert "Faulty.parse" in errors[0]["error"]


class BadOutput(Spider):
    """A callback that yields something that is neither an item nor a Request."""

    name = "bad-output"

    def parse(self, response: Response) -> Iterator[Any]:
        yield 42
        yield {"ok": True}


async def test_unknown_output_is_an_error_but_later_outputs_survive(
    httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Yielding an int is logged with a hint and counted; the next item still goes through."""
    serve_pages(httpserver, "a")
    stats = await crawl_async(
        BadOutput, {"LOG_FORMAT": "json"}, start_urls=[httpserver.url_for("/a")]
    )
    assert stats["items"] == 1
    assert stats["errors"] == {"bad output": 1}
    event = next(
        e for e in json_events(capsys.readouterr().err) if e["event"] == "bad callback output"
    )
    assert event["output_type"] == "int"
