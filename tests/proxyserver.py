"""A small threaded forward proxy for the PROXY tests, started on a free loopback port.

It takes absolute-form GET/POST requests for http:// targets and CONNECT requests, requires
user `alice` with PASSWORD in Proxy-Authorization (407 otherwise), passes plain requests on
and counts what went through it, so the site's counters and the proxy's can be compared. It
opens no tunnel unless `tunnel` is set: an authorised CONNECT is answered 502, which is
enough to tell the proxy's refusal (407, before any TLS) from another failure; with `tunnel`
it is answered 200 and the bytes are passed both ways (for a TLS failure with the site).
`refuse_after` makes it start refusing (407, as when its credentials are revoked) once that
many requests went through.
"""

from __future__ import annotations

import base64
import http.client
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

PASSWORD = "pr0xy-Pa55word"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te",
              "trailer", "transfer-encoding", "upgrade"}  # fmt: skip


class ForwardProxy(ThreadingHTTPServer):
    """A forward proxy for http:// targets that requires user `alice` and PASSWORD."""

    daemon_threads = True

    def __init__(self, *, refuse_after: int | None = None, tunnel: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.passed: list[tuple[str, str]] = []
        self.refused = 0
        self.connects: list[str] = []
        self.refuse_after = refuse_after
        self.tunnel = tunnel
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://alice:{PASSWORD}@127.0.0.1:{self.server_port}"

    @property
    def shown(self) -> str:
        """The proxy URL as scrapekit shows it."""
        return f"http://alice:***@127.0.0.1:{self.server_port}"

    def with_password(self, password: str) -> str:
        """The proxy's URL with another password."""
        return f"http://alice:{password}@127.0.0.1:{self.server_port}"

    def authorised(self, header: str | None) -> bool:
        """Whether a request with this Proxy-Authorization passes (counting a refusal)."""
        expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        with self.lock:
            revoked = self.refuse_after is not None and len(self.passed) >= self.refuse_after
            if header == expected and not revoked:
                return True
            self.refused += 1
            return False


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ForwardProxy

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_CONNECT(self) -> None:
        with self.server.lock:
            self.server.connects.append(self.path)
        if not self.server.authorised(self.headers.get("Proxy-Authorization")):
            self._refuse()
        elif self.server.tunnel:
            self._tunnel()
        else:
            self._reply(502, [], b"no tunnels through this proxy")
        self.close_connection = True

    def _tunnel(self) -> None:
        """Answer 200 and pass the bytes both ways until either side closes."""
        host, _, port = self.path.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=10) as upstream:
            self.send_response(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            ends = [self.connection, upstream]
            while True:
                ready, _, _ = select.select(ends, [], [], 10)
                if not ready:
                    return
                for end in ready:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.connection else self.connection).sendall(data)

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not self.server.authorised(self.headers.get("Proxy-Authorization")):
            self._refuse()
            return
        target = urlsplit(self.path)  # absolute form: http://host:port/path?query
        assert target.scheme == "http", self.path
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(target.netloc, timeout=10)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            upstream.request(self.command, path or "/", body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
            status = answer.status
        finally:
            upstream.close()
        with self.server.lock:
            self.server.passed.append((self.command, self.path))
        self._reply(status, [(k, v) for k, v in kept if k.lower() != "content-length"], data)

    def _refuse(self) -> None:
        self._reply(407, [("Proxy-Authenticate", 'Basic realm="test"')], b"")

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def running(server: ForwardProxy) -> Iterator[ForwardProxy]:
    """Serve `server` in a thread for the block; shut it down after."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
