"""Stale keep-alive connections: a request lost on a reused connection is sent again, once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from scrapekit import Request, Response, Spider, crawl_async
from scrapekit.exceptions import TransportError
from scrapekit.politeness.retry import GiveUp, RetryPolicy
from scrapekit.session import Session
from scrapekit.settings import Settings


def settings(**overrides: object) -> Settings:
    """Validated defaults plus overrides."""
    return Settings.load(project_file=None, spider_cls=None, env={}, overrides=overrides)


class ClosingServer:
    """HTTP/1.1 on 127.0.0.1 that closes connections without `Connection: close`.

    `idle_close`: answer each request keep-alive, then close the socket 2-5 ms later
    without reading what came meanwhile. `answer` False: close every connection as soon as
    its first request is read, answering nothing. `seen` counts the requests it read.
    `pages` makes the body for a path (default: "ok <path>").
    """

    def __init__(
        self,
        *,
        idle_close: bool = True,
        answer: bool = True,
        pages: Callable[[str], bytes] | None = None,
    ) -> None:
        self.idle_close = idle_close
        self.answer = answer
        self.pages = pages
        self.seen: Counter[str] = Counter()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> ClosingServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:
            task.cancel()  # connections a client still keeps open
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str) -> str:
        """The absolute URL of `path` on this server."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target = head.split(b" ", 2)[:2]
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.seen[f"{method.decode()} {target.decode()}"] += 1
                if not self.answer:
                    break
                body = self.pages(target.decode()) if self.pages else b"ok " + target
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
                await writer.drain()
                if self.idle_close:
                    await asyncio.sleep(random.uniform(0.002, 0.005))
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass  # closed by __aexit__; asyncio would log a cancelled handler as an error
        finally:
            writer.close()
            self._handlers.discard(task)


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    """A session whose pool holds eight connections."""
    async with Session.from_settings(settings(CONCURRENCY=8, DOWNLOAD_TIMEOUT=5.0)) as s:
        yield s


async def test_posts_on_stale_connections_are_sent_again_once(session: Session) -> None:
    """100 POSTs in a row, each on the connection the last one left: all answered, none twice."""
    async with ClosingServer() as server:
        for i in range(100):
            response = await session.post(server.url(f"/post/{i}"), data={"n": str(i)})
            assert response.text == f"ok /post/{i}"
    assert server.seen == Counter({f"POST /post/{i}": 1 for i in range(100)})
    stats = session.statistics()
    assert stats.stale_resends > 0
    assert stats.errors == {}


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
    """A crawl of 300 linked pages on a server that drops idle connections gets every page."""
    async with ClosingServer(pages=tree_page) as server:
        stats = await crawl_async(
            Tree,
            {"LOG_LEVEL": "ERROR", "CONCURRENCY": 8, "COOKIES_PERSIST": False},
            start_urls=[server.url("/page/0")],
        )
    assert (stats["pages"], stats["items"], stats["errors"]) == (300, 300, {})
    assert stats["retries"]["retries"] == 0
    assert stats["session"]["stale_resends"] > 0
    assert sum(server.seen.values()) == 300
