"""Loopback servers for the login-lifecycle and robots.txt hostile tests.

`MemberSite` is a threaded HTTP site with a login whose sessions run out after a few pages
(the misbehaving asyncio servers are in `servers.py`).
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from types import TracebackType

from pytest_httpserver import HTTPServer
from werkzeug import Request as WRequest
from werkzeug import Response as WResponse

LOGIN_DISALLOWED = "User-agent: *\nDisallow: /login\n"


class MemberSite:
    """Pages `/p/<n>` for logged-in members only; anyone else is redirected to `/login`.

    A session (cookie `sid`) is good for `pages_per_session` member pages (and, when set,
    `seconds_per_session` seconds), then the next page redirects to the login page. Each page
    takes `page_delay` seconds to answer. POST /login issues a new session, unless `max_logins`
    logins were already granted (then 403). Pages listed in `always_logged_out` redirect to the
    login page whatever the cookie says; other pages carry `class="member"` only when `marked`.
    `login_location` is where logged-out pages are sent (another host name, say).
    """

    def __init__(
        self,
        *,
        robots: str = LOGIN_DISALLOWED,
        pages_per_session: int = 1_000_000,
        max_logins: int | None = None,
        always_logged_out: frozenset[int] = frozenset(),
        marked: bool = True,
        seconds_per_session: float | None = None,
        page_delay: float = 0.0,
    ) -> None:
        self.robots = robots
        self.pages_per_session = pages_per_session
        self.max_logins = max_logins
        self.always_logged_out = always_logged_out
        self.marked = marked
        self.seconds_per_session = seconds_per_session
        self.page_delay = page_delay
        self._expires = 0.0
        self.login_location = "/login"
        self.lock = threading.Lock()
        self.logins = 0
        self.refused_logins = 0
        self.hits: Counter[str] = Counter()
        self._session = ""
        self._left = 0
        self.server = HTTPServer(host="127.0.0.1", port=0, threaded=True)

    def url(self, path: str) -> str:
        """The absolute URL of `path` on this site."""
        return self.server.url_for(path)

    def __enter__(self) -> MemberSite:
        server = self.server
        server.expect_request("/robots.txt").respond_with_handler(self._robots)
        server.expect_request("/login", method="POST").respond_with_handler(self._login)
        server.expect_request("/login").respond_with_handler(self._login_page)
        server.expect_request(re.compile(r"^/p/\d+$")).respond_with_handler(self._page)
        server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.clear()
        self.server.stop()

    def _robots(self, request: WRequest) -> WResponse:
        self._count(request)
        return WResponse(self.robots, content_type="text/plain")

    def _login_page(self, request: WRequest) -> WResponse:
        self._count(request)
        return WResponse('<form class="login" method="post"></form>', content_type="text/html")

    def _login(self, request: WRequest) -> WResponse:
        self._count(request)
        with self.lock:
            if self.max_logins is not None and self.logins >= self.max_logins:
                self.refused_logins += 1
                return WResponse("account locked", status=403)
            self.logins += 1
            self._session = f"s{self.logins}"
            self._left = self.pages_per_session
            if self.seconds_per_session is not None:
                self._expires = time.monotonic() + self.seconds_per_session
            response = WResponse("welcome", content_type="text/html")
        response.set_cookie("sid", self._session)
        return response

    def _page(self, request: WRequest) -> WResponse:
        self._count(request)
        number = int(request.path.rsplit("/", 1)[1])
        if self.page_delay:
            time.sleep(self.page_delay)
        with self.lock:
            member = (
                number not in self.always_logged_out
                and request.cookies.get("sid") == self._session != ""
                and self._left > 0
                and (self.seconds_per_session is None or time.monotonic() < self._expires)
            )
            if member:
                self._left -= 1
        if not member:
            location = f"{self.login_location}?next={request.path}"
            return WResponse("", status=302, headers={"Location": location})
        mark = ' class="member"' if self.marked else ""
        return WResponse(f"<h1{mark}>page {number}</h1>", content_type="text/html")

    def _count(self, request: WRequest) -> None:
        with self.lock:
            self.hits[request.path] += 1
