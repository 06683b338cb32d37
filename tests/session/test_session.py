"""Session: one shared client, and httpx failures turned into scrapekit errors with context."""

from __future__ import annotations

import gzip
import re
import time
from collections.abc import AsyncIterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request as WRequest
from werkzeug import Response as WResponse

from scrapekit import Request, __version__
from scrapekit.exceptions import (
    BadRequestMeta,
    DecodingError,
    FetchTimeout,
    InvalidURL,
    ResponseTooLarge,
    TooManyRedirects,
    TransportError,
)
from scrapekit.session import Session
from scrapekit.settings import Settings


def settings(**overrides: object) -> Settings:
    """Validated defaults plus overrides."""
    return Settings.load(project_file=None, spider_cls=None, env={}, overrides=overrides)


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    """A session with default settings and a 1 MiB body limit."""
    async with Session.from_settings(
        settings(MAX_RESPONSE_BYTES=1 << 20, DOWNLOAD_TIMEOUT=2.0)
    ) as s:
        yield s


async def test_default_headers_name_scrapekit(httpserver: HTTPServer, session: Session) -> None:
    """Every request carries the scrapekit User-Agent and the default Accept headers."""
    httpserver.expect_request("/echo").respond_with_handler(
        lambda r: WResponse(r.headers.get("User-Agent", "") + "|" + r.headers.get("Accept", ""))
    )
    response = await session.fetch(Request(httpserver.url_for("/echo")))
    agent, accept = response.text.split("|")
    assert agent == f"scrapekit/{__version__}"
    assert accept.startswith("text/html")


async def test_request_headers_and_body_are_sent(httpserver: HTTPServer, session: Session) -> None:
    """A POST sends its headers and form body; the Response keeps status, headers and request."""
    httpserver.expect_request(
        "/form", method="POST", headers={"X-Trace": "1"}, data="q=caf%C3%A9"
    ).respond_with_data("ok", status=201, headers={"X-Reply": "yes"})
    request = Request(httpserver.url_for("/form"), data={"q": "café"}, headers={"X-Trace": "1"})
    response = await session.fetch(request)
    assert (response.status, response.headers["x-reply"], response.request) == (201, "yes", request)
    assert response.elapsed > 0


async def test_redirects_are_followed_and_the_final_url_kept(
    httpserver: HTTPServer, session: Session
) -> None:
    """A 302 is followed; response.url is where the body came from."""
    httpserver.expect_request("/old").respond_with_data(
        "", status=302, headers={"Location": "/new"}
    )
    httpserver.expect_request("/new").respond_with_data("new")
    response = await session.fetch(Request(httpserver.url_for("/old")))
    assert (response.url, response.text) == (httpserver.url_for("/new"), "new")


async def test_redirect_loop_is_a_clear_error(httpserver: HTTPServer, session: Session) -> None:
    """A redirect loop is caught at its first repeat and the error shows the chain."""
    httpserver.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=301, headers={"Location": "/a"})
    request = Request(httpserver.url_for("/a"))
    with pytest.raises(TooManyRedirects, match=r"redirect loop \(.*/a -> .*/b -> .*/a\)") as info:
        await session.fetch(request)
    assert info.value.request is request
    assert len(httpserver.log) == 2  # stopped before fetching /a again


async def test_connection_refused_is_a_transport_error(
    unreachable_url: str, session: Session
) -> None:
    """A refused connection raises TransportError with the request and the httpx cause."""
    request = Request(unreachable_url)
    with pytest.raises(TransportError) as info:
        await session.fetch(request)
    assert info.value.request is request
    assert info.value.__cause__ is not None
    assert session.statistics().errors == {"transport error": 1}


async def test_per_request_timeout_from_meta(httpserver: HTTPServer, session: Session) -> None:
    """meta['download_timeout'] overrides DOWNLOAD_TIMEOUT for one request."""

    def slow(_: WRequest) -> WResponse:
        time.sleep(0.5)
        return WResponse("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    with pytest.raises(FetchTimeout):
        await session.fetch(Request(httpserver.url_for("/slow"), meta={"download_timeout": 0.1}))


@pytest.mark.parametrize(
    ("meta", "named"),
    [
        ({"download_timeout": "abc"}, "meta['download_timeout'] must be a number of seconds > 0"),
        ({"download_timeout": -1}, "meta['download_timeout'] must be a number of seconds > 0"),
        ({"download_timeout": float("nan")}, "meta['download_timeout'] must be a number"),
        ({"max_response_bytes": "x"}, "meta['max_response_bytes'] must be a whole number"),
        ({"max_response_bytes": 1.5}, "meta['max_response_bytes'] must be a whole number"),
    ],
)
async def test_a_meta_value_the_fetch_cannot_use_fails_that_request(
    httpserver: HTTPServer, session: Session, meta: dict[str, object], named: str
) -> None:
    """A download_timeout or max_response_bytes the fetch cannot use is BadRequestMeta naming
    the key, before anything is sent; not a TypeError from deep in asyncio or httpx2."""
    httpserver.expect_request("/").respond_with_data("ok")
    with pytest.raises(BadRequestMeta, match=re.escape(named)) as raised:
        await session.fetch(Request(httpserver.url_for("/"), meta=meta))
    assert raised.value.request_sent is False
    assert httpserver.log == []
    assert session.statistics().errors == {"bad meta": 1}


async def test_body_over_the_limit_is_cut_off(httpserver: HTTPServer, session: Session) -> None:
    """A body past MAX_RESPONSE_BYTES raises ResponseTooLarge, also when only the gzip is small."""
    bomb = gzip.compress(b"\0" * (4 << 20))
    httpserver.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})
    httpserver.expect_request("/big").respond_with_data(b"x" * (2 << 20))
    assert len(bomb) < 1 << 20
    with pytest.raises(ResponseTooLarge, match="MAX_RESPONSE_BYTES"):
        await session.fetch(Request(httpserver.url_for("/bomb")))
    with pytest.raises(ResponseTooLarge, match="Content-Length"):
        await session.fetch(Request(httpserver.url_for("/big")))


async def test_meta_sets_one_requests_body_limit_and_truncation(
    httpserver: HTTPServer, session: Session
) -> None:
    """meta["max_response_bytes"] overrides the limit; with meta["truncate_body"] the first
    bytes are kept instead of failing (chunked and compressed bodies alike)."""
    body = gzip.compress(b"a" * 100_000)
    httpserver.expect_request("/big").respond_with_data(body, headers={"Content-Encoding": "gzip"})
    url = httpserver.url_for("/big")
    with pytest.raises(ResponseTooLarge):
        await session.fetch(Request(url, meta={"max_response_bytes": 1000}))
    cut = await session.fetch(
        Request(url, meta={"max_response_bytes": 1000, "truncate_body": True})
    )
    assert cut.body == b"a" * 1000
    whole = await session.fetch(Request(url, meta={"max_response_bytes": None}))
    assert len(whole.body) == 100_000


async def test_corrupt_gzip_is_a_decoding_error(httpserver: HTTPServer, session: Session) -> None:
    """A body that claims gzip but is not raises DecodingError."""
    httpserver.expect_request("/bad").respond_with_data(
        b"not gzip", headers={"Content-Encoding": "gzip"}
    )
    with pytest.raises(DecodingError):
        await session.fetch(Request(httpserver.url_for("/bad")))


async def test_redirect_to_another_scheme_is_invalid(
    httpserver: HTTPServer, session: Session
) -> None:
    """A redirect to ftp:// raises InvalidURL instead of crashing."""
    httpserver.expect_request("/ftp").respond_with_data(
        "", status=302, headers={"Location": "ftp://x/"}
    )
    with pytest.raises(InvalidURL):
        await session.fetch(Request(httpserver.url_for("/ftp")))


async def test_headers_set_on_the_session_apply_to_later_requests(
    httpserver: HTTPServer, session: Session
) -> None:
    """session.headers persists across requests; get()/post() go through the same client."""
    httpserver.expect_request("/h", headers={"X-Api": "k"}).respond_with_data("yes")
    session.headers["X-Api"] = "k"
    assert (await session.get(httpserver.url_for("/h"))).text == "yes"


@pytest.mark.parametrize("http2", [False, True])
def test_client_pool_and_protocols_follow_settings(http2: bool) -> None:
    """The pool holds CONCURRENCY connections; HTTP/2 is on only when HTTP2 is set."""
    from scrapekit.session import build_client

    client = build_client(settings(CONCURRENCY=7, HTTP2=http2))
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert (pool._max_connections, pool._http1, pool._http2) == (7, True, http2)


async def test_redirect_limit_comes_from_settings(httpserver: HTTPServer) -> None:
    """REDIRECT_MAX_TIMES hops are followed; one more fails as too many redirects."""
    for i in range(4):
        httpserver.expect_request(f"/r{i}").respond_with_data(
            "", status=302, headers={"Location": f"/r{i + 1}"}
        )
    httpserver.expect_request("/r4").respond_with_data("end")
    async with Session.from_settings(settings(REDIRECT_MAX_TIMES=4)) as four:
        response = await four.fetch(Request(httpserver.url_for("/r0")))
        assert response.text == "end"
        assert response.redirect_urls == tuple(httpserver.url_for(f"/r{i}") for i in range(4))
    async with Session.from_settings(settings(REDIRECT_MAX_TIMES=3)) as three:
        with pytest.raises(TooManyRedirects, match="more than 3 redirects"):
            await three.fetch(Request(httpserver.url_for("/r0")))


async def test_large_response_is_logged_as_a_warning(
    httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A body over WARN_RESPONSE_BYTES is kept, with one warning naming its size."""
    from scrapekit import log

    log.configure("INFO", "json")
    httpserver.expect_request("/big").respond_with_data(b"x" * 5000)
    async with Session.from_settings(settings(WARN_RESPONSE_BYTES=4096)) as session:
        response = await session.get(httpserver.url_for("/big"))
    assert len(response.body) == 5000
    err = capsys.readouterr().err
    assert '"event": "large response"' in err
    assert '"bytes": 5000' in err
