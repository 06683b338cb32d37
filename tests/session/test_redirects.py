"""Redirects the session follows itself: cookie gates are not loops; Location must be one URL."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request as WRequest
from werkzeug import Response as WResponse

from scrapekit import Request, Response, Spider, crawl_async
from scrapekit.exceptions import BadRedirect, TooManyRedirects
from scrapekit.politeness.retry import GiveUp, RetryPolicy
from scrapekit.session import Session
from scrapekit.settings import Settings
from tests.hostile.servers import RawServer


def settings(**overrides: object) -> Settings:
    """Validated defaults plus overrides."""
    return Settings.load(project_file=None, spider_cls=None, env={}, overrides=overrides)


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    """A session allowing five redirects."""
    async with Session.from_settings(settings(REDIRECT_MAX_TIMES=5)) as s:
        yield s


def consent_gate(request: WRequest) -> WResponse:
    """/gate without the consent cookie: set it and redirect to /gate itself."""
    if request.cookies.get("consent") == "yes":
        return WResponse("<p>inside</p>", content_type="text/html")
    response = WResponse("", status=302, headers={"Location": "/gate"})
    response.set_cookie("consent", "yes", path="/")
    return response


async def test_a_cookie_gate_redirecting_to_itself_is_followed(
    httpserver: HTTPServer, session: Session
) -> None:
    """A page that sets a cookie and redirects to itself is fetched again with the cookie."""
    httpserver.expect_request("/gate").respond_with_handler(consent_gate)
    url = httpserver.url_for("/gate")
    response = await session.fetch(Request(url))
    assert (response.url, response.text) == (url, "<p>inside</p>")
    assert response.redirect_urls == (url,)


class Gated(Spider):
    """Scrapes the page behind a consent gate."""

    name = "gated"

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"text": response.css_first("p").text()}


async def test_a_crawl_gets_past_a_cookie_gate(httpserver: HTTPServer) -> None:
    """The crawl scrapes the gated page instead of failing it as a redirect loop."""
    httpserver.expect_request("/gate").respond_with_handler(consent_gate)
    stats = await crawl_async(
        Gated,
        {"LOG_LEVEL": "ERROR", "COOKIES_PERSIST": False, "ROBOTSTXT_OBEY": False},
        start_urls=[httpserver.url_for("/gate")],
    )
    assert (stats["items"], stats["errors"]) == (1, {})


async def test_a_self_redirect_without_a_cookie_change_is_a_loop(
    httpserver: HTTPServer, session: Session
) -> None:
    """Redirected to itself with the same cookies it was sent: a loop, caught at once."""
    calls = itertools.count(1)

    def same_cookie(_: WRequest) -> WResponse:
        next(calls)
        response = WResponse("", status=302, headers={"Location": "/self"})
        response.set_cookie("seen", "1", path="/")
        return response

    httpserver.expect_request("/self").respond_with_handler(same_cookie)
    with pytest.raises(TooManyRedirects, match=r"redirect loop \(.*/self -> .*/self -> .*/self\)"):
        await session.fetch(Request(httpserver.url_for("/self")))
    assert next(calls) == 3  # the first visit, the one with the new cookie, nothing more


async def test_a_new_cookie_on_every_hop_stops_at_the_limit(
    httpserver: HTTPServer, session: Session
) -> None:
    """A self-redirect that sets a new cookie value each time stops at REDIRECT_MAX_TIMES."""
    counter = itertools.count()

    def new_cookie(_: WRequest) -> WResponse:
        response = WResponse("", status=302, headers={"Location": "/spin"})
        response.set_cookie("n", str(next(counter)), path="/")
        return response

    httpserver.expect_request("/spin").respond_with_handler(new_cookie)
    with pytest.raises(TooManyRedirects, match=r"more than 5 redirects \(REDIRECT_MAX_TIMES\)"):
        await session.fetch(Request(httpserver.url_for("/spin")))
    assert len(httpserver.log) == 6


async def test_two_different_locations_are_refused(session: Session) -> None:
    """Two different Location headers fail with both values named, never joined into a URL."""
    answers = {"/fork": ["HTTP/1.1 302 Found", "Location: /left", "Location: /right"]}
    async with RawServer(answers) as server:
        request = Request(server.url("/fork"))
        with pytest.raises(BadRedirect) as info:
            await session.fetch(request)
    message = str(info.value)
    assert request.url in message
    assert "'/left', '/right'" in message
    assert info.value.request is request
    assert server.paths == ["/fork"]
    assert RetryPolicy().on_error(request, info.value) == GiveUp("bad redirect", 1, False)


async def test_identical_repeated_locations_are_followed(session: Session) -> None:
    """The same Location twice is harmless: the one target is followed."""
    answers = {
        "/twice": ["HTTP/1.1 301 Moved Permanently", "Location: /next", "Location: /next"],
        "/next": ["HTTP/1.1 204 No Content"],
    }
    async with RawServer(answers) as server:
        response = await session.fetch(Request(server.url("/twice")))
        target = server.url("/next")
    assert (response.url, response.status) == (target, 204)
    assert server.paths == ["/twice", "/next"]
