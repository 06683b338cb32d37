"""The shared identity over real HTTP: persisted headers and auth, and the cookie jar's traps."""

from __future__ import annotations

import base64
import glob
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request as WRequest
from werkzeug import Response as WResponse

from scrapekit import Request, Response, Spider, crawl_async
from scrapekit.session import Session
from scrapekit.settings import Settings


def settings(**overrides: object) -> Settings:
    """Validated defaults plus overrides."""
    return Settings.load(project_file=None, spider_cls=None, env={}, overrides=overrides)


def echo(request: WRequest) -> WResponse:
    """The request's headers, back as JSON."""
    return WResponse(json.dumps(dict(request.headers)), content_type="application/json")


@pytest.fixture
def echo_url(httpserver: HTTPServer) -> str:
    """An endpoint answering with the headers it received."""
    httpserver.expect_request("/echo").respond_with_handler(echo)
    return httpserver.url_for("/echo")


async def test_session_headers_persist_and_request_headers_do_not(echo_url: str) -> None:
    """session.headers apply to every later request; a Request's headers only to itself."""
    async with Session.from_settings(settings()) as session:
        session.headers.update({"X-Team": "scrapers"})
        first = (await session.fetch(Request(echo_url, headers={"X-Once": "1"}))).json()
        second = (await session.fetch(Request(echo_url))).json()
    assert (first["X-Team"], first["X-Once"]) == ("scrapers", "1")
    assert second["X-Team"] == "scrapers"
    assert "X-Once" not in second


def basic_only(request: WRequest) -> WResponse:
    """401 unless the request carries Basic credentials u:p."""
    expected = "Basic " + base64.b64encode(b"u:p").decode()
    if request.headers.get("Authorization") != expected:
        return WResponse("who are you?", status=401, headers={"WWW-Authenticate": "Basic"})
    return WResponse("<p>secret page</p>", content_type="text/html")


class Guarded(Spider):
    """Spider-wide headers and Basic auth."""

    name = "guarded"
    headers = {"X-Team": "scrapers"}
    auth = ("u", "p")

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"text": response.css_first("p").text()}


async def test_spider_headers_and_basic_auth_apply_to_the_crawl(httpserver: HTTPServer) -> None:
    """Spider.headers and Spider.auth reach every request; without auth the page is a 401."""
    httpserver.expect_request("/private", headers={"X-Team": "scrapers"}).respond_with_handler(
        basic_only
    )
    url = httpserver.url_for("/private")
    stats = await crawl_async(
        Guarded, {"LOG_LEVEL": "ERROR", "COOKIES_PERSIST": False}, start_urls=[url]
    )
    assert stats["items"] == 1
    async with Session.from_settings(settings()) as anonymous:
        assert (await anonymous.get(url, headers={"X-Team": "scrapers"})).status == 401


async def test_credentials_do_not_follow_a_redirect_to_another_host(
    httpserver: HTTPServer,
) -> None:
    """Auth set on the session is not sent to another origin a redirect points to."""
    other = httpserver.url_for("/echo").replace("localhost", "127.0.0.1")
    httpserver.expect_request("/echo").respond_with_handler(echo)
    httpserver.expect_request("/go").respond_with_data("", status=302, headers={"Location": other})
    async with Session.from_settings(settings()) as session:
        session.auth = ("u", "p")
        same = (await session.get(httpserver.url_for("/echo"))).json()
        moved = (await session.get(httpserver.url_for("/go"))).json()
    assert same["Authorization"].startswith("Basic ")
    assert "Authorization" not in moved


async def test_cookie_set_on_a_redirect_is_sent_on_the_next_hop(cookie_server: HTTPServer) -> None:
    """A 302 + Set-Cookie (the usual login answer) is honoured on the very next hop."""
    async with Session.from_settings(settings()) as session:
        response = await session.get(cookie_server.url_for("/cookies/set"), params={"sid": "abc"})
    assert response.json() == {"cookie": "sid=abc"}
    assert response.redirect_urls


async def test_cookies_are_not_sent_to_another_host(cookie_server: HTTPServer) -> None:
    """A cookie set by localhost never goes to 127.0.0.1, though both reach the same server."""
    async with Session.from_settings(settings()) as session:
        await session.get(cookie_server.url_for("/cookies/set"), params={"sid": "abc"})
        same = await session.get(cookie_server.url_for("/cookies"))
        other = await session.get(
            cookie_server.url_for("/cookies").replace("localhost", "127.0.0.1")
        )
    assert same.json() == {"cookie": "sid=abc"}
    assert other.json() == {"cookie": None}


async def test_httpx_jar_is_not_used(cookie_server: HTTPServer) -> None:
    """scrapekit's jar is the only one: httpx's own cookie handling stores nothing."""
    async with Session.from_settings(settings()) as session:
        await session.get(cookie_server.url_for("/cookies/set"), params={"sid": "abc"})
        assert len(session._client.cookies.jar) == 0  # type: ignore[attr-defined]
        assert session.cookies.get("sid") == "abc"


class CookieEcho(Spider):
    """Sets a cookie (first run only) and records what the server saw."""

    name = "cookie-echo"

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield response.json()


async def test_cookies_survive_a_restart_in_an_owner_only_jar(
    cookie_server: HTTPServer, tmp_path: Path
) -> None:
    """Cookies persisted by one crawl are sent by the next; the jar is 0600 in a 0700 folder."""
    state = {"STATE_DIR": str(tmp_path / "state"), "LOG_LEVEL": "ERROR"}
    set_url = cookie_server.url_for("/cookies/set") + "?sid=abc&theme=dark"
    first = await crawl_async(CookieEcho, state, start_urls=[set_url])
    assert first["cookie_jar"]["saved"] >= 2
    second_items: list[Any] = []

    class Collect:
        def process_item(self, item: Any, spider: Spider) -> Any:
            second_items.append(item)
            return item

    second = await crawl_async(
        CookieEcho,
        {**state, "PIPELINES": {Collect: 1}},
        start_urls=[cookie_server.url_for("/cookies")],
    )
    assert second["cookie_jar"]["loaded"] == 2
    assert second_items == [{"cookie": "sid=abc; theme=dark"}]
    jar = tmp_path / "state" / "cookie-echo" / "session.db"
    assert stat.S_IMODE(os.stat(jar).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(jar.parent).st_mode) == 0o700


async def test_cookies_can_be_switched_off(cookie_server: HTTPServer, tmp_path: Path) -> None:
    """COOKIES_ENABLED=false sends and stores nothing, and writes no jar."""
    async with Session.from_settings(settings(COOKIES_ENABLED=False)) as session:
        response = await session.get(cookie_server.url_for("/cookies/set"), params={"sid": "x"})
    assert response.json() == {"cookie": None}
    stats = await crawl_async(
        CookieEcho,
        {"STATE_DIR": str(tmp_path), "COOKIES_ENABLED": False, "LOG_LEVEL": "ERROR"},
        start_urls=[cookie_server.url_for("/cookies")],
    )
    assert stats["items"] == 1
    assert not glob.glob(f"{tmp_path}/*/session.db*")  # its frontier and lock are, not a jar


async def test_spider_auth_stays_with_its_own_host(httpserver: HTTPServer) -> None:
    """Credentials go to the host of the first request, not to a linked other host."""
    seen: dict[str, str | None] = {}

    def record(request: WRequest) -> WResponse:
        seen[request.host.split(":")[0]] = request.headers.get("Authorization")
        other = httpserver.url_for("/page").replace("localhost", "127.0.0.1")
        return WResponse(f'<a href="{other}">other</a><p>x</p>', content_type="text/html")

    httpserver.expect_request("/page").respond_with_handler(record)

    class Linker(Guarded):
        name = "linker"
        headers = {}

        def parse(self, response: Response) -> Iterator[Any]:
            yield from response.follow_all(css="a")

    await crawl_async(
        Linker,
        {"LOG_LEVEL": "ERROR", "COOKIES_PERSIST": False},
        start_urls=[httpserver.url_for("/page")],
    )
    assert seen["localhost"] is not None
    assert seen["localhost"].startswith("Basic ")
    assert seen["127.0.0.1"] is None
