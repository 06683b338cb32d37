"""Stale keep-alive connections: a request lost on a reused connection is sent again.

Part of the session stage. A server may close an idle keep-alive connection at any moment
without saying so (no `Connection: close`); a request written in that window meets a closed
socket ("Server disconnected without sending a response") and the server never saw it. Like
browsers, the session then sends it once more, whatever its method, without spending a retry:
the failure says nothing about the request.

The rule is "no byte of the response arrived", not "no complete response": a bad status line,
a negative Content-Length or half the headers mean the server read the request and answered
it (badly), and a POST sent again would be processed twice. An attempt is stale when all of
these hold, told by httpcore2's public `trace` hook:

- it opened no connection of its own (so it used a pooled one);
- not one byte came back: the hook sees each new connection's network stream (the
  `return_value` of `connect_tcp` / `start_tls`), and its `read` is wrapped to mark the
  attempt that is reading (a context variable: httpcore2 reads in the sending task);
- the error is a write error, a read error (a reset), or exactly httpcore2's "Server
  disconnected without sending a response." (`NO_RESPONSE`; a test fails if httpcore2
  rewords it). Any other protocol error is a malformed answer; a timeout may be a slow
  server working on the request.

A stream that cannot be wrapped (a custom transport) leaves the message alone to decide, and
then "half the headers, then close" looks like no answer at all: httpcore2 reports both with
the same message. Under HTTP/2 (HTTP2 = true) reads are shared by every stream of a connection
and a closed connection has other messages, so there the test is "no response headers for
this stream" with any read, write or protocol error.

The pool may hand out another connection that is about to close (every connection a busy
worker just released is one), so the request is sent again through a second client that opens
a new connection for every request: one resend, on a fresh connection, whose failure is a
normal error. That client is built on the first stale resend, not before: most crawls never
need it, and building one costs an SSL context. (A session built on a custom transport has no
second client: it tries its pool again, up to the pool's size + 1 times.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

import httpx2
import structlog

log = structlog.get_logger(__name__)

#: Failures that a closed idle connection produces; timeouts and connect errors are not.
STALE_ERRORS = (httpx2.ReadError, httpx2.WriteError, httpx2.RemoteProtocolError)
#: What httpcore2 says when the connection closed while it still waited for the status line
#: (`_receive_event` in httpcore2/_async/http11.py); other protocol errors are malformed answers.
NO_RESPONSE = "Server disconnected without sending a response."

# httpcore2 names its events "<logger suffix>.<step>.<started|complete|failed>".
_CONNECT_EVENTS = frozenset(
    {
        "connection.connect_tcp.started",
        "connection.connect_unix_socket.started",
        "socks.connect_tcp.started",
    }
)
# Steps whose return value is the network stream the connection then reads from.
_STREAM_STEPS = (".connect_tcp.complete", ".connect_unix_socket.complete", ".start_tls.complete")

#: The attempt now waiting for its response in this task: a watched stream marks it on a read.
_receiving: ContextVar[AttemptTrace | None] = ContextVar("scrapekit_receiving", default=None)


class AttemptTrace:
    """httpcore2's trace hook for one attempt: did it connect, did any response byte arrive.

    Called for every step of every request (about ten times), so it mostly compares names.
    """

    __slots__ = ("answered", "connected", "http2", "received")

    def __init__(self) -> None:
        self.connected = False
        #: Set by a watched stream's read, while this attempt is the one receiving.
        self.received = False
        self.http2 = False
        #: The response headers arrived (HTTP/2, where reads are shared between streams).
        self.answered = False

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        if event in _CONNECT_EVENTS:
            self.connected = True
        elif event.endswith(_STREAM_STEPS):
            _watch(info.get("return_value"))
        elif event.startswith("http2."):
            self.http2 = True
            if event == "http2.receive_response_headers.complete":
                self.answered = True

    def stale(self, error: BaseException) -> bool:
        """Whether `error` is a reused connection that closed before a byte of the answer."""
        if self.connected:
            return False
        if self.http2:
            # One HTTP/2 read takes in frames of every stream (a GOAWAY among them), so bytes
            # read say nothing about this request, and a closed connection is reported as
            # "Server disconnected" or a terminated connection: no headers for this stream is
            # the test, as it was for HTTP/1.1 before the byte marking.
            return not self.answered and isinstance(error, STALE_ERRORS)
        if self.received:
            return False
        if isinstance(error, httpx2.RemoteProtocolError):
            return str(error) == NO_RESPONSE
        return isinstance(error, httpx2.ReadError | httpx2.WriteError)


def _watch(stream: object) -> None:
    """Wrap `stream.read` so a read that returns bytes marks the attempt receiving them."""
    read: Callable[..., Awaitable[bytes]] | None = getattr(stream, "read", None)
    if read is None or getattr(read, "_scrapekit_watched", False):
        return

    # httpcore2's AsyncNetworkStream.read signature, timeout included.
    async def watched(max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        data = await read(max_bytes, timeout)
        if data and (attempt := _receiving.get()) is not None:
            attempt.received = True
        return data

    watched._scrapekit_watched = True  # type: ignore[attr-defined]
    # A stream with slots cannot be watched: the message alone decides (module docstring).
    with contextlib.suppress(AttributeError):
        stream.read = watched  # type: ignore[attr-defined]


class KeepAliveSender:
    """Sends one hop through the pool, again while it only met a stale pooled connection."""

    def __init__(
        self,
        client: httpx2.AsyncClient,
        *,
        fresh_client: Callable[[], httpx2.AsyncClient] | None = None,
        pool_size: int = 100,
    ) -> None:
        self._client = client
        #: Builds the client that opens a new connection for every request.
        self._make_fresh = fresh_client
        self._fresh: httpx2.AsyncClient | None = None
        # Without a fresh client: each pooled connection may turn out stale once.
        self._max_resends = 1 if fresh_client is not None else pool_size + 1
        #: Requests sent again because a pooled connection had closed before answering.
        self.resends = 0

    async def send(self, http_request: httpx2.Request, auth: Any) -> httpx2.Response:
        """Send `http_request` (streamed) with `auth`; resend it while its connection was stale."""
        client = self._client
        resends = 0
        while True:
            trace = AttemptTrace()
            http_request.extensions["trace"] = trace
            token = _receiving.set(trace)
            try:
                return await client.send(http_request, stream=True, auth=auth)
            except STALE_ERRORS as exc:
                if resends >= self._max_resends or not trace.stale(exc):
                    raise
                resends += 1
                self.resends += 1
                log.debug("stale connection", url=str(http_request.url), resends=resends)
                if self._make_fresh is not None:
                    # The pool may hand out another connection that is about to close.
                    if auth is httpx2.USE_CLIENT_DEFAULT:
                        auth = client.auth
                    client = self._fresh_client()
            finally:
                _receiving.reset(token)

    def _fresh_client(self) -> httpx2.AsyncClient:
        if self._fresh is None:
            assert self._make_fresh is not None
            fresh = self._make_fresh()
            fresh.event_hooks = self._client.event_hooks  # the same response hooks as the pool's
            self._fresh = fresh
        return self._fresh

    async def aclose(self) -> None:
        """Close the fresh-connection client, if one was built."""
        if self._fresh is not None:
            await self._fresh.aclose()
