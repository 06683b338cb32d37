"""Stale keep-alive connections: a request lost on a reused connection is sent again.

Part of the session stage. A server may close an idle keep-alive connection at any moment
without saying so (no `Connection: close`); a request written in that window meets a closed
socket ("Server disconnected without sending a response") and the server never saw it. Like
browsers, the session then sends it once more, whatever its method, without spending a retry:
the failure says nothing about the request. httpcore2's `trace` hook tells which attempts
qualify: the attempt opened no connection of its own (so it used a pooled one) and failed
before the response headers arrived, with a read, write or protocol error (never a timeout: a
slow server may well be working on the request). The pool may hand out another connection
that is about to close (every connection a busy worker just released is one), so the request is
sent again through a second client that opens a new connection for every request: one resend,
on a fresh connection, whose failure is a normal error. That client is built on the first
stale resend, not before: most crawls never need it, and building one costs an SSL context. (A
session built on a custom transport has no second client: it tries its pool again, up to the
pool's size + 1 times.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx2
import structlog

log = structlog.get_logger(__name__)

#: Failures that a closed idle connection produces; timeouts and connect errors are not.
STALE_ERRORS = (httpx2.ReadError, httpx2.WriteError, httpx2.RemoteProtocolError)

# httpcore2 names its events "<logger suffix>.<step>.<started|complete|failed>".
_CONNECT_EVENTS = frozenset(
    {
        "connection.connect_tcp.started",
        "connection.connect_unix_socket.started",
        "socks.connect_tcp.started",
    }
)
_ANSWERED_EVENTS = frozenset(
    {"http11.receive_response_headers.complete", "http2.receive_response_headers.complete"}
)


class AttemptTrace:
    """httpcore2's trace hook for one attempt: did it connect, did response headers arrive.

    Called for every step of every request (about ten times), so it only compares names.
    """

    __slots__ = ("answered", "connected")

    def __init__(self) -> None:
        self.connected = False
        self.answered = False

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        if event in _CONNECT_EVENTS:
            self.connected = True
        elif event in _ANSWERED_EVENTS:
            self.answered = True

    def stale(self, error: BaseException) -> bool:
        """Whether `error` is a reused connection that closed before answering."""
        return not self.connected and not self.answered and isinstance(error, STALE_ERRORS)


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
