"""A request the server already answered, however badly, is never sent again as "stale".

Only a reused connection that closed before any byte of the response arrived may be resent:
a malformed answer (a bad status line, a negative Content-Length, half the headers, a huge
header) means the server processed the request, and a POST sent twice orders twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx2
import pytest

from scrapekit import Request
from scrapekit.exceptions import TransportError
from scrapekit.session import Session
from scrapekit.session.keepalive import NO_RESPONSE
from scrapekit.settings import Settings
from tests.hostile.servers import LoopbackServer, read_request

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 4\r\n\r\nwarm"


class WarmThenBadServer(LoopbackServer):
    """Answers /warm keep-alive; answers anything else with `bad` raw bytes, then closes.

    `bad` None: close without answering (the one case a resend is right for). `seen` counts
    every request read, by method and path.
    """

    def __init__(self, bad: bytes | None) -> None:
        super().__init__()
        self.bad = bad
        self.seen: Counter[str] = Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            method, target = await read_request(reader)
            self.seen[f"{method} {target}"] += 1
            if target == "/warm":
                writer.write(_OK)
                await writer.drain()
                continue
            if self.bad is not None:
                writer.write(self.bad)
                await writer.drain()
            return


def settings(**overrides: object) -> Settings:
    """Validated defaults plus overrides."""
    return Settings.load(project_file=None, spider_cls=None, env={}, overrides=overrides)


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    """A session with a one-connection pool, so the second request reuses the first's."""
    async with Session.from_settings(settings(CONCURRENCY=1, DOWNLOAD_TIMEOUT=5.0)) as s:
        yield s


MALFORMED = [
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nplaced", id="negative-length"),
    pytest.param(b"HTTP/1.1 2OO OK\r\n\r\n", id="bad-status-line"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Ty", id="half-the-headers"),
    pytest.param(
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"x" * 200_000 + b"\r\nContent-Length: 0\r\n\r\n",
        id="200-kb-header",
    ),
]


@pytest.mark.parametrize("bad", MALFORMED)
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_malformed_answer_on_a_reused_connection_is_not_resent(
    session: Session, bad: bytes, method: str
) -> None:
    """A request on a warm connection that gets a malformed answer fails once, unrepeated."""
    async with WarmThenBadServer(bad) as server:
        assert (await session.get(server.url("/warm"))).text == "warm"
        request = Request(server.url("/order"), method, body=b"item=tv")
        with pytest.raises(TransportError) as info:
            await session.fetch(request)
    assert server.seen == Counter({"GET /warm": 1, f"{method} /order": 1})
    assert server.connections == 1
    assert session.statistics().stale_resends == 0
    assert info.value.request is request


async def test_a_reused_connection_closed_unanswered_is_still_resent(session: Session) -> None:
    """The stale case proper: no byte came back on the warm connection, so the POST is sent
    once more on a fresh one (whose silence is then a normal error)."""
    async with WarmThenBadServer(None) as server:
        await session.get(server.url("/warm"))
        with pytest.raises(TransportError, match="disconnected"):
            await session.post(server.url("/order"), data={"item": "tv"})
    assert server.seen == Counter({"GET /warm": 1, "POST /order": 2})
    assert session.statistics().stale_resends == 1


async def test_httpcore2_still_names_an_unanswered_request_as_expected() -> None:
    """`NO_RESPONSE` is the exact message httpcore2 raises when a server closes without a byte
    of response; if httpcore2 rewords it, this fails before stale detection silently stops."""
    async with WarmThenBadServer(None) as server, httpx2.AsyncClient() as client:
        with pytest.raises(httpx2.RemoteProtocolError) as info:
            await client.get(server.url("/order"))
    assert str(info.value) == NO_RESPONSE
