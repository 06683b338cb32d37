"""A local site for crash tests: a graph of pages on two hosts, counting every fetch.

Page `n` (0 <= n < pages) lives at `/p/<n>` on host "127.0.0.1" when n is even and on host
"localhost" (a second server, another port) when n is odd. It carries `1 + n % 4` items and
links to its children 3n+1..3n+3 (a tree, so the crawl discovers requests as it goes), to a
cross-linked page and back to page 0 (a graph: the crawl's dedupe sees every page several
times). Every page is reachable from page 0 and the pages and items depend on nothing but
`pages`, so an uninterrupted crawl always yields `expected_items()` and fetches each page once.

Both servers are stdlib `ThreadingHTTPServer`s on 127.0.0.1 (HTTP/1.1 keep-alive), each
handler thread joined on close. `delay` seconds of sleep per page make a crawl last long
enough for a kill to land mid-crawl. `fetches` counts requests by "host/path", whatever the
answer (a 404 too), under a lock.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

HOSTS = ("127.0.0.1", "localhost")

#: One item's identity and content, as every feed format can carry it: all strings.
ItemKey = tuple[str, str, str, str]


def page_host(page: int) -> str:
    """The host name page `page` lives on."""
    return HOSTS[page % 2]


def item_name(page: int, index: int) -> str:
    """An item's text, with what CSV and JSON must quote or escape."""
    return f'item {page}.{index}, "quoted"; é\\ {"x" * (page % 7)}'


def page_items(page: int) -> list[ItemKey]:
    """The items page `page` yields: (host, path, index, name)."""
    return [
        (page_host(page), f"/p/{page}", str(index), item_name(page, index))
        for index in range(1 + page % 4)
    ]


class GraphSite:
    """Two loopback servers serving one page graph; a context manager."""

    def __init__(self, pages: int = 240, *, delay: float = 0.0) -> None:
        if pages < 1:
            raise ValueError("pages must be >= 1")
        self.pages = pages
        self.delay = delay
        self.fetches: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self.origins: dict[str, str] = {}
        #: Errors the handlers raised, other than a client going away (a killed crawl).
        self.errors: list[str] = []

    # -- the model ---------------------------------------------------------------------------

    def links(self, page: int) -> list[int]:
        """Pages that page `page` links to (children, a cross link, the root)."""
        children = [child for child in range(3 * page + 1, 3 * page + 4) if child < self.pages]
        return [*children, (7 * page + 3) % self.pages, 0]

    def url(self, page: int) -> str:
        """The absolute URL of page `page`."""
        return f"{self.origins[page_host(page)]}/p/{page}"

    def paths(self) -> list[str]:
        """Every page as the `fetches` counter names it."""
        return [f"{page_host(page)}/p/{page}" for page in range(self.pages)]

    def expected_items(self) -> Counter[ItemKey]:
        """The items one uninterrupted crawl from page 0 yields, as a multiset."""
        return Counter(key for page in range(self.pages) for key in page_items(page))

    def fetch_counts(self) -> Counter[str]:
        """A snapshot of the fetch counter."""
        with self._lock:
            return Counter(self.fetches)

    def total_fetches(self) -> int:
        """Requests answered so far, all paths."""
        with self._lock:
            return sum(self.fetches.values())

    def render(self, host: str, path: str) -> bytes | None:
        """The page at host/path, or None if there is none."""
        prefix = "/p/"
        if not path.startswith(prefix) or not path[len(prefix) :].isdigit():
            return None
        page = int(path[len(prefix) :])
        if page >= self.pages or page_host(page) != host:
            return None
        items = "".join(
            f'<li class="item" data-index="{index}">{_escape(name)}</li>'
            for _, _, index, name in page_items(page)
        )
        links = "".join(
            f'<a class="link" href="{self.url(to)}">p{to}</a>' for to in self.links(page)
        )
        return f"<html><body><ul>{items}</ul>{links}</body></html>".encode()

    # -- the servers -------------------------------------------------------------------------

    def __enter__(self) -> GraphSite:
        for host in HOSTS:
            server = _Server(("127.0.0.1", 0), _Handler)
            server.site, server.host = self, host
            self._servers.append(server)
            self.origins[host] = f"http://{host}:{server.server_address[1]}"
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop both servers, close their sockets and join every thread they started."""
        for server in self._servers:  # none after a first close(): closing twice is fine
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        leaked = [t.name for t in self._threads if t.is_alive()]
        self._servers.clear()
        self._threads.clear()
        assert not leaked, f"site threads still running after close: {leaked}"

    def sockets_closed(self) -> bool:
        """Whether every listening socket is closed (after close())."""
        return not self._servers


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Server(ThreadingHTTPServer):
    """Joins its handler threads on close; a client that went away is no error."""

    daemon_threads = False
    block_on_close = True
    site: GraphSite
    host: str

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            with self.site._lock:
                self.site.errors.append(repr(error))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # an idle keep-alive connection ends, so close() never waits forever

    def do_GET(self) -> None:
        server = cast("_Server", self.server)
        site, host = server.site, server.host
        path = self.path.split("?", 1)[0]
        with site._lock:
            site.fetches[f"{host}{path}"] += 1
        body = site.render(host, path)
        if body is not None and site.delay:
            time.sleep(site.delay)
        status = 200 if body is not None else 404
        body = body if body is not None else b"not found"
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the test reads counters, not logs."""
