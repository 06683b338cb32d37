"""Stale keep-alive connections: a request lost on a reused connection is sent again, once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest

from scrapekit import Request, Response, Spider, crawl_async
from scrapekit.exceptions import TransportError
from scrapekit.politeness.retry import GiveUp, RetryPolicy
from scrapekit.session import Session
from scrapekit.session.keepalive import AttemptTrace
from scrapekit.settings import Settings
from tests.hostile.servers import ClosingServer


def settings(**overrides: object) -> Settings:
    """Validated defaults plus overrides."""
    return Settings.load(project_file=None, spider_cls=None, env={}, overrides=overrides)


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    """A session whose pool holds eight connections."""
    async with Session.from_settings(settings(CONCURRENCY=8, DOWNLOAD_TIMEOUT=5.0)) as s:
        yield s


async def test_posts_on_stale_connections_are_sent_again_once(session: Session) -> None:
    """100 POSTs in a row, each on the connection the last one left, which the server closes
    after reading every second request on it: each dropped POST is sent again once, on a fresh
    connection, and the server processes every POST exactly once."""
    async with ClosingServer(drop_second=True) as server:
        for i in range(100):
            response = await session.post(server.url(f"/post/{i}"), data={"n": str(i)})
            assert response.text == f"ok /post/{i}"
    assert server.seen == Counter({f"POST /post/{i}": 1 for i in range(100)})
    stats = session.statistics()
    assert stats.stale_resends == sum(server.dropped.values()) > 0
    assert stats.errors == {}


async def test_posts_resent_while_the_server_closes_idle_connections(session: Session) -> None:
    """The same over the real race: the server closes each connection 2-5 ms after answering."""
    async with ClosingServer() as server:
        for i in range(100):
            response = await session.post(server.url(f"/post/{i}"), data={"n": str(i)})
            assert response.text == f"ok /post/{i}"
    assert server.seen == Counter({f"POST /post/{i}": 1 for i in range(100)})
    assert session.statistics().errors == {}


async def test_concurrent_gets_on_stale_connections_all_succeed(session: Session) -> None:
    """300 GETs, eight at a time, against a server that drops every idle connection."""
    async with ClosingServer() as server:
        responses = await asyncio.gather(
            *(session.get(server.url(f"/page/{i}")) for i in range(300))
        )
    assert [r.text for r in responses] == [f"ok /page/{i}" for i in range(300)]
    assert sum(server.seen.values()) == 300
    assert session.statistics().stale_resends > 0


async def test_a_fresh_connection_closed_unanswered_is_an_error(session: Session) -> None:
    """A POST whose own new connection closes without an answer fails, and is not resent."""
    async with ClosingServer(answer=False) as server:
        request = Request(server.url("/once"), data={"n": "1"})
        with pytest.raises(TransportError, match="disconnected") as info:
            await session.fetch(request)
    assert server.seen == Counter({"POST /once": 1})
    assert session.statistics().stale_resends == 0
    assert info.value.request_sent
    assert RetryPolicy().on_error(request, info.value) == GiveUp("transport error", 1, False)


def tree_page(path: str) -> bytes:
    """/page/N links to its two children in a tree of 300 pages."""
    n = int(path.rsplit("/", 1)[1])
    children = [c for c in (2 * n + 1, 2 * n + 2) if c < 300]
    links = "".join(f'<a href="/page/{c}">{c}</a>' for c in children)
    return f"<html><body><p>{n}</p>{links}</body></html>".encode()


class Tree(Spider):
    """Follows every link of the page tree."""

    name = "tree"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"n": response.css_first("p").text()}
        yield from response.follow_all(css="a")


async def test_a_crawl_loses_no_page_to_stale_connections() -> None:
    """A crawl of 300 linked pages on a server that drops every second request on a
    connection unanswered gets every page, each fetched once."""
    async with ClosingServer(pages=tree_page, drop_second=True) as server:
        stats = await crawl_async(
            Tree,
            {"LOG_LEVEL": "ERROR", "CONCURRENCY": 8, "COOKIES_PERSIST": False},
            start_urls=[server.url("/page/0")],
        )
    assert (stats["pages"], stats["items"], stats["errors"]) == (300, 300, {})
    assert stats["retries"]["retries"] == 0
    assert stats["session"]["stale_resends"] == sum(server.dropped.values()) > 0
    assert server.seen == Counter({f"GET /page/{n}": 1 for n in range(300)})


@pytest.mark.parametrize(
    ("events", "error", "stale"),
    [
        pytest.param(
            ["http2.send_request_headers.started"],
            httpx2.RemoteProtocolError("Server disconnected"),
            True,
            id="h2-closed-before-headers",
        ),
        pytest.param(
            ["http2.send_request_headers.started"],
            httpx2.RemoteProtocolError("<ConnectionTerminated error_code:0>"),
            True,
            id="h2-goaway-before-headers",
        ),
        pytest.param(
            ["http2.receive_response_headers.complete"],
            httpx2.RemoteProtocolError("Server disconnected"),
            False,
            id="h2-after-headers",
        ),
        pytest.param(
            ["connection.connect_tcp.started", "http2.send_request_headers.started"],
            httpx2.RemoteProtocolError("Server disconnected"),
            False,
            id="h2-fresh-connection",
        ),
        pytest.param(
            ["http11.send_request_headers.started"],
            httpx2.RemoteProtocolError("Server disconnected"),
            False,
            id="h11-other-message-is-a-bad-answer",
        ),
    ],
)
async def test_http2_stale_streams_are_told_by_their_headers(
    events: list[str], error: Exception, stale: bool
) -> None:
    """Under HTTP/2 reads are shared by every stream, so "no headers for this stream" decides."""
    trace = AttemptTrace()
    for event in events:
        await trace(event, {})
    assert trace.stale(error) is stale
