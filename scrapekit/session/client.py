"""Builds the crawl's one httpx2.AsyncClient from settings.

Reads CONCURRENCY (pool size), DOWNLOAD_TIMEOUT, HTTP2, USER_AGENT, DEFAULT_REQUEST_HEADERS and
PROXY: one proxy for every request of the session, the login's included, since a site often
binds a login to the address it came from.
Redirects and cookies are the session's job (hop by hop, with scrapekit's own jar), so the
client neither follows redirects nor keeps cookies: httpx2's jar is one jar for every host and
loses per-request cookies across redirects. A custom transport (any httpx2.AsyncBaseTransport)
may be passed in: that is where another HTTP stack plugs in without touching the session.
Accept-Encoding names only the codings `body.py` decodes in bounded steps: httpx2 would also
advertise br and zstd whenever their packages happen to be installed.
"""

from __future__ import annotations

import importlib.util
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any

import httpx2

from scrapekit.exceptions import SettingsError
from scrapekit.session.body import ACCEPT_ENCODING

if TYPE_CHECKING:
    from scrapekit.settings import Settings


def build_client(
    settings: Settings,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    keepalive: bool = True,
) -> httpx2.AsyncClient:
    """A client whose pool holds one connection per worker, so no worker waits for a socket.

    With `keepalive` False, every request gets a new connection, closed after its response:
    the session sends a request lost on a stale pooled connection again through such a client.
    """
    http2 = bool(settings["HTTP2"])
    if http2 and importlib.util.find_spec("h2") is None:
        raise SettingsError(
            "HTTP2",
            "needs the h2 package: pip install 'scrapekit[http2]'",
            settings.source("HTTP2"),
        )
    concurrency = int(settings["CONCURRENCY"])
    headers = {
        "User-Agent": str(settings["USER_AGENT"]),
        "Accept-Encoding": ACCEPT_ENCODING,
        **settings["DEFAULT_REQUEST_HEADERS"],
    }
    return httpx2.AsyncClient(
        http1=True,
        http2=http2,
        headers=headers,
        timeout=httpx2.Timeout(float(settings["DOWNLOAD_TIMEOUT"])),
        limits=httpx2.Limits(
            max_connections=concurrency,
            max_keepalive_connections=concurrency if keepalive else 0,
        ),
        follow_redirects=False,
        cookies=_NoCookies(),
        proxy=str(settings["PROXY"]) or None,
        transport=transport,
    )


class _NoCookies(CookieJar):
    """A stdlib jar that stores and sends nothing: httpx2's cookie handling, switched off."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Any) -> None:
        return None
