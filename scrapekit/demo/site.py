"""The bundled demo site: routing, counters and the HTTP transport.

Three layers, top to bottom:

1. data and pages: `catalogue.py` makes the same `Product`s on every run, `pages.py` renders them;
2. `SiteApp`: routing, counters, and the login form, as a pure `PageRequest -> Reply` function that
   handler threads call concurrently (sessions and CSRF tokens: `sessions.py`);
3. transport: `DemoRequestHandler` + `DemoHTTPServer` (stdlib `ThreadingHTTPServer`, HTTP/1.1
   keep-alive, a Content-Length on every reply, silent unless `verbose`).

Options (`SiteOptions`): products, per_page, session_max_requests, session_max_age,
require_login, delay, username, password, verbose, secret.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import re
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, quote, urlsplit

from scrapekit.demo.catalogue import CATEGORIES, build_catalogue
from scrapekit.demo.pages import (
    HOME,
    product_json,
    render_error,
    render_listing,
    render_login,
    render_page,
    render_product,
    render_redirect,
)
from scrapekit.demo.sessions import DEMO_SECRET, SessionManager, Visitor

# -- the site ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteOptions:
    """How a `SiteApp` behaves; `DemoSite` and the `serve` command expose each field."""

    products: int = 500
    per_page: int = 20
    session_max_requests: int | None = None
    session_max_age: float | None = None
    require_login: bool = False
    delay: float = 0.0
    username: str = "demo"
    password: str = "demo"
    verbose: bool = False
    secret: str = DEMO_SECRET  # signs session ids and CSRF tokens; same secret, same sessions

    def __post_init__(self) -> None:
        if self.products < 0 or self.per_page < 1:
            raise ValueError("products must be >= 0 and per_page >= 1")
        if not self.secret:
            raise ValueError("secret must not be empty")


@dataclass(frozen=True, slots=True)
class SiteStats:
    """A snapshot of the site's counters; `by_path` counts requests per route prefix."""

    requests: int = 0
    logins: int = 0
    failed_logins: int = 0
    csrf_failures: int = 0
    session_expiries: int = 0  # redirects to /login caused by an expired or unknown session
    by_path: dict[str, int] = field(default_factory=dict)


STATS_PREFIXES = (
    "/catalogue/page-", "/catalogue/category/", "/catalogue/product/", "/login", "/logout",
    "/api/", "/robots.txt", "/slow",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What `SiteApp.handle` needs from an HTTP request."""

    method: str
    target: str
    cookies: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Reply:
    """What the handler sends back; the body is always complete (Content-Length is exact)."""

    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def _html(status: int, page: str, *headers: tuple[str, str]) -> Reply:
    return Reply(status, page.encode(), headers=headers)


def _redirect(location: str, *headers: tuple[str, str]) -> Reply:
    page = render_redirect(location)
    return Reply(302, page.encode(), headers=(("Location", location), *headers))


def _json(status: int, data: object) -> Reply:
    return Reply(status, json.dumps(data, ensure_ascii=False).encode(), "application/json")


def _safe_next(value: str) -> str:
    """Only local paths are redirect targets after login (no open redirect)."""
    return value if value.startswith("/") and not value.startswith("//") else HOME


_LISTING = re.compile(r"/catalogue/page-([1-9][0-9]*)\.html")
_CATEGORY = re.compile(
    r"/catalogue/category/([a-z0-9-]+)/(?:index\.html|page-([1-9][0-9]*)\.html)?"
)
_PRODUCT = re.compile(r"/catalogue/product/([a-z0-9-]+)-([0-9]+)/index\.html")


class SiteApp:
    """Routing, the login form and counters; thread-safe, no I/O except `/slow`."""

    def __init__(self, options: SiteOptions) -> None:
        self.options = options
        self.products = build_catalogue(options.products)
        self._by_id = {p.id: p for p in self.products}
        self.categories = {
            slug: tuple(p for p in self.products if p.category_slug == slug)
            for slug, _ in CATEGORIES
        }
        self.sessions = SessionManager(
            options.secret,
            username=options.username,
            max_requests=options.session_max_requests,
            max_age=options.session_max_age,
        )
        self._lock = threading.Lock()  # guards the counters
        self._counts: dict[str, int] = {}

    # -- state shared by handler threads ----------------------------------------------------

    def stats(self) -> SiteStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            c = self._counts
            by_path = {k[5:]: v for k, v in c.items() if k.startswith("path:")}
            return SiteStats(
                c.get("requests", 0), c.get("logins", 0), c.get("failed_logins", 0),
                c.get("csrf_failures", 0), c.get("session_expiries", 0), by_path,
            )  # fmt: skip

    def reset_stats(self) -> None:
        """Zero every counter (sessions are kept)."""
        with self._lock:
            self._counts.clear()

    def expire_sessions(self) -> None:
        """End every session issued until now, as if each had run out (for re-login tests)."""
        self.sessions.expire_all()

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    # -- routing ---------------------------------------------------------------------------------

    def handle(self, request: PageRequest) -> Reply:
        """The reply to one request."""
        url = urlsplit(request.target)
        path, query = url.path, parse_qs(url.query)
        prefix = next((p for p in STATS_PREFIXES if path.startswith(p)), "other")
        self._count("requests")
        self._count("path:" + ("/" if path == "/" else prefix))
        visitor = self.sessions.check(request.cookies.get("sessionid"))
        logged_in = visitor is Visitor.LOGGED_IN
        if request.method == "POST" and path != "/login":
            return _html(405, render_error(405, logged_in), ("Allow", "GET, HEAD"))
        if path in ("/", "/index.html"):
            return _redirect(HOME)
        if path == "/robots.txt":
            return Reply(200, b"User-agent: *\nAllow: /\n", "text/plain; charset=utf-8")
        if path == "/login":
            return self._login(request, query, logged_in)
        if path == "/logout":
            self.sessions.revoke(request.cookies.get("sessionid"))
            return _redirect("/login", ("Set-Cookie", "sessionid=; Path=/; Max-Age=0; HttpOnly"))
        if path == "/api/products":
            return self._api(query, logged_in)
        if path == "/slow":
            return self._slow(query, logged_in)
        if path.startswith("/catalogue/"):
            if self.options.require_login and not logged_in:
                return self._to_login(path, url.query, visitor)
            return self._catalogue(path, url.query, visitor)
        return _html(404, render_error(404, logged_in))

    def _to_login(self, path: str, query: str, visitor: Visitor) -> Reply:
        if visitor is Visitor.EXPIRED:
            self._count("session_expiries")
        target = path + (f"?{query}" if query else "")
        return _redirect("/login?next=" + quote(target, safe="/"))

    def _catalogue(self, path: str, query: str, visitor: Visitor) -> Reply:
        logged_in = visitor is Visitor.LOGGED_IN
        per_page = self.options.per_page
        if match := _LISTING.fullmatch(path):
            number, products = int(match[1]), self.products
            heading = "All products"
        elif match := _CATEGORY.fullmatch(path):
            if match[1] not in self.categories:
                return _html(404, render_error(404, logged_in))
            number, products = int(match[2] or 1), self.categories[match[1]]
            heading = dict(CATEGORIES)[match[1]]
        elif match := _PRODUCT.fullmatch(path):
            product = self._by_id.get(int(match[2]))
            if product is None or product.slug != match[1]:
                return _html(404, render_error(404, logged_in))
            if visitor is Visitor.EXPIRED:  # product pages show stock: they need a live session
                return self._to_login(path, query, visitor)
            return _html(200, render_product(product, logged_in))
        else:
            return _html(404, render_error(404, logged_in))
        if number > max(1, -(-len(products) // per_page)):
            return _html(404, render_error(404, logged_in))
        counts = {slug: len(items) for slug, items in self.categories.items()}
        page = render_listing(path, heading, products, number, per_page, counts, logged_in)
        return _html(200, page)

    def _login(self, request: PageRequest, query: dict[str, list[str]], logged_in: bool) -> Reply:
        opts = self.options
        cookie_token = request.cookies.get("csrftoken", "")
        known_token = self.sessions.knows_csrf_cookie(cookie_token)
        if request.method != "POST":
            headers: tuple[tuple[str, str], ...] = ()
            if not known_token:  # one pre-session token per client, reused like Django's
                cookie_token = self.sessions.new_csrf_cookie()
                headers = (("Set-Cookie", f"csrftoken={cookie_token}; Path=/; SameSite=Lax"),)
            next_path = _safe_next(query.get("next", [HOME])[0])
            form = render_login(
                self.sessions.csrf_form_token(cookie_token), next_path, logged_in, ""
            )
            return _html(200, form, *headers)
        form_data = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        field_value = {k: v[0] for k, v in form_data.items()}
        sent_token = field_value.get("csrf_token", "")
        if not known_token or not hmac.compare_digest(
            sent_token.encode(), self.sessions.csrf_form_token(cookie_token).encode()
        ):
            self._count("csrf_failures")
            return _html(403, render_error(403, logged_in))
        next_path = _safe_next(field_value.get("next", HOME))
        username = field_value.get("username", "").encode()
        password = field_value.get("password", "").encode()
        if not (
            hmac.compare_digest(username, opts.username.encode())
            & hmac.compare_digest(password, opts.password.encode())  # both, always: no timing hint
        ):
            self._count("failed_logins")
            error = "Invalid username or password"
            form = render_login(sent_token, next_path, logged_in, error)
            return _html(200, form)
        session_id = self.sessions.issue()
        self._count("logins")
        return _redirect(next_path, ("Set-Cookie", f"sessionid={session_id}; Path=/; HttpOnly"))

    def _api(self, query: dict[str, list[str]], logged_in: bool) -> Reply:
        if self.options.require_login and not logged_in:
            return _json(401, {"error": "login required"})
        try:
            number = int(query.get("page", ["1"])[0])
        except ValueError:
            return _json(400, {"error": "page must be an integer"})
        per_page, total = self.options.per_page, len(self.products)
        page_count = max(1, -(-total // per_page))
        if not 1 <= number <= page_count:
            return _json(404, {"error": f"page {number} does not exist", "pages": page_count})
        shown = self.products[(number - 1) * per_page : number * per_page]
        items = [product_json(p, logged_in) for p in shown]
        next_url = f"/api/products?page={number + 1}" if number < page_count else None
        data = {"page": number, "pages": page_count, "per_page": per_page, "total": total}
        return _json(200, {**data, "next": next_url, "products": items})

    def _slow(self, query: dict[str, list[str]], logged_in: bool) -> Reply:
        try:
            seconds = float(query.get("seconds", ["1"])[0])
        except ValueError:
            return _html(400, render_error(400, logged_in))
        time.sleep(min(max(seconds, 0.0), 60.0))
        return _html(200, render_page("Slow page", f"Waited {seconds:g} s.", logged_in))


# -- transport ---------------------------------------------------------------------------------

_MAX_BODY = 1 << 20


class DemoRequestHandler(BaseHTTPRequestHandler):
    """Turns HTTP/1.1 requests into `PageRequest`s for the server's `SiteApp`."""

    protocol_version = "HTTP/1.1"
    server_version = "scrapekit-demo/1.0"
    sys_version = ""
    timeout = 30.0  # idle keep-alive connections are closed after this long
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms a request on Linux loopback).
    disable_nagle_algorithm = True

    @property
    def demo_server(self) -> DemoHTTPServer:
        """The server, with its real type."""
        return cast("DemoHTTPServer", self.server)

    def setup(self) -> None:
        super().setup()
        self.demo_server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.demo_server.track(self.connection, add=False)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        if self.headers.get("Transfer-Encoding"):
            self._send(Reply(411, b"Length Required\n", "text/plain"), head=False, close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self._send(Reply(413, b"Bad Content-Length\n", "text/plain"), head=False, close=True)
            return
        body = self.rfile.read(length) if length else b""
        cookies: dict[str, str] = {}
        for header in self.headers.get_all("Cookie") or []:
            for pair in header.split(";"):
                name, _, value = pair.strip().partition("=")
                cookies.setdefault(name, value)
        app = self.demo_server.app
        reply = app.handle(PageRequest(method, self.path, cookies, body))
        if app.options.delay > 0:
            time.sleep(app.options.delay)
        self._send(reply, head=method == "HEAD")

    def _send(self, reply: Reply, *, head: bool, close: bool = False) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in reply.headers:
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.demo_server.app.options.verbose:
            super().log_message(format, *args)


class DemoHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that tracks its connections so `close_connections` can end them."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: SiteApp) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, DemoRequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), slow on some hosts.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, connection: socket.socket, *, add: bool) -> None:
        """Remember (or forget) an open client connection."""
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down every open keep-alive connection, so a stopped site really stops."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Client disconnects are routine for a crawler's test server; stay quiet about them.
        if self.app.options.verbose and not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
