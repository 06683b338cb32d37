"""Credentials belong to one origin (scheme, host, port): other origins never get them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request as WRequest
from werkzeug import Response as WResponse

from scrapekit import Request, Response, Spider, crawl_async
from scrapekit.session import Session
from scrapekit.session.credentials import CredentialScope
from scrapekit.settings import Settings


def settings(**overrides: object) -> Settings:
    """Validated defaults plus overrides."""
    return Settings.load(project_file=None, spider_cls=None, env={}, overrides=overrides)


def echo(request: WRequest) -> WResponse:
    """The Authorization header the request carried, as JSON (null when none)."""
    return WResponse(json.dumps(request.headers.get("Authorization")))


@pytest.fixture
def servers(httpserver: HTTPServer, other_server: HTTPServer) -> tuple[HTTPServer, HTTPServer]:
    """Both servers echo /echo and redirect /to-other or /to-home to the other one's /echo."""
    other = other_server
    for server in (httpserver, other):
        server.expect_request("/echo").respond_with_handler(echo)
    httpserver.expect_request("/to-other").respond_with_data(
        "", status=302, headers={"Location": other.url_for("/echo")}
    )
    other.expect_request("/to-home").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/echo")}
    )
    return httpserver, other


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    """A session with default settings."""
    async with Session.from_settings(settings()) as s:
        yield s


async def authorization(session: Session, url: str, **kwargs: Any) -> str | None:
    """The Authorization header the server saw for a fetch of `url`."""
    value = (await session.fetch(Request(url, **kwargs))).json()
    assert value is None or isinstance(value, str)
    return value


async def test_auth_does_not_follow_a_redirect_to_another_port(
    servers: tuple[HTTPServer, HTTPServer], session: Session
) -> None:
    """session.auth goes to its first origin only, not to the same host on another port."""
    home, other = servers
    session.auth = ("u", "p")
    assert (await authorization(session, home.url_for("/echo")) or "").startswith("Basic ")
    assert await authorization(session, home.url_for("/to-other")) is None
    assert await authorization(session, other.url_for("/echo")) is None
    assert (await authorization(session, other.url_for("/to-home")) or "").startswith("Basic ")


async def test_a_persistent_authorization_header_stays_with_its_origin(
    servers: tuple[HTTPServer, HTTPServer], session: Session
) -> None:
    """An Authorization header in session.headers (Spider.headers) is scoped like auth."""
    home, other = servers
    session.headers["Authorization"] = "Bearer crawl-token"
    assert await authorization(session, home.url_for("/echo")) == "Bearer crawl-token"
    assert await authorization(session, other.url_for("/echo")) is None
    assert await authorization(session, home.url_for("/to-other")) is None
    assert await authorization(session, other.url_for("/to-home")) == "Bearer crawl-token"


async def test_a_requests_own_authorization_stays_on_its_origin(
    servers: tuple[HTTPServer, HTTPServer], session: Session
) -> None:
    """A header set on one Request goes to that request's origin, and not past a redirect."""
    home, other = servers
    session.headers["Authorization"] = "Bearer crawl-token"
    await authorization(session, home.url_for("/echo"))  # pins the session's origin to home
    mine = {"Authorization": "Bearer mine"}
    assert await authorization(session, other.url_for("/echo"), headers=mine) == "Bearer mine"
    assert await authorization(session, home.url_for("/to-other"), headers=mine) is None


async def test_auth_domain_opts_in_to_every_port_of_the_domain(
    servers: tuple[HTTPServer, HTTPServer], session: Session
) -> None:
    """With auth_domain set, credentials go to that domain's other origins too."""
    home, _ = servers
    session.auth = ("u", "p")
    session.auth_domain = "localhost"
    assert (await authorization(session, home.url_for("/to-other")) or "").startswith("Basic ")


@pytest.mark.parametrize(
    ("domain", "first", "url", "allowed"),
    [
        pytest.param(None, "https://a.test/", "https://a.test:443/x", True, id="default-port"),
        pytest.param(None, "https://a.test/", "http://a.test/", False, id="to-http"),
        pytest.param(None, "http://a.test/", "https://a.test/", True, id="upgrade-to-https"),
        pytest.param(None, "http://a.test/", "https://a.test:8443/", False, id="https-other-port"),
        pytest.param(None, "http://a.test:8080/", "https://a.test/", False, id="from-other-port"),
        pytest.param(None, "https://a.test/", "https://a.test:8443/", False, id="other-port"),
        pytest.param(None, "https://a.test/", "https://b.a.test/", False, id="subdomain"),
        pytest.param("a.test", "https://a.test/", "https://b.a.test:8443/", True, id="domain"),
        pytest.param("a.test", "https://a.test/", "http://b.a.test/", False, id="domain-to-http"),
        pytest.param("a.test", "http://a.test/", "http://b.a.test/", True, id="domain-http"),
        pytest.param("a.test", "https://a.test/", "https://a.test.evil/", False, id="lookalike"),
        pytest.param("", "https://a.test/", "http://other.test/", False, id="any-but-http"),
    ],
)
def test_credential_scope(domain: str | None, first: str, url: str, allowed: bool) -> None:
    """The first URL pins the origin; auth_domain widens the hosts, never down to http."""
    scope = CredentialScope()
    scope.domain = domain
    assert scope.allows(httpx2.URL(first))
    assert scope.allows(httpx2.URL(url)) is allowed


async def test_a_crawl_sends_spider_headers_auth_only_to_its_origin(
    servers: tuple[HTTPServer, HTTPServer],
) -> None:
    """Spider.headers' Authorization reaches the start origin, not a linked other port."""
    home, other = servers
    seen: dict[str, str | None] = {}

    def record(name: str) -> Any:
        def handler(request: WRequest) -> WResponse:
            seen[name] = request.headers.get("Authorization")
            link = other.url_for("/page")
            return WResponse(f'<a href="{link}">next</a>', content_type="text/html")

        return handler

    home.expect_request("/page").respond_with_handler(record("home"))
    other.expect_request("/page").respond_with_handler(record("other"))

    class Follow(Spider):
        name = "follow"
        headers = {"Authorization": "Bearer crawl-token"}

        def parse(self, response: Response) -> Iterator[Any]:
            yield from response.follow_all(css="a")

    stats = await crawl_async(
        Follow,
        {"LOG_LEVEL": "ERROR", "COOKIES_PERSIST": False, "ROBOTSTXT_OBEY": False},
        start_urls=[home.url_for("/page")],
    )
    assert stats["pages"] == 2
    assert seen == {"home": "Bearer crawl-token", "other": None}
