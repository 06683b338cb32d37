"""Tiny asyncio HTTP servers on 127.0.0.1 that misbehave on purpose, shared by the tests.

Each is an async context manager on a free port. werkzeug (pytest-httpserver) cannot send what
they send: repeated headers it would merge, connections closed at a chosen moment, silence.

- `RawServer` answers with fixed raw header lines (per path, or one answer for every path).
- `ClosingServer` closes keep-alive connections without `Connection: close`.
- `SilentServer` accepts connections and never answers a byte.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Self


class LoopbackServer:
    """An asyncio server on 127.0.0.1; a subclass says what to do with each connection."""

    def __init__(self) -> None:
        #: `http://127.0.0.1:<port>`, once started.
        self.origin = ""
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.origin = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:
            task.cancel()  # connections a client still keeps open
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str = "/") -> str:
        """The absolute URL of `path` on this server."""
        return self.origin + path

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self.handle(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away: that is its business
        except asyncio.CancelledError:
            pass  # closed by __aexit__; asyncio would log a cancelled handler as an error
        finally:
            writer.close()
            self._handlers.discard(task)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection; it is closed when this returns."""
        raise NotImplementedError


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """Read one request (head and Content-Length body); its method and target."""
    head = await reader.readuntil(b"\r\n\r\n")
    method, target = head.split(b" ", 2)[:2]
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return method.decode(), target.decode()


class RawServer(LoopbackServer):
    """Answers each request with fixed raw header lines, then closes the connection.

    `answers` maps a path to its status line and header lines; other paths get `default`.
    `body` follows every answer, after a Content-Length and `Connection: close`. `paths` and
    `arrivals` (monotonic times) record the requests, in order.
    """

    def __init__(
        self,
        answers: Mapping[str, Sequence[str]] | None = None,
        *,
        default: Sequence[str] = ("HTTP/1.1 404 Not Found",),
        body: bytes = b"",
    ) -> None:
        super().__init__()
        self.answers = dict(answers or {})
        self.default = list(default)
        self.body = body
        self.paths: list[str] = []
        self.arrivals: list[float] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, path = await read_request(reader)
        self.arrivals.append(time.monotonic())
        self.paths.append(path)
        lines = [
            *self.answers.get(path, self.default),
            f"Content-Length: {len(self.body)}",
            "Connection: close",
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + self.body)
        await writer.drain()


class ClosingServer(LoopbackServer):
    """HTTP/1.1 that closes connections without `Connection: close`.

    `idle_close`: answer each request keep-alive, then close the socket 2-5 ms later without
    reading what came meanwhile (the race a real server runs). `drop_second`: answer the
    first request on a connection, read the second, then close without answering it (the
    same failure, deterministically); the requests dropped so are counted in `dropped`, not
    in `seen`. `answer` False: close every connection as soon as its first request is read,
    answering nothing. `seen` counts the other requests read. `pages` makes the body for a
    path (default: "ok <path>").
    """

    def __init__(
        self,
        *,
        idle_close: bool = True,
        drop_second: bool = False,
        answer: bool = True,
        pages: Callable[[str], bytes] | None = None,
    ) -> None:
        super().__init__()
        self.idle_close = idle_close and not drop_second
        self.drop_second = drop_second
        self.answer = answer
        self.pages = pages
        self.seen: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        while True:
            method, target = await read_request(reader)
            if self.drop_second and answered == 1:
                self.dropped[f"{method} {target}"] += 1
                return
            self.seen[f"{method} {target}"] += 1
            if not self.answer:
                return
            body = self.pages(target) if self.pages else b"ok " + target.encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            await writer.drain()
            answered += 1
            if self.idle_close:
                await asyncio.sleep(random.uniform(0.002, 0.005))
                return


class SilentServer(LoopbackServer):
    """Accepts every connection and never answers."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()  # until __aexit__ cancels it
