"""Stale keep-alive connections: a request lost on a reused connection is sent again, once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from scrapekit import Request
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
    """

    def __init__(self, *, idle_close: bool = True, answer: bool = True) -> None:
        self.idle_close = idle_close
        self.answer = answer
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
                body = b"ok " + target
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
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
