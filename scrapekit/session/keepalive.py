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
on a fresh connection, whose failure is a normal error. (A session built on a custom transport
has no second client: it tries its pool again, up to the pool's size + 1 times.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2

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
