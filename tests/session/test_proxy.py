"""A PROXY that turns the session away (407, refused connection) raises ProxyFailed, naming
the proxy without its password; the proxy's other answers stay one request's failure."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer

from scrapekit import ProxyFailed, Request, Response, Spider, crawl_async
from scrapekit.exceptions import FetchError, SessionError, TransportError
from scrapekit.session import Session
from scrapekit.settings import Settings
from tests.proxyserver import PASSWORD, ForwardProxy, running

WRONG = "not-the-Pa55word"


def settings(**overrides: object) -> Settings:
    """Validated defaults plus overrides."""
    return Settings.load(project_file=None, spider_cls=None, env={}, overrides=overrides)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with running(ForwardProxy()) as server:
        yield server


async def fetch(proxy_url: str, url: str, download_timeout: float = 5.0) -> None:
    """Fetch `url` through `proxy_url` in a fresh session."""
    overrides = {"PROXY": proxy_url, "DOWNLOAD_TIMEOUT": download_timeout}
    async with Session.from_settings(settings(**overrides)) as s:
        await s.fetch(Request(url))


async def test_a_407_to_an_http_request_is_proxy_failed(
    proxy: ForwardProxy, httpserver: HTTPServer
) -> None:
    """The proxy's 407 to a plain http:// request raises ProxyFailed (a SessionError, not the
    page's response) naming the hidden URL and the fix; the site saw nothing."""
    httpserver.expect_request("/").respond_with_data("page")

    with pytest.raises(ProxyFailed) as caught:
        await fetch(proxy.with_password(WRONG), httpserver.url_for("/"))

    assert isinstance(caught.value, SessionError)
    message = str(caught.value)
    assert message == (
        f"proxy {proxy.shown} (PROXY) refused the credentials (HTTP 407 Proxy Authentication "
        "Required); check PROXY's user and password"
    )
    assert WRONG not in message
    assert proxy.refused == 1
    assert httpserver.log == []


async def test_a_407_to_a_connect_is_proxy_failed(proxy: ForwardProxy) -> None:
    """The proxy's 407 to the CONNECT of an https:// target (before any TLS) raises the same
    ProxyFailed."""
    with pytest.raises(ProxyFailed) as caught:
        await fetch(proxy.with_password(WRONG), "https://127.0.0.1:9/secure")

    assert proxy.connects == ["127.0.0.1:9"]
    assert "refused the credentials (HTTP 407" in str(caught.value)
    assert proxy.shown in str(caught.value)


async def test_a_proxy_without_credentials_is_told_to_add_them(
    proxy: ForwardProxy, httpserver: HTTPServer
) -> None:
    """A 407 to a PROXY given no credentials says the proxy asks for them."""
    bare = f"http://127.0.0.1:{proxy.server_port}"

    with pytest.raises(ProxyFailed, match="asks for credentials") as caught:
        await fetch(bare, httpserver.url_for("/"))

    assert str(caught.value).startswith(f"proxy {bare} (PROXY) ")
    assert "http://user:password@host:port" in str(caught.value)


async def test_an_unreachable_proxy_is_proxy_failed(unreachable_origin: str) -> None:
    """A refused connection to the proxy raises ProxyFailed asking whether it runs."""
    port = unreachable_origin.rsplit(":", 1)[1]

    with pytest.raises(ProxyFailed) as caught:
        await fetch(f"http://alice:{PASSWORD}@127.0.0.1:{port}", "http://example.invalid/")

    message = str(caught.value)
    assert message.startswith(f"proxy http://alice:***@127.0.0.1:{port} (PROXY) cannot be reached")
    assert message.endswith("is the proxy running? check PROXY's host and port")
    assert PASSWORD not in message


async def test_another_connect_refusal_stays_a_transport_error(proxy: ForwardProxy) -> None:
    """A CONNECT the proxy answers otherwise (502: it cannot reach that site) fails that one
    request, as before: other sites may still work through the proxy."""
    with pytest.raises(TransportError, match=r"\(PROXY\) refused the request.*502"):
        await fetch(proxy.url, "https://127.0.0.1:9/secure")


@pytest.mark.parametrize(
    "answer", [b"", b"\x00\xffGARBAGE\r\n\r\n", None], ids=["closes", "garbage", "stalls"]
)
async def test_a_proxy_that_closes_or_answers_garbage_is_named_in_the_error(
    answer: bytes | None,
) -> None:
    """A proxy that hangs up, answers garbage or stalls (None: past DOWNLOAD_TIMEOUT) fails
    that request (it may be a blip) with an error naming the proxy, password hidden: the
    connection went to it, not to the site."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                with conn:
                    conn.recv(65536)
                    if answer is None:
                        conn.recv(1)  # until the client gives up and closes
                    else:
                        conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    proxy_url = f"http://alice:{PASSWORD}@127.0.0.1:{port}"
    try:
        with pytest.raises(FetchError) as raised:
            await fetch(proxy_url, "http://example.invalid/", download_timeout=0.5)
    finally:
        listener.close()

    message = str(raised.value)
    assert not isinstance(raised.value, ProxyFailed)
    assert f"through proxy http://alice:***@127.0.0.1:{port} (PROXY)" in message
    assert PASSWORD not in message


async def test_a_tls_failure_with_the_site_through_the_tunnel_is_the_pages(
    httpserver: HTTPServer,
) -> None:
    """An https:// page whose TLS fails (here: a plain-HTTP server) through a proxy that
    tunnels it is that page's TransportError, not ProxyFailed: the proxy was reached and
    let the CONNECT through, so other pages may still come."""
    httpserver.expect_request("/").respond_with_data("plain")
    url = httpserver.url_for("/").replace("http:", "https:", 1)

    with running(ForwardProxy(tunnel=True)) as proxy:
        async with Session.from_settings(settings(PROXY=proxy.url)) as session:
            with pytest.raises(TransportError) as raised:
                await session.fetch(Request(url))
            errors = session.statistics().errors

    assert not isinstance(raised.value, ProxyFailed)
    assert "SSL" in str(raised.value)
    assert proxy.connects == [url.removeprefix("https://").rstrip("/")]
    assert "proxy" not in errors


async def test_the_right_credentials_pass(proxy: ForwardProxy, httpserver: HTTPServer) -> None:
    """With the right password the page comes through the proxy."""
    httpserver.expect_request("/").respond_with_data("page")

    async with Session.from_settings(settings(PROXY=proxy.url)) as session:
        response = await session.fetch(Request(httpserver.url_for("/")))
        errors = session.statistics().errors

    assert response.status == 200
    assert response.text == "page"
    assert proxy.refused == 0
    assert errors == {}


async def test_proxy_failures_are_counted(proxy: ForwardProxy, httpserver: HTTPServer) -> None:
    """The session's statistics count each refusal under "proxy"."""
    async with Session.from_settings(settings(PROXY=proxy.with_password(WRONG))) as session:
        for _ in range(2):
            with pytest.raises(ProxyFailed):
                await session.fetch(Request(httpserver.url_for("/")))
        assert session.statistics().errors == {"proxy": 2}


class Pages(Spider):
    """Yields one item per page it is given; no login."""

    name = "pages"

    def parse(self, response: Response) -> Iterator[dict[str, str]]:
        yield {"url": response.url}


async def test_a_crawl_obeying_robots_stops_at_the_first_407(
    proxy: ForwardProxy, httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crawl whose first request (robots.txt) meets the 407 stops there with
    finish_reason proxy_failed: robots.txt does not fail open, no page is tried, retried
    nor handed to a callback."""
    urls = [httpserver.url_for(f"/p/{n}") for n in range(5)]
    settings = {
        "PROXY": proxy.with_password(WRONG), "ROBOTSTXT_OBEY": True, "CONCURRENCY": 1,
        "LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "COOKIES_PERSIST": False,
    }  # fmt: skip

    stats = await crawl_async(Pages, settings, start_urls=urls)

    assert stats["finish_reason"] == "proxy_failed"
    assert stats["error"].startswith(f"proxy {proxy.shown} (PROXY) refused the credentials")
    assert proxy.refused == 1
    assert stats["retries"]["retries"] == 0
    assert stats["session"]["errors"] == {"proxy": 1}
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line[:1] == "{"]
    assert [e["event"] for e in events if e["level"] == "error"] == [
        "proxy failed",
        "crawl finished",
    ]
    assert WRONG not in json.dumps(events)
