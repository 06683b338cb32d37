"""Hostile bodies: content-coding chains are undone in bounded steps, or refused clearly."""

from __future__ import annotations

import functools
import gzip
import json
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response as WResponse

from scrapekit import Request, Response, Spider, crawl_async
from scrapekit.exceptions import DecodingError, FetchError, ResponseTooLarge
from scrapekit.politeness.retry import GiveUp, RetryPolicy
from scrapekit.session import Session
from scrapekit.settings import Settings
from tests.conftest import child_env

PAGE = b"<p>" + b"caf\xc3\xa9 " * 2000 + b"</p>"

#: A gzip stream of nothing but empty stored blocks: it inflates to no bytes at all.
_GZIP_HEAD = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_EMPTY_BLOCK = b"\x00\x00\x00\xff\xff"
_GZIP_END = b"\x01\x00\x00\xff\xff" + b"\0" * 8


def settings(**overrides: object) -> Settings:
    """Validated defaults plus overrides."""
    return Settings.load(project_file=None, spider_cls=None, env={}, overrides=overrides)


def gzip_stream(parts: Iterator[bytes]) -> bytes:
    """gzip of the concatenated parts, compressed as a stream (never held whole)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(part) for part in parts]
    return b"".join([*out, compressor.flush()])


def deflate(data: bytes, *, header: bool = True) -> bytes:
    """deflate with its zlib header (RFC 1950), or raw (what some servers send)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 15 if header else -15)
    return compressor.compress(data) + compressor.flush()


@functools.cache
def zeros_bomb(gib: int = 1) -> bytes:
    """`gib` GiB of zeros gzipped: about 1 MB."""
    return gzip_stream(b"\0" * (1 << 20) for _ in range(gib << 10))


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    """A session with default settings (MAX_RESPONSE_BYTES 32 MiB)."""
    async with Session.from_settings(settings(DOWNLOAD_TIMEOUT=10.0)) as s:
        yield s


CHILD_FETCH = """
import asyncio, json, resource, sys
from scrapekit import Request
from scrapekit.session import Session
from scrapekit.settings import Settings

async def main():
    settings = Settings.load(project_file=None, spider_cls=None, env={}, overrides={})
    async with Session.from_settings(settings) as session:
        try:
            response = await session.fetch(Request(sys.argv[1]))
            outcome = f"body of {len(response.body)} bytes"
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps({"outcome": outcome, "peak_mib": peak}))

asyncio.run(main())
"""


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("header", "encode"),
    [
        pytest.param("gzip, gzip", lambda inner: gzip.compress(inner, 9), id="gzip-twice"),
        pytest.param("gzip, deflate", deflate, id="gzip-then-deflate"),
        pytest.param("gzip, deflate", lambda inner: deflate(inner, header=False), id="raw-deflate"),
    ],
)
def test_double_coded_bomb_stops_at_the_limit_in_bounded_memory(
    httpserver: HTTPServer, header: str, encode: Any
) -> None:
    """A few KB coded twice (1 GiB of zeros) fails as ResponseTooLarge with a small peak RSS."""
    body = encode(zeros_bomb())
    assert len(body) < 16 << 10
    httpserver.expect_request("/bomb").respond_with_data(body, headers={"Content-Encoding": header})
    child = subprocess.run(
        [sys.executable, "-c", CHILD_FETCH, httpserver.url_for("/bomb")],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(child.stdout)
    assert result["outcome"].startswith("ResponseTooLarge: "), result
    assert "MAX_RESPONSE_BYTES=33554432" in result["outcome"]
    # The body itself may reach the 32 MiB limit; the interpreter and imports take ~40 MiB.
    assert result["peak_mib"] < 150, result


async def test_a_bomb_of_empty_blocks_is_stopped_in_the_inner_layer(
    httpserver: HTTPServer, session: Session
) -> None:
    """An inner layer that inflates to 256 MiB of empty blocks (no body at all) is cut off."""
    empty = _EMPTY_BLOCK * ((1 << 20) // len(_EMPTY_BLOCK))
    middle = gzip_stream(iter([_GZIP_HEAD, *([empty] * 256), _GZIP_END]))
    body = gzip.compress(middle, 9)
    httpserver.expect_request("/empty").respond_with_data(
        body, headers={"Content-Encoding": "gzip, gzip, gzip"}
    )
    request = Request(httpserver.url_for("/empty"))
    with pytest.raises(ResponseTooLarge, match=r"the gzip layer .* MAX_RESPONSE_BYTES") as info:
        await session.fetch(request)
    assert info.value.request is request


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param(["gzip, gzip"], gzip.compress(gzip.compress(PAGE)), id="gzip-gzip"),
        pytest.param(["gzip, deflate"], deflate(gzip.compress(PAGE)), id="gzip-deflate"),
        pytest.param(["deflate, gzip"], gzip.compress(deflate(PAGE)), id="deflate-gzip"),
        pytest.param(["deflate"], deflate(PAGE), id="deflate-zlib-header"),
        pytest.param(["deflate"], deflate(PAGE, header=False), id="deflate-raw"),
        pytest.param(
            ["gzip, deflate"], deflate(gzip.compress(PAGE), header=False), id="gzip-raw-deflate"
        ),
        pytest.param(["identity"], PAGE, id="identity"),
        pytest.param(["identity, gzip, identity"], gzip.compress(PAGE), id="identity-around"),
        pytest.param([" GZIP ,Deflate "], deflate(gzip.compress(PAGE)), id="case-and-spaces"),
        pytest.param(["gzip", "deflate"], deflate(gzip.compress(PAGE)), id="two-header-lines"),
        pytest.param(["gzip, x-gzip"], gzip.compress(gzip.compress(PAGE)), id="x-gzip-in-chain"),
        pytest.param(
            ["gzip"], gzip.compress(PAGE[:5000]) + gzip.compress(PAGE[5000:]), id="two-members"
        ),
    ],
)
async def test_stacked_codings_decode_to_the_page(
    httpserver: HTTPServer, session: Session, headers: list[str], body: bytes
) -> None:
    """Every coding in the header is undone, last applied first; identity is skipped."""
    httpserver.expect_request("/page").respond_with_data(
        body, headers=[("Content-Encoding", value) for value in headers]
    )
    response = await session.fetch(Request(httpserver.url_for("/page")))
    assert response.body == PAGE


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        pytest.param("br", "br", id="br"),
        pytest.param("gzip, br", "br", id="gzip-then-br"),
        pytest.param("zstd, gzip", "zstd", id="zstd-under-gzip"),
        pytest.param("compress", "compress", id="compress"),
        pytest.param("gzip, rot13", "rot13", id="unknown"),
    ],
)
async def test_an_unsupported_coding_is_refused_by_name(
    httpserver: HTTPServer, session: Session, header: str, coding: str
) -> None:
    """A coding scrapekit does not decode fails with a DecodingError naming it and the URL."""
    body = gzip.compress(PAGE) if header.endswith("gzip") else PAGE
    httpserver.expect_request("/odd").respond_with_data(body, headers={"Content-Encoding": header})
    request = Request(httpserver.url_for("/odd"))
    with pytest.raises(DecodingError) as info:
        await session.fetch(request)
    message = str(info.value)
    assert f"Content-Encoding {coding!r} is not supported" in message
    assert request.url in message
    assert info.value.request is request
    assert RetryPolicy().on_error(request, info.value) == GiveUp("decoding error", 1, False)


async def test_a_corrupt_inner_layer_is_a_decoding_error(
    httpserver: HTTPServer, session: Session
) -> None:
    """Valid outer gzip around garbage: the inner layer's failure names its coding."""
    httpserver.expect_request("/bad").respond_with_data(
        gzip.compress(b"this is not deflate data at all"),
        headers={"Content-Encoding": "deflate, gzip"},
    )
    with pytest.raises(DecodingError, match=r"/bad: the deflate layer of the body is corrupt"):
        await session.fetch(Request(httpserver.url_for("/bad")))


async def test_too_many_codings_are_refused(httpserver: HTTPServer, session: Session) -> None:
    """More than five codings are refused before anything is inflated."""
    body = PAGE
    for _ in range(6):
        body = gzip.compress(body)
    httpserver.expect_request("/deep").respond_with_data(
        body, headers={"Content-Encoding": ", ".join(["gzip"] * 6)}
    )
    with pytest.raises(DecodingError, match="6 content codings"):
        await session.fetch(Request(httpserver.url_for("/deep")))


async def test_only_bounded_codings_are_advertised(
    httpserver: HTTPServer, session: Session
) -> None:
    """Accept-Encoding asks only for what the session decodes in bounded steps."""
    httpserver.expect_request("/ae").respond_with_handler(
        lambda r: WResponse(r.headers.get("Accept-Encoding", ""))
    )
    response = await session.fetch(Request(httpserver.url_for("/ae")))
    assert response.text == "gzip, deflate"


class Errbacks(Spider):
    """Records what the errback of a page with a refused coding receives."""

    name = "errbacks"
    failures: list[FetchError] = []

    def start(self) -> Iterator[Request]:
        for url in self.start_urls:
            yield Request(url, errback="failed")

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"url": response.url}

    def failed(self, error: FetchError) -> None:
        self.failures.append(error)


async def test_a_refused_coding_reaches_the_errback_once(httpserver: HTTPServer) -> None:
    """In a crawl, the DecodingError goes to the errback, with no retry."""
    httpserver.expect_request("/odd").respond_with_data(
        gzip.compress(PAGE), headers={"Content-Encoding": "gzip, br"}
    )
    Errbacks.failures = []
    stats = await crawl_async(
        Errbacks,
        {"LOG_LEVEL": "ERROR", "COOKIES_PERSIST": False, "ROBOTSTXT_OBEY": False},
        start_urls=[httpserver.url_for("/odd")],
    )
    assert [type(error) for error in Errbacks.failures] == [DecodingError]
    assert stats["errors"] == {"decoding error": 1}
    assert len(httpserver.log) == 1
