"""A redirect whose Location cannot be followed fails its request cleanly, to the errback.

The probe: a Location of `http://[::1`, `javascript:alert(1)` or a 100 KB path ended in a
"worker error" (httpx2.StreamClosed: the 3xx was closed, then read as the answer), counted as
"internal", no errback; a redirect to port 99999 reached the errback with no request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import pytest
from pytest_httpserver import HTTPServer

from scrapekit import FetchError, Request, Response, Spider, crawl_async
from scrapekit.exceptions import BadRedirect, BadRequestMeta, InvalidURL
from scrapekit.session import Session
from scrapekit.settings import Settings
from tests.hostile.servers import RawServer

LONG = "/" + "a" * 70_000  # past httpx2's 65,536-character URL limit

TARGETS = [
    pytest.param("http://[::1", BadRedirect, "http://[::1", id="unclosed-ipv6"),
    pytest.param(LONG, BadRedirect, "(70001 characters)", id="70-kb-path"),
    pytest.param("javascript:alert(1)", InvalidURL, "javascript:alert(1)", id="javascript"),
    pytest.param("http://127.0.0.1:99999/x", InvalidURL, ":99999/x", id="port-99999"),
]


def settings(**overrides: object) -> Settings:
    """Validated defaults plus overrides."""
    return Settings.load(project_file=None, spider_cls=None, env={}, overrides=overrides)


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    """A session with default redirect handling."""
    async with Session.from_settings(settings(DOWNLOAD_TIMEOUT=5.0)) as s:
        yield s


def redirecting_to(location: str) -> RawServer:
    """A server whose /bad answers 302 to `location`, and every other path 200."""
    return RawServer(
        {"/bad": ["HTTP/1.1 302 Found", f"Location: {location}"]},
        default=["HTTP/1.1 200 OK", "Content-Type: text/html"],
        body=b"<p>fine</p>",
    )


@pytest.mark.parametrize(("location", "error", "named"), TARGETS)
async def test_an_unfollowable_location_is_a_clean_fetch_error(
    session: Session, location: str, error: type[FetchError], named: str
) -> None:
    """The fetch raises the rule's error, carrying its request, naming the page and the
    Location (cut short in the message), counted by reason."""
    async with redirecting_to(location) as server:
        request = Request(server.url("/bad"))
        with pytest.raises(error) as info:
            await session.fetch(request)
    assert info.value.request is request
    message = str(info.value)
    assert server.url("/bad") in message
    assert named in message
    assert len(message) < 1000
    assert session.statistics().errors == {error.reason: 1}


class Redirected(Spider):
    """Fetches /bad and /good; records what the errback receives."""

    name = "redirected"
    failures: ClassVar[list[FetchError]] = []

    def __init__(self, base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base

    async def start(self) -> AsyncIterator[Request]:
        for path in ("/bad", "/good"):
            yield Request(self.base + path, errback=self.failed)

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"page": response.url}

    def failed(self, failure: FetchError) -> Iterator[dict[str, Any]]:
        Redirected.failures.append(failure)
        yield {"failed": failure.request.url if failure.request else None}


@pytest.mark.parametrize(("location", "error", "named"), TARGETS)
async def test_the_errback_gets_the_failure_with_its_request(
    location: str, error: type[FetchError], named: str
) -> None:
    """In a crawl the errback runs with the failure and its request; the error is counted by
    its reason, never as "internal", and the other page is scraped."""
    Redirected.failures.clear()
    async with redirecting_to(location) as server:
        stats = await crawl_async(
            Redirected,
            {"LOG_LEVEL": "CRITICAL", "ROBOTSTXT_OBEY": False, "COOKIES_PERSIST": False},
            base=server.origin,
        )
    assert stats["errors"] == {error.reason: 1}
    assert [type(failure) for failure in Redirected.failures] == [error]
    request = Redirected.failures[0].request
    assert request is not None
    assert request.url == server.url("/bad")
    assert stats["items"] == 2


class Page(Spider):
    """Scrapes its start page."""

    name = "page"

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"page": response.url}


async def test_a_robots_txt_redirect_that_cannot_be_followed_is_no_robots_txt() -> None:
    """robots.txt redirecting to an unparseable Location is unavailable (RFC 9309, like a
    redirect loop): the site is crawled, with no error and no wait."""
    server = RawServer(
        {"/robots.txt": ["HTTP/1.1 302 Found", "Location: http://[::1"]},
        default=["HTTP/1.1 200 OK", "Content-Type: text/html"],
        body=b"<p>fine</p>",
    )
    async with server:
        stats = await crawl_async(
            Page,
            {"LOG_LEVEL": "CRITICAL", "ROBOTSTXT_OBEY": True, "COOKIES_PERSIST": False},
            start_urls=[server.url("/page")],
        )
    assert (stats["items"], stats["errors"]) == (1, {})
    assert server.paths == ["/robots.txt", "/page"]


async def test_an_error_raised_without_its_request_gets_it_at_the_session(
    session: Session,
) -> None:
    """The session is the one boundary where the request is attached: an error raised deeper
    with none (here by the crawl's redirect check) reaches the caller with its request."""

    async def refuse(request: Request, target: str) -> str | None:
        raise InvalidURL(target, "refused by the check")

    session.redirect_check = refuse
    async with redirecting_to("/elsewhere") as server:
        request = Request(server.url("/bad"))
        with pytest.raises(InvalidURL, match="refused by the check") as info:
            await session.fetch(request)
    assert info.value.request is request


class BadMeta(Spider):
    """One request whose meta the fetch cannot use, one good one; failures to the errback."""

    name = "badmeta"
    failures: ClassVar[list[FetchError]] = []

    async def start(self) -> AsyncIterator[Request]:
        yield Request(self.base + "/bad", meta={"download_timeout": "abc"}, errback=self.failed)
        yield Request(self.base + "/good", errback=self.failed)

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"page": response.url}

    def failed(self, failure: FetchError) -> Iterator[dict[str, Any]]:
        BadMeta.failures.append(failure)
        yield {"failed": failure.request.url if failure.request else None}


async def test_a_meta_value_the_fetch_cannot_use_fails_that_request_alone(
    httpserver: HTTPServer,
) -> None:
    """In a crawl, a request whose meta the fetch cannot use fails once (not retried), reaches
    its errback as BadRequestMeta, is counted as "bad meta" (never "internal"), and the other
    page is scraped."""
    httpserver.expect_request("/good").respond_with_data("<p>ok</p>", content_type="text/html")
    BadMeta.failures.clear()
    stats = await crawl_async(
        BadMeta,
        {"LOG_LEVEL": "CRITICAL", "ROBOTSTXT_OBEY": False, "COOKIES_PERSIST": False},
        base=httpserver.url_for("").rstrip("/"),
    )
    assert stats["errors"] == {"bad meta": 1}
    assert [type(failure) for failure in BadMeta.failures] == [BadRequestMeta]
    assert stats["retries"]["retries"] == 0
    assert stats["items"] == 2
    assert [entry[0].path for entry in httpserver.log] == ["/good"]
